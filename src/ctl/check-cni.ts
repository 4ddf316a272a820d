import { pickConfFile } from '../cni/conflist.js';
import type { CheckResult } from './check-result.js';

/*
 * `ambit check --pre`: what the node's CNI does to Ambit, decided from facts read off the node (bpftool,
 * bpffs, the CNI config folder) and, when the cluster can be reached, Cilium's ConfigMap. Parsers and
 * decisions are pure; check-node-facts.ts reads the machine.
 */

/** A program attached to a cgroup, as `bpftool -j cgroup show <cgroup>` lists it. */
export interface CgroupProgram {
  readonly id: number;
  /** `cgroup_inet4_connect` (bpftool 7), or `connect4` (older bpftool). */
  readonly attachType: string;
  /** `multi`, `override`, or `` (exclusive: the kernel refuses programs in sub-cgroups). */
  readonly attachFlags: string;
  readonly name: string;
}

/** A tc or tcx program on a network device, as `bpftool -j net show` lists it. */
export interface TcProgram {
  readonly device: string;
  /** `clsact/ingress`, `tcx/egress`, ... */
  readonly kind: string;
  /** The program's name (a tc filter's `:[*fsobj]`-style suffix removed). */
  readonly name: string;
}

/** A fact that could not be read, and why (the check says so instead of guessing). */
export interface Unread {
  readonly error: string;
}

export function isUnread<T>(v: T | Unread): v is Unread {
  return typeof v === 'object' && v !== null && 'error' in v;
}

/** The ConfigMap kube-system/cilium-config, as far as the check could learn it. */
export type CiliumConfigFact =
  /** No cluster access was given (no --kubeconfig, no kubectl context). */
  | { readonly state: 'not-read'; readonly why: string }
  | { readonly state: 'error'; readonly message: string }
  /** The cluster answered: there is no cilium-config. */
  | { readonly state: 'absent' }
  | { readonly state: 'found'; readonly data: Readonly<Record<string, string>> };

export interface CniFacts {
  /** The cgroup v2 root whose programs were read (undefined: no cgroup v2 is mounted). */
  readonly cgroupRoot: string | undefined;
  readonly rootPrograms: readonly CgroupProgram[] | Unread;
  readonly tcPrograms: readonly TcProgram[] | Unread;
  /** Names of the objects pinned in bpffs at tc/globals (Cilium's and Calico's maps live there). */
  readonly tcGlobals: readonly string[];
  readonly cniConfDir: string;
  /** The CNI config files in `cniConfDir`, by name; an Unread when the folder is missing. */
  readonly cniConfigs: readonly { readonly file: string; readonly text: string }[] | Unread;
  readonly ciliumConfig: CiliumConfigFact;
}

const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const asString = (v: unknown): string => (typeof v === 'string' ? v : '');
const asNumber = (v: unknown): number => (typeof v === 'number' ? v : 0);

/** Parses `bpftool -j cgroup show <cgroup>`: bpftool prints nothing at all for a cgroup without programs. */
export function parseCgroupShow(stdout: string): CgroupProgram[] {
  if (stdout.trim() === '') return [];
  return asArray(JSON.parse(stdout)).map((p) => {
    const o = (p ?? {}) as Record<string, unknown>;
    return {
      id: asNumber(o.id),
      attachType: asString(o.attach_type),
      attachFlags: asString(o.attach_flags),
      name: asString(o.name),
    };
  });
}

/**
 * Parses `bpftool -j net show`: one object with `xdp`, `tc` (classic clsact filters with `id`, tcx
 * links with `prog_id`) and `flow_dissector` arrays. A clsact filter's name is the filter's, which
 * tools suffix (`cil_from_netdev:[*fsobj]`, `cil_from_netdev-eth0`); the program name is kept whole.
 */
export function parseNetShow(stdout: string): TcProgram[] {
  if (stdout.trim() === '') return [];
  return asArray(JSON.parse(stdout)).flatMap((section) =>
    asArray((section as Record<string, unknown> | null)?.tc).map((t) => {
      const o = (t ?? {}) as Record<string, unknown>;
      return {
        device: asString(o.devname),
        kind: asString(o.kind),
        name: asString(o.name).replace(/:\[.*\]$/, ''),
      };
    }),
  );
}

/** The data of a ConfigMap printed by `kubectl get configmap -o json`. */
export function parseConfigMapData(stdout: string): Record<string, string> {
  const o = JSON.parse(stdout) as { kind?: unknown; data?: unknown };
  if (o.kind !== 'ConfigMap') throw new Error(`expected a ConfigMap, got kind ${JSON.stringify(o.kind)}`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((o.data ?? {}) as Record<string, unknown>))
    if (typeof v === 'string') out[k] = v;
  return out;
}

