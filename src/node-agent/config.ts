import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CNI_SOCKET } from '../api/cni.js';
import { DaemonFlags } from '../config/flags.js';
import { type KubeSettings, kubeSettings } from '../config/kube-settings.js';
import type { LogLevel } from '../config/log-level.js';
import { DEFAULT_AGENT_READY_FILE } from '../node/agent-ready.js';
import { CGROUP_LAYOUTS, type CgroupLayout } from './pod-cgroups.js';

const POD_UID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const here = dirname(fileURLToPath(import.meta.url));

/** Node agent settings, from flags with environment fallbacks (the DaemonSet sets env). Frozen after parse. */
export interface AgentConfig {
  readonly node: string;
  /**
   * The cgroup v2 mount (--cgroup-root; /sys/fs/cgroup when absent). The DaemonSet passes the host's
   * (its hostPath mount); local mode passes its own. With a pod UID, or at /sys/fs/cgroup, the unified
   * hierarchy is required there (src/node-agent/node-cgroups.ts).
   */
  readonly cgroupRoot?: string;
  /**
   * Attach point override (--pods-cgroup): the kubelet's pod root or a cgroup below it, checked against
   * the root discovered from the agent's own pod when `podUid` is given (its pod cgroup, from
   * /proc/self/cgroup or found by the UID below the cgroup mount); without a pod UID (local mode) it is
   * the pod root itself.
   */
  readonly podsCgroup?: string;
  /**
   * The agent's own pod UID (downward API metadata.uid, env POD_UID): cluster mode. It also makes a
   * bpffs missing at /sys/fs/bpf an error rather than a private mount (src/os/bpffs.ts).
   */
  readonly podUid?: string;
  /** How pod cgroups are laid out below `podsCgroup`. */
  readonly cgroupLayout: CgroupLayout;
  readonly bpfDir: string;
  readonly bpfObject: string;
  readonly proxyIp4: string;
  /**
   * Where pods' IPv6 connections go: the node's IPv6 address. Undefined on a node without one (an
   * IPv4-only node): IPv6 connections are then left alone (they cannot leave the node anyway), rather
   * than sent to an IPv4-mapped stand-in, which an IPV6_V6ONLY socket cannot connect to (ENETUNREACH)
   * and which hands a dual-stack socket's IPv6 connection to the IPv4 listener, to be accepted and
   * then fail upstream instead of failing at connect.
   */
  readonly proxyIp6: string | undefined;
  readonly outboundPort: number;
  /** Where the cluster is read: the Kubernetes API of this kubeconfig, else the in-cluster one. */
  readonly kube: KubeSettings;
  readonly logLevel: LogLevel;
  readonly uninstall: boolean;
  /** Unix socket for the CNI plugin's calls (enroll a pod before it starts); the enrolled-namespaces file is beside it. */
  readonly cniSocket: string;
  /** The runtime's CNI bin dir, where the agent installs the plugin binary. */
  readonly cniBinDir: string;
  /** The runtime's CNI conf dir, whose conflist the agent inserts itself into. */
  readonly cniConfDir: string;
  /** The plugin binary to install (built by `make cni`). */
  readonly cniPlugin: string;
  /** Where to write the list of enrolled pods (local mode). */
  readonly statusFile?: string;
  /** The node proxy's transparent listener for captured inbound plaintext. */
  readonly inboundPort: number;
  /**
   * The ready file of the readiness contract with the node proxy (src/node/agent-ready.ts), or
   * undefined (`--ready-file ''`) to claim nothing.
   */
  readonly readyFile: string | undefined;
  /**
   * Namespaces the CNI plugin never fails closed for, also when it cannot tell (the agent down and its
   * file unreadable): written into the conflist entry (`excludeNamespaces`). Default kube-system and
   * Ambit's own namespace (POD_NAMESPACE, else ambit-system).
   */
  readonly cniExcludeNamespaces: readonly string[];
  /** How often enrollment is reconciled from the API view and the cgroup tree, besides every change. */
  readonly resyncSeconds: number;
}

/**
 * The node proxy's addresses that pods' connections are redirected to: the given ones, else the node's
 * first IPv4 and first IPv6 address among `hostIps` (status.hostIPs). No IPv6 one on an IPv4-only
 * node; `proxyIp6` '' says "none" explicitly. Pure.
 */
export function proxyTargetsOf(
  hostIps: readonly string[],
  proxyIp4?: string,
  proxyIp6?: string,
): { ip4: string | undefined; ip6: string | undefined } {
  const ip4 = proxyIp4 ?? hostIps.find((ip) => isIP(ip) === 4);
  const ip6 = proxyIp6 === '' ? undefined : (proxyIp6 ?? hostIps.find((ip) => isIP(ip) === 6));
  return { ip4, ip6 };
}

