#!/usr/bin/env bash
# `make demo`: run examples/hello on a two-node local cluster and send traffic through it.
set -euo pipefail
cd "$(dirname "$0")/.."
ambit() { node dist/ctl/main.js "$@"; }
bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }

if [ "$(id -u)" != 0 ]; then echo "make demo needs root (network namespaces, cgroups, eBPF): sudo make demo" >&2; exit 1; fi

bold "1. Start a local cluster: 2 nodes, the manifests of examples/hello (namespace hello is in the mesh)"
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

bold "4. Through the mesh: node-1's proxy got each connection from eBPF (one access-log line each)"
ambit local logs -n ambit-system ambit-node-node-1 -c proxy --tail 4 2>/dev/null | node -e '
  const lines = require("fs").readFileSync(0, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((l) => l.component === "access");
  for (const l of lines) console.log(`  ${l["src.workload"]} -> ${l.original_dst} via ${l["dst.service"] ?? "-"} -> ${l["dst.workload"]} (${l["dst.addr"]}), ${l.bytes_recv}B up / ${l.bytes_sent}B down, flags ${l.response_flags}`);'
echo "  and its Istio metrics (ip netns exec ambit.node-1 curl -s localhost:15020/metrics):"
ip netns exec ambit.node-1 curl -s localhost:15020/metrics | grep '^istio_tcp_connections_opened_total' | sed 's/^/  /' | cut -c1-220

bold "5. The server's own log (python3 http.server) in one replica"
ambit local logs -n hello deploy/backend --tail 3

bold "Explore"
cat <<'TXT'
  node dist/ctl/main.js local status -o yaml
  node dist/ctl/main.js local exec -n hello client -- curl -s http://backend:8080/
  node dist/ctl/main.js local exec -n hello client -- ip addr
  node dist/ctl/main.js local logs -n hello deploy/backend -f
  node dist/ctl/main.js local logs -n ambit-system ambit-node-node-1 -c proxy -f   # access log
  node dist/ctl/main.js check                                                   # what the kernel offers
  edit examples/hello/*.yaml (e.g. replicas: 3): the cluster follows the folder live
Tear down:
  node dist/ctl/main.js local down
TXT
