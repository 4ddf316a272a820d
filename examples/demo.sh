#!/usr/bin/env bash
# `make demo`: run examples/hello on a two-node local cluster and show what the mesh does with its
# traffic: eBPF redirection, mutual TLS between the node proxies, an L4 policy, telemetry; then
# examples/canary: a waypoint, a 90/10 split and a header route, counted by the waypoint's metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
ambit() { node dist/ctl/main.js "$@"; }
bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
in_pod() { ambit local exec -n hello client -- "$@"; }

if [ "$(id -u)" != 0 ]; then echo "make demo needs root (network namespaces, cgroups, eBPF): sudo make demo" >&2; exit 1; fi

# The cluster watches a working copy, so that applying a policy below never edits the repository.
work="${AMBIT_DEMO_DIR:-/tmp/ambit-demo}"
rm -rf "$work" && mkdir -p "$work" && cp -r examples/hello "$work/hello"
app="$work/hello"

bold "1. Start a local cluster: 2 nodes, control plane, a node agent and proxy per node, the app of examples/hello"
ambit local down >/dev/null
ambit local up "$app" --nodes 2

bold "2. What runs: nodes, pods (network namespaces), the Service VIP and its endpoints, the mesh's own daemons"
ambit local status

# Capture node-1's side of the link between the nodes from the first request on, so that it holds the
# TLS handshake of the pooled HBONE connection (step 5 reads it).
cap="$work/node-1.pcap"
ip netns exec ambit.node-1 tcpdump -i eth0 -U --immediate-mode -w "$cap" 'tcp port 15008' >/dev/null 2>&1 &
dump=$!
sleep 1

bold "3. curl in the client pod (node-1) -> http://backend.hello.svc.cluster.local:8080/ (the app is unmodified)"
for i in 1 2 3 4; do
  printf '  request %s -> ' "$i"
  in_pod curl -sS --max-time 5 http://backend.hello.svc.cluster.local:8080/
done
echo "  (the VIP balances across both replicas, one of them on the other node)"

bold "4. What the proxies saw: one access-log line per connection, with the identities proven in mTLS"
for node in node-1 node-2; do
  ambit local logs -n ambit-system "ambit-node-$node" -c proxy --tail 40 2>/dev/null | node -e '
    const node = process.argv[1];
    const lines = require("fs").readFileSync(0, "utf8").trim().split("\n").map((l) => { try { return JSON.parse(l); } catch { return {}; } })
      .filter((l) => l.component === "access" && l["src.workload"] === "client").slice(-2);
    for (const l of lines) console.log(`  ${node} ${l.direction.padEnd(8)} ${l["src.identity"]} -> ${l["dst.identity"] ?? "-"}  ${l.original_dst} -> ${l["dst.addr"]}  ${l.connection_security_policy}  ${l.bytes_recv}B up / ${l.bytes_sent}B down`);' "$node"
done

bold "5. On the wire between the nodes (tcpdump on node-1's eth0 during steps 3-4): TLS 1.3 to port 15008, not one byte of the HTTP payload"
sleep 1
kill "$dump"; wait "$dump" 2>/dev/null || true
echo "  packets to or from 15008 on node-1's eth0: $(tcpdump -r "$cap" 2>/dev/null | wc -l)"
echo "  TLS versions negotiated: $(tshark -r "$cap" -d tcp.port==15008,tls -Y 'tls.handshake.type == 2' -T fields -e tls.handshake.extensions.supported_version 2>/dev/null | sort -u | sed 's/0x0304/TLS 1.3/' | tr '\n' ' ')"
echo "  captured bytes containing \"hello from\": $(tcpdump -r "$cap" -A 2>/dev/null | grep -c 'hello from' || true)"
echo "  the workload certificates node-2's proxy holds:"
ambit proxy-config certificates --node node-2 | sed 's/^/  /'

bold "6. Zero trust at L4: apply examples/policies/deny-client.yaml (DENY the client's identity at the backend)"
cp examples/policies/deny-client.yaml "$app/"
sleep 2
printf '  curl now: '
in_pod curl -sS --max-time 5 http://backend.hello:8080/ 2>&1 || true
echo "  why, according to ambit explain client backend.hello:8080:"
ambit explain -n hello client backend.hello:8080 | sed 's/^/  /'
rm "$app/deny-client.yaml"
sleep 2
printf '  policy removed, curl again: '
in_pod curl -sS --max-time 5 http://backend.hello:8080/

