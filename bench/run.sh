#!/usr/bin/env bash
# `make bench`: every benchmark, each side by side with its baselines in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
# The project's Node.js (24, from make deps) runs the benchmarks and the daemons they start, as in make.
export PATH="$PWD/node_modules/.bin:$PATH"
echo "Node.js $(node --version), $(uname -r)"
if [ "$(id -u)" != 0 ]; then echo "the benchmarks need root (local clusters): sudo make bench" >&2; exit 1; fi
echo "== L4 pass-through (bench/l4.ts)"
node_modules/.bin/vite-node bench/l4.ts -- "$@"
echo "== mesh: HBONE vs haproxy mTLS (bench/mesh.ts)"
node_modules/.bin/vite-node bench/mesh.ts -- "$@"
echo "== key type (bench/key-type.ts)"
node_modules/.bin/vite-node bench/key-type.ts
echo "== L7 waypoint vs haproxy HTTP (bench/l7.ts)"
node_modules/.bin/vite-node bench/l7.ts -- "$@"
echo "== control plane at scale (bench/control-plane.ts)"
node_modules/.bin/vite-node bench/control-plane.ts
