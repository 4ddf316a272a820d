import { existsSync, readdirSync } from 'node:fs';
import { inNetns, ipBatch, run } from '../os/run-command.js';
import {
  FABRIC_BRIDGE,
  FABRIC_V4,
  FABRIC_V6,
  fabricNetns,
  NODE_BRIDGE,
  NODE_UPLINK,
  type NodeLayout,
  POD_SUPERNET_V4,
  POD_SUPERNET_V6,
  SERVICE_CIDR_V4,
  SERVICE_CIDR_V6,
} from './layout.js';

/*
 * The wiring of a local cluster, all inside network namespaces it creates:
 *
 *   [pod netns] eth0 ==veth== vethXXXX -[cbr0 bridge]- node netns eth0 ==veth== nX -[fabric0 bridge]- fabric netns
 *
 * Nodes route each other's pod CIDRs over the fabric. No namespace has a default route, and the
 * fabric has no link to the machine's own network, so nothing can leave the machine.
 */

const NETNS_DIR = '/run/netns';

export function listNetns(): string[] {
  if (!existsSync(NETNS_DIR)) return [];
  return readdirSync(NETNS_DIR);
}

export async function addNetns(name: string): Promise<void> {
  await run('ip', ['netns', 'add', name]);
  await ipBatch(name, ['link set lo up']);
}

export async function deleteNetns(name: string): Promise<void> {
  await run('ip', ['netns', 'delete', name], { okStderr: /No such file|Invalid argument/ });
}

async function sysctl(netns: string, settings: Readonly<Record<string, string>>): Promise<void> {
  // -e: a key this kernel does not have (net.bridge.* without br_netfilter) is not an error.
  await inNetns(netns, 'sysctl', [
    '-q',
    '-e',
    '-w',
    ...Object.entries(settings).map(([k, v]) => `${k}=${v}`),
  ]);
}

export async function createFabric(cluster: string): Promise<void> {
  const ns = fabricNetns(cluster);
  await addNetns(ns);
  await sysctl(ns, { 'net.ipv6.conf.all.accept_dad': '0', 'net.ipv6.conf.default.accept_dad': '0' });
  await ipBatch(ns, [
    `link add ${FABRIC_BRIDGE} type bridge`,
    `link set ${FABRIC_BRIDGE} up`,
    `addr add ${FABRIC_V4}/16 dev ${FABRIC_BRIDGE}`,
    `addr add ${FABRIC_V6}/64 dev ${FABRIC_BRIDGE} nodad`,
  ]);
}

/** Creates a node: its namespace, its pod bridge with the gateway addresses, and its uplink into the fabric. */
export async function createNode(cluster: string, node: NodeLayout): Promise<void> {
  const fabric = fabricNetns(cluster);
  await addNetns(node.netns);
  await sysctl(node.netns, {
    'net.ipv4.ip_forward': '1',
    'net.ipv6.conf.all.forwarding': '1',
    'net.ipv6.conf.all.accept_dad': '0',
    'net.ipv6.conf.default.accept_dad': '0',
    'net.ipv4.conf.all.rp_filter': '0',
    'net.ipv4.conf.default.rp_filter': '0',
    // Same-node pod traffic enters and leaves through the bridge: an ICMP redirect would teach the pods
    // to talk to each other directly, past the node's Service NAT and inbound capture.
    'net.ipv4.conf.all.send_redirects': '0',
    'net.ipv4.conf.default.send_redirects': '0',
    // Pods talk to each other through the node's IP stack, never bridged port to port, so br_netfilter
    // (when loaded) has nothing to add: keep it from running IP hooks on bridged frames.
    'net.bridge.bridge-nf-call-iptables': '0',
    'net.bridge.bridge-nf-call-ip6tables': '0',
  });
  const uplinkPeer = `n${node.index}`;
  await ipBatch(node.netns, [
    `link add ${NODE_UPLINK} type veth peer name ${uplinkPeer} netns ${fabric}`,
    `addr add ${node.ip4}/16 dev ${NODE_UPLINK}`,
    `addr add ${node.ip6}/64 dev ${NODE_UPLINK} nodad`,
    `link set ${NODE_UPLINK} up`,
    `link add ${NODE_BRIDGE} type bridge`,
    `addr add ${node.gateway4}/24 dev ${NODE_BRIDGE}`,
    `addr add ${node.gateway6}/64 dev ${NODE_BRIDGE} nodad`,
    `addr add ${node.proxy4}/32 dev ${NODE_BRIDGE}`,
    `addr add ${node.proxy6}/128 dev ${NODE_BRIDGE} nodad`,
    `link set ${NODE_BRIDGE} up`,
  ]);
  await ipBatch(fabric, [`link set ${uplinkPeer} master ${FABRIC_BRIDGE}`, `link set ${uplinkPeer} up`]);
}