export function parseAgentConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const f = DaemonFlags.parse(
    'node agent',
    {
      node: 'string',
      'cgroup-root': 'string',
      'pods-cgroup': 'string',
      'pod-uid': 'string',
      'cgroup-layout': 'string',
      'bpf-dir': 'string',
      'bpf-object': 'string',
      'proxy-ip4': 'string',
      'proxy-ip6': 'string',
      'host-ips': 'string',
      'outbound-port': 'string',
      kubeconfig: 'string',
      'log-level': 'string',
      uninstall: 'boolean',
      'cni-socket': 'string',
      'cni-exclude-namespaces': 'list',
      'resync-interval': 'string',
      'cni-bin-dir': 'string',
      'cni-conf-dir': 'string',
      'cni-plugin': 'string',
      'status-file': 'string',
      'inbound-port': 'string',
      'ready-file': 'string',
    },
    argv,
    env,
  );
  const bpfDir = f.required('bpf-dir', { env: 'AMBIT_BPF_DIR' });
  const uninstall = f.bool('uninstall');
  // Uninstall needs only the pin folder and the CNI dirs (which have defaults); everything else is for running.
  const need = (flag: string, envName: string, family?: 4 | 6): string => {
    if (uninstall) return '';
    const v = f.required(flag, { env: envName });
    if (family !== undefined && v !== '') f.ip(v, flag, family);
    return v;
  };
  const layout = f.string('cgroup-layout', 'kubelet', { env: 'AMBIT_CGROUP_LAYOUT' });
  if (!(CGROUP_LAYOUTS as readonly string[]).includes(layout))
    f.error(`--cgroup-layout ${layout}: use one of ${CGROUP_LAYOUTS.join(', ')}`);
  const statusFile = f.optional('status-file');
  const node = need('node', 'AMBIT_NODE_NAME');
  const cgroupRoot = f.optional('cgroup-root', { env: 'AMBIT_CGROUP2_ROOT' });
  const podsCgroup = f.optional('pods-cgroup', { env: 'AMBIT_PODS_CGROUP' });
  const podUid = f.optional('pod-uid', {
    env: 'POD_UID',
    check: (v) => (POD_UID.test(v) ? undefined : 'is not a pod UID (a UUID)'),
  });
  if (!uninstall && podsCgroup === undefined && podUid === undefined)
    f.error('--pods-cgroup or the pod UID (--pod-uid, env POD_UID from the downward API) is required');
  const readyFile = f.string('ready-file', DEFAULT_AGENT_READY_FILE, { env: 'AMBIT_READY_FILE' });
  // The node proxy's addresses: the node's (--host-ips, downward API status.hostIPs), or given.
  const proxyTargets = (): { proxyIp4: string; proxyIp6: string | undefined } => {
    if (uninstall) return { proxyIp4: '', proxyIp6: undefined };
    const hostIps = f.optional('host-ips', { env: 'HOST_IPS' });
    const ip4 = f.optional('proxy-ip4', { env: 'AMBIT_PROXY_IP4' });
    const ip6 = f.optional('proxy-ip6', { env: 'AMBIT_PROXY_IP6' });
    if (ip4 !== undefined) f.ip(ip4, 'proxy-ip4', 4);
    if (ip6 !== undefined && ip6 !== '') f.ip(ip6, 'proxy-ip6', 6);
    const ips = (hostIps ?? '').split(',').filter((s) => s !== '');
    for (const ip of ips) f.ip(ip, 'host-ips');
    const t = proxyTargetsOf(ips, ip4, ip6);
    if (t.ip4 === undefined)
      f.error(
        hostIps === undefined
          ? '--proxy-ip4 (or AMBIT_PROXY_IP4) or --host-ips (env HOST_IPS, downward API status.hostIPs) is required'
          : `--host-ips ${hostIps}: the node has no IPv4 address (give --proxy-ip4)`,
      );
    return { proxyIp4: t.ip4 ?? '', proxyIp6: t.ip6 };
  };
  return f.finish({
    node,
    ...(cgroupRoot === undefined ? {} : { cgroupRoot }),
    ...(podsCgroup === undefined ? {} : { podsCgroup }),
    ...(podUid === undefined ? {} : { podUid }),
    cgroupLayout: layout as CgroupLayout,
    bpfDir,
    bpfObject: f.string('bpf-object', join(here, '..', '..', 'bpf', 'redirect.bpf.o'), {
      env: 'AMBIT_BPF_OBJECT',
    }),
    ...proxyTargets(),
    outboundPort: f.port('outbound-port', 15001, { min: 1 }),
    kube: kubeSettings(f.optional('kubeconfig', { env: 'KUBECONFIG' }), env),
    logLevel: f.logLevel(),
    uninstall,
    cniSocket: f.string('cni-socket', DEFAULT_CNI_SOCKET, { env: 'AMBIT_CNI_SOCKET' }),
    cniBinDir: f.string('cni-bin-dir', '/opt/cni/bin', { env: 'AMBIT_CNI_BIN_DIR' }),
    cniConfDir: f.string('cni-conf-dir', '/etc/cni/net.d', { env: 'AMBIT_CNI_CONF_DIR' }),
    cniPlugin: f.string('cni-plugin', join(here, '..', '..', 'build', 'cni', 'ambit-cni'), {
      env: 'AMBIT_CNI_PLUGIN',
    }),
    ...(statusFile === undefined ? {} : { statusFile }),
    inboundPort: f.port('inbound-port', 15006, { min: 1 }),
    readyFile: readyFile === '' ? undefined : readyFile,
    cniExcludeNamespaces: f.list('cni-exclude-namespaces', {
      env: 'AMBIT_CNI_EXCLUDE_NAMESPACES',
      default: ['kube-system', env.POD_NAMESPACE ?? 'ambit-system'],
    }),
    resyncSeconds: f.seconds('resync-interval', 30, { env: 'AMBIT_RESYNC_INTERVAL' }),
  });
}