/**
 * Pure: what `kubectl -n kube-system get configmap cilium-config -o json` told: its output, or the
 * failure's message (the API server's NotFound means the cluster has no Cilium config).
 */
export function ciliumConfigFact(
  outcome: { readonly stdout: string } | { readonly error: string },
): CiliumConfigFact {
  if ('error' in outcome) {
    if (/\(NotFound\)/.test(outcome.error)) return { state: 'absent' };
    return { state: 'error', message: outcome.error };
  }
  try {
    return { state: 'found', data: parseConfigMapData(outcome.stdout) };
  } catch (err) {
    return { state: 'error', message: `unexpected kubectl output: ${(err as Error).message}` };
  }
}

/** A CNI config file, as the runtime picks them: the first by name of `.conf`, `.conflist` and `.json`. */
export interface PrimaryCni {
  readonly file: string;
  /** The network's name. */
  readonly name: string;
  /** Plugin types in chain order (a `.conf` holds one plugin). */
  readonly plugins: readonly string[];
  readonly isList: boolean;
}

/**
 * Pure: the primary CNI network, the way the runtime picks it (pickConfFile: config files sorted by
 * name, the first that is a usable config).
 */
export function primaryCni(
  configs: readonly { readonly file: string; readonly text: string }[],
): PrimaryCni | undefined {
  const texts = new Map(configs.map((c) => [c.file, c.text]));
  const file = pickConfFile([...texts.keys()], (n) => texts.get(n));
  if (file === undefined) return undefined;
  const o = JSON.parse(texts.get(file)!) as Record<string, unknown>;
  const isList = Array.isArray(o.plugins);
  const plugins = isList
    ? asArray(o.plugins).map((p) => asString((p as Record<string, unknown> | null)?.type))
    : [asString(o.type)];
  return { file, name: asString(o.name), plugins, isList };
}

/** Connect-time hooks a socket-level load balancer uses (bpftool 7 names, then older bpftool's). */
const CONNECT_TYPES = new Set([
  'cgroup_inet4_connect',
  'cgroup_inet6_connect',
  'cgroup_udp4_sendmsg',
  'cgroup_udp6_sendmsg',
  'connect4',
  'connect6',
  'sendmsg4',
  'sendmsg6',
]);

/** Which eBPF CNIs the node shows, and the evidence for each (for the check's detail). */
export interface EbpfCni {
  readonly cilium: readonly string[];
  readonly calico: readonly string[];
}

/** Pure: the evidence that Cilium or Calico's eBPF dataplane runs on this node. */
export function ebpfCniEvidence(f: CniFacts): EbpfCni {
  const cilium: string[] = [];
  const calico: string[] = [];
  const tc = f.tcPrograms;
  if (!isUnread(tc)) {
    const on = (prefix: string): string[] => {
      const byDev = new Map<string, Set<string>>();
      for (const p of tc)
        if (p.name.startsWith(prefix)) byDev.set(p.device, (byDev.get(p.device) ?? new Set()).add(p.name));
      return [...byDev].map(([dev, names]) => `${[...names].join(', ')} on ${dev}`);
    };
    cilium.push(...on('cil_'));
    calico.push(...on('cali'));
  }
  const ciliumMaps = f.tcGlobals.filter((n) => n.startsWith('cilium_'));
  if (ciliumMaps.length > 0) cilium.push(`${ciliumMaps.length} cilium_* maps pinned in tc/globals`);
  const calicoMaps = f.tcGlobals.filter((n) => n.startsWith('cali_'));
  if (calicoMaps.length > 0) calico.push(`${calicoMaps.length} cali_* maps pinned in tc/globals`);
  return { cilium, calico };
}

const yes = (v: string | undefined): boolean => v === 'true';

/** Pure: whether a cilium-config turns on socket LB in pods (kube-proxy replacement, or bpf-lb-sock). */
export function ciliumSocketLbInPods(data: Readonly<Record<string, string>>): boolean {
  const kpr = data['kube-proxy-replacement'];
  const socketLb = yes(data['bpf-lb-sock']) || kpr === 'true' || kpr === 'strict';
  return socketLb && !yes(data['bpf-lb-sock-hostns-only']);
}

/**
 * Pure: whether a cilium-config gives eBPF host routing. Cilium routes in eBPF, past the host's
 * netfilter, when it replaces kube-proxy and masquerades in eBPF, unless told to keep the host stack
 * (enable-host-legacy-routing); on kernels without the needed helpers it falls back by itself (the
 * kernel check covers that: 5.10+).
 */
