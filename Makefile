# Ambit: `make demo` runs the mesh locally, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := build

# Debian packages: eBPF toolchain (and libc6-dev: the static CNI plugin links glibc statically), network tools, and the real programs the pods and benchmarks run.
APT_PACKAGES := clang llvm libbpf-dev libc6-dev bpftool nftables iproute2 util-linux procps \
	curl nginx-light wrk hey haproxy tcpdump tshark python3 ca-certificates \
	python3-grpcio python3-protobuf python3-h2 python3-websockets
BPF_SRC := $(wildcard bpf/*.bpf.c)
BPF_OBJ := $(BPF_SRC:.bpf.c=.bpf.o)
BIN := node_modules/.bin
# Node.js 24 LTS runs everything (Node 20 is end of life). `make deps` installs the official build from
# the npm registry into node_modules (the `node` package); every target below runs with it first on PATH,
# and so do the daemons the CLI starts (they inherit its runtime).
export PATH := $(CURDIR)/$(BIN):$(PATH)
NODE_MAJOR := 24

.PHONY: deps apt-deps npm build bpf cni ts test test-unit test-unprivileged test-e2e lint format demo clean bench

deps: apt-deps node_modules/.ci-stamp
	@v=$$($(BIN)/node -p 'process.versions.node' 2>/dev/null); \
	if [ "$${v%%.*}" != "$(NODE_MAJOR)" ]; then \
	  echo "error: node_modules/.bin/node is not Node.js $(NODE_MAJOR) (got '$$v'); run: rm -rf node_modules && make deps"; exit 1; \
	fi

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

# npm comes with the machine's Node.js; on a machine without one, Debian's (any version will do: it only
# installs the locked packages, Node.js 24 among them).
npm:
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing npm (Debian) to fetch Node.js $(NODE_MAJOR) and the locked packages"; \
	  if [ "$$(id -u)" != 0 ]; then echo "error: installing npm needs root (sudo make deps)"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null; }

# The lock file pins every version. `npm ci` refuses it on machines whose registry mirror carries only
# Linux builds of platform packages (biome, rollup, esbuild list darwin/win32 builds as optional
# dependencies; the mirror answers 404, npm skips them, and `npm ci` then reports the lock as out of
# sync). `npm install --no-save` installs exactly the locked versions and changes no file.
node_modules/.ci-stamp: package.json package-lock.json | npm
	npm install --no-save --no-audit --no-fund --loglevel=error
	@touch $@

build: deps bpf cni ts

bpf: $(BPF_OBJ)

# The CNI plugin runs on the node itself, where there is no Node.js and perhaps another libc: a static
# binary. The node agent copies it into the CNI bin dir (its --cni-plugin flag defaults to this path).
CNI_PLUGIN := build/cni/ambit-cni
cni: $(CNI_PLUGIN)

$(CNI_PLUGIN): src/node-agent/cni-plugin/ambit-cni.c
	@mkdir -p $(dir $@)
	clang -static -Os -Wall -Wextra -Werror -o $@ $<

bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h)
	clang -O2 -g -Wall -Werror -target bpf -D__TARGET_ARCH_x86 -I/usr/include/x86_64-linux-gnu -c $< -o $@

# dist/ is rebuilt from scratch: a file left from a module that moved would hide a stale import.
ts: deps
	rm -rf dist
	$(BIN)/tsc -p tsconfig.json
	@cp src/api/*.proto dist/api/
	@chmod +x dist/ctl/main.js

test: build
	$(BIN)/vitest run --project unit
	$(MAKE) --no-print-directory test-unprivileged
	$(BIN)/tsc -p tsconfig.test.json
	$(BIN)/vitest run --project e2e

# The node proxy runs in-process without any privilege: as root, the integration test (which the unit
# project has just run) runs again as nobody, so that a change that needs privileges there fails here.
# A checkout that nobody cannot read (below a private home) is said so; the test itself has run.
AS_NOBODY := setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp PATH="$(PATH)"
test-unprivileged: deps
	@if [ "$$(id -u)" != 0 ]; then exit 0; fi; \
	if ! $(AS_NOBODY) test -r package.json -a -x node_modules/.bin/vitest; then \
	  echo "note: uid 65534 cannot read $(CURDIR); the unprivileged rerun of node-proxy.test.ts is left out"; exit 0; \
	fi; \
	echo "test/integration/node-proxy.test.ts again, as uid 65534 (no privileges):"; \
	$(AS_NOBODY) $(BIN)/vitest run test/integration/node-proxy.test.ts --cache=false --configLoader runner

test-unit: deps
	$(BIN)/vitest run --project unit

test-e2e: build
	$(BIN)/vitest run --project e2e

# biome (format, lint, and no process.env outside config code), the type check, and the house's
# boundaries (.dependency-cruiser.cjs: daemons never import each other, no folder cycles, ffi-rs only in
# src/bpf/), and the image Dockerfiles' build-context files (no Docker engine here to build them).
lint: deps
	$(BIN)/biome check .
	$(BIN)/tsc -p tsconfig.test.json
	$(BIN)/depcruise --config .dependency-cruiser.cjs src
	bash deploy/images/check-dockerfiles.sh

format: deps
	$(BIN)/biome check --write .

demo: build
	bash examples/demo.sh

bench: build
	bash bench/run.sh

clean:
	rm -rf dist $(BPF_OBJ) build
