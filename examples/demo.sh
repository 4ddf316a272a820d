#!/usr/bin/env bash
# `make demo`: run examples/hello on a two-node local cluster and send traffic through it.
set -euo pipefail
cd "$(dirname "$0")/.."
ambit() { node dist/ctl/main.js "$@"; }
bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }

if [ "$(id -u)" != 0 ]; then echo "make demo needs root (network namespaces, cgroups, eBPF): sudo make demo" >&2; exit 1; fi

bold "1. Start a local cluster: 2 nodes, the manifests of examples/hello"
ambit local down >/dev/null
ambit local up examples/hello --nodes 2

bold "2. What runs: nodes, pods (network namespaces), the Service VIP and its endpoints"
ambit local status

bold "3. curl from the client pod (node-1) to http://backend.hello.svc.cluster.local:8080/"
for i in 1 2 3 4; do
  printf '  request %s -> ' "$i"
  ambit local exec -n hello client -- curl -sS --max-time 5 http://backend.hello.svc.cluster.local:8080/
done
echo "  (the VIP balances across both replicas, one of them on the other node)"

bold "4. The server's own log (python3 http.server) in one replica"
ambit local logs -n hello deploy/backend --tail 3

bold "Explore"
cat <<'TXT'
  node dist/ctl/main.js local status -o yaml
  node dist/ctl/main.js local exec -n hello client -- curl -s http://backend:8080/
  node dist/ctl/main.js local exec -n hello client -- ip addr
  node dist/ctl/main.js local logs -n hello deploy/backend -f
  edit examples/hello/*.yaml (e.g. replicas: 3): the cluster follows the folder live
Tear down:
  node dist/ctl/main.js local down
TXT