export function ciliumBpfHostRouting(data: Readonly<Record<string, string>>): boolean {
  if (yes(data['enable-host-legacy-routing'])) return false;
  const kpr = data['kube-proxy-replacement'];
  return (kpr === 'true' || kpr === 'strict') && yes(data['enable-bpf-masquerade']);
}

function ciliumConfigNote(c: CiliumConfigFact): string {
  switch (c.state) {
    case 'not-read':
      return `kube-system/cilium-config was not read (${c.why})`;
    case 'error':
      return `kube-system/cilium-config could not be read: ${c.message}`;
    case 'absent':
      return 'the cluster has no kube-system/cilium-config';
    case 'found':
      return 'kube-system/cilium-config';
  }
}

/** Pure: the CNI rows of `ambit check --pre`. */
export function evaluateCni(f: CniFacts): CheckResult[] {
  const out: CheckResult[] = [];
  const evidence = ebpfCniEvidence(f);
  const cfg = f.ciliumConfig.state === 'found' ? f.ciliumConfig.data : undefined;
  const primary = isUnread(f.cniConfigs) ? undefined : primaryCni(f.cniConfigs);
  const ciliumCni = primary?.plugins.includes('cilium-cni') === true;
  const cilium = evidence.cilium.length > 0 || cfg !== undefined || ciliumCni;

  // The primary CNI network: where Ambit's plugin chains in.
  if (primary === undefined) {
    out.push({
      name: 'primary cni',
      status: 'warn',
      detail: isUnread(f.cniConfigs)
        ? `no ${f.cniConfDir} (${f.cniConfigs.error}): no CNI is installed on this node yet`
        : `no CNI network config in ${f.cniConfDir}`,
      fix: `install the cluster's CNI first: Ambit chains its plugin into the primary network's conflist (another folder: --cni-conf-dir)`,
    });
  } else if (!primary.isList) {
    out.push({
      name: 'primary cni',
      status: 'ok',
      detail: `${primary.file}: ${primary.plugins.join(', ')} (network ${JSON.stringify(primary.name)}) is a single-plugin config; the node agent converts it to a .conflist of the same name to chain in (and restores it on uninstall)`,
    });
  } else {
    out.push({
      name: 'primary cni',
      status: 'ok',
      detail: `${primary.file}: ${primary.plugins.join(' -> ')} (network ${JSON.stringify(primary.name)})`,
    });
  }

  // Cilium removes the conflists of other plugins unless told not to (Istio's ambient guide: cni.exclusive=false).
  if (cfg !== undefined && cfg['cni-exclusive'] !== 'false') {
    out.push({
      name: 'cni chaining',
      status: 'warn',
      detail:
        'Cilium owns the CNI config folder (cni-exclusive is not "false"): it removes the entry Ambit chains into the conflist',
      fix: 'install Cilium with cni.exclusive=false (cilium-config: cni-exclusive: "false")',
    });
  }

  out.push(socketLbResult(f, cfg, cilium));
  out.push(hostRoutingResult(f, evidence, cfg, cilium));
  return out;
}

