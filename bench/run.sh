#!/usr/bin/env bash
# `make bench`: every benchmark, each side by side with its baselines in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "the benchmarks need root (local clusters): sudo make bench" >&2; exit 1; fi
node_modules/.bin/vite-node bench/l4.ts -- "$@"
