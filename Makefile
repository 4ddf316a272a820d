# Ambit: `make demo` runs the mesh locally, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := build

# Debian packages: eBPF toolchain, network tools, and the real programs the pods and benchmarks run.
APT_PACKAGES := clang llvm libbpf-dev bpftool nftables iproute2 util-linux procps \
	curl nginx-light wrk haproxy tcpdump tshark python3 ca-certificates
BPF_SRC := $(wildcard bpf/*.bpf.c)
BPF_OBJ := $(BPF_SRC:.bpf.c=.bpf.o)
BIN := node_modules/.bin

.PHONY: deps apt-deps build bpf ts test test-unit test-e2e lint format demo clean bench

deps: apt-deps node_modules/.ci-stamp

# Idempotent: installs only the packages that are missing.
apt-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "error: installing packages needs root (sudo make deps)"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The lock file pins every version. `npm ci` refuses it on machines whose registry mirror carries only
# Linux builds of platform packages (biome, rollup, esbuild list darwin/win32 builds as optional
# dependencies; the mirror answers 404, npm skips them, and `npm ci` then reports the lock as out of
# sync). `npm install --no-save` installs exactly the locked versions and changes no file.
node_modules/.ci-stamp: package.json package-lock.json
	npm install --no-save --no-audit --no-fund --loglevel=error
	@touch $@

build: deps bpf ts

bpf: $(BPF_OBJ)

bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h)
	clang -O2 -g -Wall -Werror -target bpf -D__TARGET_ARCH_x86 -I/usr/include/x86_64-linux-gnu -c $< -o $@

ts: node_modules/.ci-stamp
	$(BIN)/tsc -p tsconfig.json
	@cp src/api/*.proto dist/api/
	@chmod +x dist/ctl/main.js

test: build
	$(BIN)/vitest run --project unit
	$(BIN)/tsc -p tsconfig.test.json
	$(BIN)/vitest run --project e2e

test-unit: node_modules/.ci-stamp
	$(BIN)/vitest run --project unit

test-e2e: build
	$(BIN)/vitest run --project e2e

lint: node_modules/.ci-stamp
	$(BIN)/biome check .
	$(BIN)/tsc -p tsconfig.test.json

format: node_modules/.ci-stamp
	$(BIN)/biome check --write .

demo: build
	bash examples/demo.sh

bench: build
	bash bench/run.sh

clean:
	rm -rf dist $(BPF_OBJ)