/**
 * Routes each node's pod CIDRs to the node that owns them, on every other node and in the fabric
 * (where the control plane listens: a pod that talks to it, a waypoint, gets its answers back).
 */
export async function routeNodes(cluster: string, nodes: readonly NodeLayout[]): Promise<void> {
  await ipBatch(
    fabricNetns(cluster),
    nodes.flatMap((n) => [
      `route replace ${n.podCidr4} via ${n.ip4} dev ${FABRIC_BRIDGE}`,
      `route replace ${n.podCidr6} via ${n.ip6} dev ${FABRIC_BRIDGE}`,
    ]),
  );
  for (const node of nodes) {
    const lines: string[] = [];
    for (const other of nodes) {
      if (other.name === node.name) continue;
      lines.push(`route replace ${other.podCidr4} via ${other.ip4} dev ${NODE_UPLINK}`);
      lines.push(`route replace ${other.podCidr6} via ${other.ip6} dev ${NODE_UPLINK}`);
    }
    if (lines.length > 0) await ipBatch(node.netns, lines);
  }
}

export interface PodLink {
  readonly netns: string;
  readonly hostVeth: string;
  readonly ip4: string;
  readonly ip6: string;
}

/** Creates a pod's namespace and plugs it into its node's bridge, with routes to the cluster ranges only. */
export async function createPodNetwork(node: NodeLayout, pod: PodLink): Promise<void> {
  await addNetns(pod.netns);
  // IPv6 has no switch for sending redirects, so the pods ignore them (set before eth0 exists, which
  // inherits the defaults). Without this, replies from a same-node Service backend skip the node's
  // reverse NAT and the client resets them.
  await sysctl(pod.netns, {
    'net.ipv6.conf.all.accept_dad': '0',
    'net.ipv6.conf.default.accept_dad': '0',
    'net.ipv6.conf.all.accept_redirects': '0',
    'net.ipv6.conf.default.accept_redirects': '0',
    'net.ipv4.conf.all.accept_redirects': '0',
    'net.ipv4.conf.default.accept_redirects': '0',
  });
  await ipBatch(node.netns, [
    `link add ${pod.hostVeth} type veth peer name eth0 netns ${pod.netns}`,
    `link set ${pod.hostVeth} master ${NODE_BRIDGE}`,
    `link set ${pod.hostVeth} up`,
  ]);
  const fabric4 = '172.18.0.0/16';
  const fabric6 = 'fd00:18::/64';
  // Host-length addresses: every packet, also to a pod on the same node, goes to the gateway and is
  // routed by the node (as Calico does), so the node's NAT and inbound capture see all of it and
  // replies come back the same way. Nothing is switched pod to pod behind the node's back.
  await ipBatch(pod.netns, [
    `addr add ${pod.ip4}/32 dev eth0`,
    `addr add ${pod.ip6}/128 dev eth0 nodad`,
    'link set eth0 up',
    `route add ${node.gateway4} dev eth0 scope link`,
    `route add ${node.gateway6} dev eth0`,
    `route add ${POD_SUPERNET_V4} via ${node.gateway4} dev eth0`,
    `route add ${SERVICE_CIDR_V4} via ${node.gateway4} dev eth0`,
    `route add ${fabric4} via ${node.gateway4} dev eth0`,
    `route add ${POD_SUPERNET_V6} via ${node.gateway6} dev eth0`,
    `route add ${SERVICE_CIDR_V6} via ${node.gateway6} dev eth0`,
    `route add ${fabric6} via ${node.gateway6} dev eth0`,
  ]);
}

/** Applies an nftables ruleset inside a node's namespace. */
export async function applyNft(netns: string, rules: string): Promise<void> {
  await inNetns(netns, 'nft', ['-f', '-'], { input: rules });
}