function socketLbResult(
  f: CniFacts,
  cfg: Readonly<Record<string, string>> | undefined,
  cilium: boolean,
): CheckResult {
  const name = 'socket lb';
  const where = f.cgroupRoot ?? '(no cgroup v2 root)';
  if (isUnread(f.rootPrograms)) {
    return {
      name,
      status: 'warn',
      detail: `could not list the programs of the root cgroup ${where}: ${f.rootPrograms.error}`,
      fix: 'run as root with bpftool installed (make deps)',
    };
  }
  const lbs = f.rootPrograms.filter(
    (p) => CONNECT_TYPES.has(p.attachType) && (p.name.startsWith('cil_sock') || p.name.startsWith('calico_')),
  );
  const exclusive = lbs.filter((p) => p.attachFlags === '');
  if (exclusive.length > 0) {
    return {
      name,
      status: 'fail',
      detail: `${exclusive.map((p) => p.name).join(', ')} attached to ${where} without "multi": the kernel refuses every program in the cgroups below, Ambit's connect hooks on the pods cgroup included`,
      fix: 'have the CNI attach its cgroup programs as multi or through bpf links (current Cilium and Calico releases do), or turn its socket load balancing off',
    };
  }
  const ciliumLb = lbs.filter((p) => p.name.startsWith('cil_sock'));
  const calicoLb = lbs.filter((p) => p.name.startsWith('calico_'));
  const names = (ps: readonly CgroupProgram[]): string => [...new Set(ps.map((p) => p.name))].join(', ');
  // Why it matters: the kernel runs a socket's cgroup programs from its own cgroup up to the root, so
  // Ambit's hooks on the pods cgroup see an enrolled pod's Service VIP before Cilium's root hooks would
  // rewrite it; Cilium then sees the node proxy's address and leaves it. What Ambit passes on (pods
  // not enrolled, UDP, ports it does not capture) is still translated at connect time in the pod.
  const why =
    "Ambit's connect hooks on the pods cgroup run before these root hooks (the kernel runs a socket's own cgroup first), so enrolled pods still reach Ambit with their Service VIPs; connections Ambit passes on are rewritten to a backend pod IP at connect time in the pod";
  if (ciliumLb.length > 0 || (cfg !== undefined && ciliumSocketLbInPods(cfg))) {
    if (cfg !== undefined && yes(cfg['bpf-lb-sock-hostns-only'])) {
      return {
        name,
        status: 'ok',
        detail: `Cilium socket LB${ciliumLb.length > 0 ? ` (${names(ciliumLb)} at ${where})` : ''} serves the host namespace only (bpf-lb-sock-hostns-only: "true")`,
      };
    }
    return {
      name,
      status: 'warn',
      detail: `Cilium socket LB serves pods${ciliumLb.length > 0 ? `: ${names(ciliumLb)} at ${where}` : ' (cilium-config)'}; ${why}; ${cfg === undefined ? ciliumConfigNote(f.ciliumConfig) : 'cilium-config does not set bpf-lb-sock-hostns-only: "true"'}`,
      fix: 'install Cilium with socketLB.hostNamespaceOnly=true (cilium-config: bpf-lb-sock-hostns-only: "true"), as Cilium\'s Istio guide asks for ambient mode',
    };
  }
  if (calicoLb.length > 0) {
    return {
      name,
      status: 'warn',
      detail: `Calico eBPF connect-time load balancing: ${names(calicoLb)} at ${where}; ${why}`,
      fix: 'set FelixConfiguration bpfConnectTimeLoadBalancing: Disabled (with bpfHostNetworkedNATWithoutCTLB: Enabled)',
    };
  }
  return {
    name,
    status: 'ok',
    detail: `no socket-level load balancer at the root cgroup ${where}${cilium ? ` (Cilium: ${ciliumConfigNote(f.ciliumConfig)})` : ''}`,
  };
}

function hostRoutingResult(
  f: CniFacts,
  evidence: EbpfCni,
  cfg: Readonly<Record<string, string>> | undefined,
  cilium: boolean,
): CheckResult {
  const name = 'host routing';
  const strict =
    "packets to pods bypass the host's netfilter, where Ambit's inbound capture (nftables) runs: STRICT inbound cannot be promised on this node (plaintext to enrolled pods is not seen, so not refused)";
  const seen = evidence.cilium.length > 0 ? ` (${evidence.cilium.join('; ')})` : '';
  if (cilium) {
    if (cfg !== undefined) {
      return ciliumBpfHostRouting(cfg)
        ? {
            name,
            status: 'warn',
            detail: `Cilium eBPF host routing (kube-proxy-replacement with BPF masquerading, enable-host-legacy-routing not "true"): ${strict}`,
            fix: 'install Cilium with bpf.hostLegacyRouting=true (cilium-config: enable-host-legacy-routing: "true")',
          }
        : {
            name,
            status: 'ok',
            detail:
              "Cilium routes through the host stack (legacy host routing): pod traffic crosses the host's netfilter, where the inbound capture runs",
          };
    }
    return {
      name,
      status: 'warn',
      detail: `Cilium runs on this node${seen}, and ${ciliumConfigNote(f.ciliumConfig)}: whether its eBPF host routing is on is not known. If it is (the default with kube-proxy replacement and BPF masquerading), ${strict}`,
      fix: 'let the check read kube-system/cilium-config (--kubeconfig, --context), or install Cilium with bpf.hostLegacyRouting=true',
    };
  }
  if (evidence.calico.length > 0) {
    return {
      name,
      status: 'warn',
      detail: `Calico eBPF dataplane (${evidence.calico.join('; ')}): it forwards pod traffic in tc programs; ${strict}`,
      fix: "use Calico's iptables or nftables dataplane on nodes that need STRICT inbound",
    };
  }
  if (isUnread(f.tcPrograms)) {
    return {
      name,
      status: 'warn',
      detail: `could not list the tc programs on this node's devices: ${f.tcPrograms.error}`,
      fix: 'run as root with bpftool installed (make deps)',
    };
  }
  return {
    name,
    status: 'ok',
    detail:
      "no eBPF host routing (no Cilium or Calico eBPF programs on the host's devices): pod traffic crosses the host's netfilter",
  };
}