bold "7. Istio-compatible metrics of node-2's proxy (ip netns exec ambit.node-2 curl -s localhost:15020/metrics)"
ip netns exec ambit.node-2 curl -s localhost:15020/metrics | node -e '
  // Print each istio_tcp_* series with the labels that tell the story (the full label set is the one Istio uses).
  const keep = ["reporter", "source_principal", "destination_principal", "destination_service", "response_flags", "connection_security_policy"];
  for (const line of require("fs").readFileSync(0, "utf8").split("\n")) {
    const m = /^(istio_tcp_\w+)\{(.*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels = [...m[2].matchAll(/(\w+)="([^"]*)"/g)].filter((l) => keep.includes(l[1])).map((l) => `${l[1]}="${l[2]}"`);
    console.log(`  ${m[1]}{${labels.join(",")}} ${m[3]}`);
  }'

bold "8. L7: a canary release through a waypoint (examples/canary: v1 and v2 of a backend, a waypoint, a 90/10 HTTPRoute)"
mkdir -p "$app/canary" && cp examples/canary/*.yaml "$app/canary/"
printf '  waiting for the waypoint of namespace canary'
for _ in $(seq 1 120); do
  ambit waypoint status -n canary 2>/dev/null | grep -q 'True *True' && ambit local status | grep -q 'canary .*client .*1/1' && break
  printf '.'; sleep 1
done
echo
ambit waypoint status -n canary | sed 's/^/  /'
canary() { ambit local exec -n canary client -- "$@"; }
echo "  200 requests from the client pod (curl, one keep-alive connection): what answered"
canary curl -s 'http://backend:8080/?req=[1-200]' | cut -d' ' -f1 | sort | uniq -c | sed 's/^/  /'
echo "  the same with the header x-user: a (the route sends that user to v2 only):"
canary curl -s -H 'x-user: a' 'http://backend:8080/?req=[1-20]' | cut -d' ' -f1 | sort | uniq -c | sed 's/^/  /'
wp=$(ambit local status -o json | node -e 'const s = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(s.pods.find((p) => p.namespace === "canary" && p.name.startsWith("waypoint-")).name)')
echo "  the waypoint's own count (istio_requests_total{reporter=\"waypoint\"} by destination_service, from its :15020/metrics):"
ip netns exec "ambit.pod.canary.$wp" curl -s localhost:15020/metrics | node -e '
  const by = new Map();
  for (const line of require("fs").readFileSync(0, "utf8").split("\n")) {
    const m = /^istio_requests_total\{(.*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const l = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (l.source_workload !== "client") continue;
    const k = `${l.destination_service} ${l.response_code}`;
    by.set(k, (by.get(k) ?? 0) + Number(m[2]));
  }
  for (const [k, v] of [...by].sort()) console.log(`    ${String(v).padStart(4)}  ${k}`);'

bold "9. Why: ambit explain -n canary client http://backend:8080/ -H 'x-user: a'"
ambit explain -n canary client http://backend:8080/ -H 'x-user: a' | sed 's/^/  /' | head -14

bold "Explore"
cat <<TXT
  node dist/ctl/main.js local status -o yaml
  export KUBECONFIG=\$(node dist/ctl/main.js local kubeconfig --path); kubectl get pods -A -o wide   # kubectl works too
  node dist/ctl/main.js local exec -n hello client -- curl -s http://backend:8080/
  node dist/ctl/main.js proxy-config workloads --node node-1
  node dist/ctl/main.js proxy-config connections --node node-2
  node dist/ctl/main.js explain -n hello client backend:8080 -o yaml
  node dist/ctl/main.js waypoint status -n canary
  node dist/ctl/main.js proxy-config routes --waypoint canary/waypoint
  node dist/ctl/main.js explain -n canary client http://backend:8080/ -o yaml
  edit $app/canary/route.yaml (e.g. weights 50/50): the waypoint follows the folder live
  node dist/ctl/main.js local logs -n ambit-system ambit-node-node-1 -c proxy -f   # access log
  cp examples/policies/strict.yaml $app/     # STRICT mTLS for namespace hello
  edit $app/*.yaml (e.g. replicas: 3): the cluster follows the folder live
Tear down:
  node dist/ctl/main.js local down
TXT
