# syntax=docker/dockerfile:1
# The node image: the node agent and the node proxy (the two containers of the ambit-node DaemonSet,
# and the node cleanup of `ambit uninstall`). Build from the repository root:
#   docker build -f deploy/images/node.Dockerfile -t ghcr.io/ambit-mesh/ambit-node:<version> .

# The TypeScript build: the locked packages, then tsc into dist/ (as `make ts` does).
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json && cp src/api/*.proto dist/api/ \
 && npm prune --omit=dev --no-audit --no-fund

# The eBPF programs, built with the same clang flags as `make bpf`.
FROM debian:bookworm-slim AS bpf
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      clang llvm libbpf-dev make && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY bpf ./bpf
RUN clang -O2 -g -Wall -Werror -target bpf -D__TARGET_ARCH_x86 -I/usr/include/x86_64-linux-gnu \
      -c bpf/redirect.bpf.c -o bpf/redirect.bpf.o
# The CNI plugin: a static binary (the host has no Node.js), with the same flags as `make cni`.
COPY src/node-agent/cni-plugin ./src/node-agent/cni-plugin
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libc6-dev && rm -rf /var/lib/apt/lists/* \
 && mkdir -p build/cni \
 && clang -static -Os -Wall -Wextra -Werror -o build/cni/ambit-cni src/node-agent/cni-plugin/ambit-cni.c

FROM node:24-bookworm-slim
# libbpf (loaded through ffi-rs), nft and ip: what the agent runs on the host's netfilter and links.
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libbpf1 nftables iproute2 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/ambit
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/package.json ./package.json
# The agent's default --bpf-object is ../../bpf/redirect.bpf.o from dist/node-agent.
COPY --from=bpf /src/bpf/redirect.bpf.o ./bpf/redirect.bpf.o
# The CNI plugin, which the agent copies into the host's --cni-bin-dir; its default --cni-plugin is
# ../../build/cni/ambit-cni from dist/node-agent.
COPY --from=bpf /src/build/cni/ambit-cni ./build/cni/ambit-cni
COPY deploy/images/entrypoint.sh /usr/local/bin/ambit-daemon
# Root: the agent attaches BPF programs, edits nftables and writes the host's CNI folders; the
# container runtime gives a non-root process no effective capabilities. (The DaemonSet adds only
# BPF, NET_ADMIN, SYS_ADMIN and NET_RAW.)
USER 0
ENTRYPOINT ["/usr/local/bin/ambit-daemon"]
