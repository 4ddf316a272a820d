import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { QosClass } from '../config/kube-types.js';
import { containerCgroupName, podCgroupPath } from '../os/kubelet-cgroups.js';

/**
 * Names and addresses of a local cluster. Everything a local cluster creates is named from here, so
 * that `ambit local down` can find all of it again by name, even when `up` was killed half-way and
 * left no state file behind.
 *
 * Address plan (every address lives inside namespaces this cluster created; none is routed off the machine):
 * - fabric (the "physical" network between nodes): 172.18.0.0/16 and fd00:18::/64, node i at .(i+1)
 * - pods on node i: 10.244.i.0/24 and fd00:10:244:i::/64, gateway .1 on the node's bridge
 * - Service VIPs: 10.96.0.0/16 and fd00:10:96::/112 (a VIP number n is 10.96.(n/256).(n%256) and fd00:10:96::n)
 */

export const DEFAULT_CLUSTER = 'ambit';
/** Cluster names are DNS labels, so they never contain the "." that separates name parts below. */
export const CLUSTER_NAME = /^[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?$/;
export const MAX_NODES = 16;

export const FABRIC_V4_PREFIX = '172.18.0';
export const FABRIC_V6_PREFIX = 'fd00:18::';
export const SERVICE_CIDR_V4 = '10.96.0.0/16';
export const SERVICE_CIDR_V6 = 'fd00:10:96::/112';
export const POD_SUPERNET_V4 = '10.244.0.0/16';
export const POD_SUPERNET_V6 = 'fd00:10:244::/48';

export interface NodeLayout {
  readonly name: string;
  readonly index: number;
  readonly netns: string;
  /** The node's address on the fabric (its InternalIP). */
  readonly ip4: string;
  readonly ip6: string;
  readonly podCidr4: string;
  readonly podCidr6: string;
  /** The node end of every pod's link; pods route cluster traffic here. */
  readonly gateway4: string;
  readonly gateway6: string;
  /** The node proxy's address on the pod bridge: eBPF sends enrolled pods' connections here. */
  readonly proxy4: string;
  readonly proxy6: string;
  /**
   * cgroup (relative to the cluster cgroup) under which the node's pods live, as a kubelet with the
   * systemd driver lays it out (`kubepods.slice`): the attach point for eBPF.
   */
  readonly podsCgroup: string;
  /** cgroup (relative to the cluster cgroup) for the node's own daemons. */
  readonly systemCgroup: string;
}

export function nodeName(index: number): string {
  return `node-${index}`;
}

export function nodeLayout(cluster: string, index: number): NodeLayout {
  const name = nodeName(index);
  return {
    name,
    index,
    netns: `${cluster}.${name}`,
    ip4: `${FABRIC_V4_PREFIX}.${index + 1}`,
    ip6: `${FABRIC_V6_PREFIX}${(index + 1).toString(16)}`,
    podCidr4: `10.244.${index}.0/24`,
    podCidr6: `fd00:10:244:${index.toString(16)}::/64`,
    gateway4: `10.244.${index}.1`,
    gateway6: `fd00:10:244:${index.toString(16)}::1`,
    proxy4: `10.244.${index}.254`,
    proxy6: `fd00:10:244:${index.toString(16)}::fe`,
    podsCgroup: join('nodes', name, 'kubepods.slice'),
    systemCgroup: join('nodes', name, 'system'),
  };
}

/** The fabric: a bridge in its own namespace that links all nodes; captures of cross-node traffic watch it. */
export function fabricNetns(cluster: string): string {
  return `${cluster}.fabric`;
}
export const FABRIC_BRIDGE = 'fabric0';
export const FABRIC_V4 = `${FABRIC_V4_PREFIX}.1`;
export const FABRIC_V6 = `${FABRIC_V6_PREFIX}1`;
export const NODE_BRIDGE = 'cbr0';
export const NODE_UPLINK = 'eth0';

/** Pod addresses on node `node` with host index `host` (2..254). */
export function podAddresses(node: NodeLayout, host: number): { ip4: string; ip6: string } {
  return {
    ip4: `10.244.${node.index}.${host}`,
    ip6: `fd00:10:244:${node.index.toString(16)}::${host.toString(16)}`,
  };
}
export const POD_HOST_MIN = 2;
/** .254 is the node proxy's address. */
export const POD_HOST_MAX = 250;

/** VIP number n (10..65534) in the Service ranges. */
export function serviceAddresses(n: number): { ip4: string; ip6: string } {
  return { ip4: `10.96.${n >> 8}.${n & 255}`, ip6: `fd00:10:96::${n.toString(16)}` };
}
export const SERVICE_HOST_MIN = 10;
export const SERVICE_HOST_MAX = 65534;

export function podNetns(cluster: string, namespace: string, pod: string): string {
  return `${cluster}.pod.${namespace}.${pod}`;
}

/** Interface names are limited to 15 bytes, so the node end of a pod link is named by a hash. */
export function podHostVeth(namespace: string, pod: string): string {
  return `veth${createHash('sha256').update(`${namespace}/${pod}`).digest('hex').slice(0, 8)}`;
}

/**
 * A pod's cgroup (relative to the cluster cgroup), in the kubelet's systemd layout below the node's
 * `kubepods.slice` (`kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice`, Guaranteed directly in it):
 * the node agent's resolver finds it there as it would on a real node.
 */
export function podCgroup(node: NodeLayout, uid: string, qosClass: QosClass): string {
  return podCgroupPath(
    { driver: 'systemd', podRoot: node.podsCgroup, slicePrefix: 'kubepods' },
    { uid, qosClass },
  );
}

/**
 * The id of a pod's container (or of its sandbox, `container` undefined), as a container runtime
 * makes one: 64 hex digits, here derived from the pod UID so that a restarted container keeps it.
 */
export function containerId(podUid: string, container?: string): string {
  return createHash('sha256')
    .update(container === undefined ? `${podUid}/sandbox` : `${podUid}/container/${container}`)
    .digest('hex');
}

/** A container's cgroup (relative, like its pod's): containerd's `cri-containerd-<id>.scope` below the pod slice. */
export function containerCgroup(podCgroupRel: string, id: string): string {
  return join(podCgroupRel, containerCgroupName('systemd', 'containerd', id));
}

/** Paths of one cluster's files. */
export interface ClusterPaths {
  readonly dir: string;
  /** What `ambit local status` reads: the cluster as the local daemon runs it. */
  readonly state: string;
  /** kubeconfig of local mode's Kubernetes API for the user (kubectl). */
  readonly kubeconfig: string;
  /** `ambit local up`'s progress channel (JSON lines). */
  readonly progress: string;
  readonly daemonLog: string;
  readonly lock: string;
  podDir(namespace: string, pod: string): string;
  containerLog(namespace: string, pod: string, container: string): string;
  nodeDir(node: string): string;
}

export function clusterPaths(runRoot: string, cluster: string): ClusterPaths {
  const dir = join(runRoot, cluster);
  return {
    dir,
    state: join(dir, 'state.json'),
    kubeconfig: join(dir, 'kube', 'admin.kubeconfig'),
    progress: join(dir, 'progress.jsonl'),
    daemonLog: join(dir, 'local.log'),
    lock: join(dir, 'daemon.pid'),
    podDir: (ns, pod) => join(dir, 'pods', ns, pod),
    containerLog: (ns, pod, c) => join(dir, 'pods', ns, pod, `${c}.log`),
    nodeDir: (node) => join(dir, 'nodes', node),
  };
}

/** `ip netns exec` bind-mounts the files of /etc/netns/<name>/ over /etc: per-pod hosts and resolv.conf. */
export function netnsEtcDir(netns: string): string {
  return join('/etc/netns', netns);
}

/** The cgroup v2 directory that holds all of a cluster's processes (pods, node daemons, the local daemon). */
export function clusterCgroupDir(cgroupRoot: string, cluster: string): string {
  return join(cgroupRoot, 'ambit', cluster);
}

/** The bpffs folder under which a local cluster's node agents pin their objects (one subfolder per node). */
export function clusterBpfDir(bpfRoot: string, cluster: string): string {
  return join(bpfRoot, `local-${cluster}`);
}
