import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Libbpf, libbpfVersion } from '../bpf/libbpf.js';
import { AmbitError, describeError, ErrorCode } from '../errors.js';
import { bpffsMounts } from '../os/bpffs.js';
import { cgroup2Mounts, detectCgroup2Root } from '../os/cgroup.js';
import { evaluateCni } from './check-cni.js';
import { DEFAULT_CNI_CONF_DIR, readCniFacts } from './check-node-facts.js';
import type { CheckResult } from './check-result.js';
import { parseOutputFormat, render, table } from './output.js';
import type { CliSettings } from './settings.js';

export type { CheckResult, CheckStatus } from './check-result.js';

/**
 * What the machine is checked for: `local` (this machine runs a local cluster: `ambit check`), or
 * `cluster` (this machine is a Kubernetes node the DaemonSet will run on: `ambit check --pre`).
 */
export type CheckMode = 'local' | 'cluster';

/** What the checks read from the machine; tests pass their own. */
export interface MachineFacts {
  readonly kernel: string;
  readonly btf: boolean;
  readonly capEff: bigint;
  readonly cgroup2: readonly string[];
  readonly cgroup2Configured?: string;
  /** The filesystem mounted at /sys/fs/cgroup: `cgroup2` on a unified host, `tmpfs` on v1 and hybrid hosts. */
  readonly sysFsCgroup?: string;
  readonly bpffs: readonly string[];
  readonly libbpf: string | undefined;
  readonly bpfObject: boolean;
  readonly bpfLoad: string | undefined;
  readonly tools: Readonly<Record<string, boolean>>;
}

const CAPS: readonly [string, number][] = [
  ['CAP_NET_ADMIN', 12],
  ['CAP_SYS_ADMIN', 21],
  ['CAP_PERFMON', 38],
  ['CAP_BPF', 39],
];

export const MIN_KERNEL: readonly [number, number] = [5, 10];

/** Pure: the cgroup row for cluster mode, which needs the unified hierarchy at /sys/fs/cgroup. */
function clusterCgroup(f: MachineFacts): CheckResult {
  if (f.sysFsCgroup === 'cgroup2')
    return { name: 'cgroup v2', status: 'ok', detail: '/sys/fs/cgroup (unified hierarchy)' };
  const v2 = f.cgroup2.filter((m) => m !== '/sys/fs/cgroup');
  const why =
    "cluster mode needs the unified hierarchy at /sys/fs/cgroup: the kubelet puts pods in cgroup v2 only there, and Ambit attaches below the kubelet's pod root";
  return {
    name: 'cgroup v2',
    status: 'fail',
    detail:
      v2.length > 0
        ? `hybrid host: cgroup v2 only at ${v2.join(', ')}, v1 controllers at /sys/fs/cgroup; ${why} (local mode runs here: ambit check)`
        : `cgroup v1 host: no cgroup v2 at /sys/fs/cgroup; ${why}`,
    fix: 'boot the node with systemd.unified_cgroup_hierarchy=1 on the kernel command line (systemd older than 247 also wants cgroup_no_v1=all), and run the kubelet and the container runtime with the systemd cgroup driver',
  };
}

/** Pure: what each fact means for Ambit in `mode`, with a fix for anything short of ok. */
export function evaluate(f: MachineFacts, mode: CheckMode = 'local'): CheckResult[] {
  const out: CheckResult[] = [];
  const [maj = 0, min = 0] = f.kernel.split(/[.-]/).map(Number);
  const kernelOk = maj > MIN_KERNEL[0] || (maj === MIN_KERNEL[0] && min >= MIN_KERNEL[1]);
  out.push(
    kernelOk
      ? { name: 'kernel', status: 'ok', detail: `Linux ${f.kernel}` }
      : {
          name: 'kernel',
          status: 'fail',
          detail: `Linux ${f.kernel} is older than ${MIN_KERNEL.join('.')}`,
          fix: 'upgrade the kernel (cgroup connect hooks, bpf_link and sockops need 5.10+)',
        },
  );
  out.push(
    f.btf
      ? { name: 'btf', status: 'ok', detail: '/sys/kernel/btf/vmlinux' }
      : {
          name: 'btf',
          status: 'fail',
          detail: 'no /sys/kernel/btf/vmlinux',
          fix: 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y',
        },
  );
  const missing = CAPS.filter(([, bit]) => (f.capEff & (1n << BigInt(bit))) === 0n).map(([n]) => n);
  out.push(
    missing.length === 0
      ? { name: 'capabilities', status: 'ok', detail: CAPS.map(([n]) => n).join(' ') }
      : {
          name: 'capabilities',
          status: 'fail',
          detail: `missing ${missing.join(', ')}`,
          fix: 'run as root (sudo), or grant these capabilities to the node agent',
        },
  );
  const root = detectCgroup2Root(f.cgroup2Configured, [...f.cgroup2]);
  out.push(
    mode === 'cluster'
      ? clusterCgroup(f)
      : root === undefined
        ? {
            name: 'cgroup v2',
            status: 'warn',
            detail: 'no cgroup v2 hierarchy is mounted',
            fix: 'Ambit mounts one at /run/ambit-cgroup2 on start; or mount -t cgroup2 none <dir> and set AMBIT_CGROUP2_ROOT',
          }
        : {
            name: 'cgroup v2',
            status: 'ok',
            detail:
              root === '/sys/fs/cgroup' ? root : `${root} (hybrid host: v1 controllers at /sys/fs/cgroup)`,
          },
  );
  out.push(
    f.bpffs.includes('/sys/fs/bpf')
      ? { name: 'bpffs', status: 'ok', detail: '/sys/fs/bpf' }
      : mode === 'cluster'
        ? {
            name: 'bpffs',
            status: 'fail',
            detail:
              "not mounted at /sys/fs/bpf: the agent's pins would live in its container's mount and go with it, and its links with them",
            fix: 'mount it on the host (mount -t bpf bpf /sys/fs/bpf; systemd: sys-fs-bpf.mount), which the DaemonSet mounts into the agent',
          }
        : {
            name: 'bpffs',
            status: 'warn',
            detail: 'not mounted at /sys/fs/bpf',
            fix: 'Ambit mounts it on start; or: mount -t bpf bpf /sys/fs/bpf',
          },
  );
  const libOk = f.libbpf !== undefined && Number(f.libbpf.split('.')[0]) >= 1;
  out.push(
    libOk
      ? { name: 'libbpf', status: 'ok', detail: `libbpf ${f.libbpf}` }
      : {
          name: 'libbpf',
          status: 'fail',
          detail: f.libbpf === undefined ? 'libbpf.so.1 not found' : `libbpf ${f.libbpf} is older than 1.0`,
          fix: 'make deps (installs libbpf1 and libbpf-dev)',
        },
  );
  out.push(
    !f.bpfObject
      ? { name: 'bpf programs', status: 'fail', detail: 'bpf/redirect.bpf.o is not built', fix: 'make build' }
      : f.bpfLoad === undefined
        ? { name: 'bpf programs', status: 'ok', detail: 'bpf/redirect.bpf.o loads and passes the verifier' }
        : {
            name: 'bpf programs',
            status: 'fail',
            detail: `the kernel refused bpf/redirect.bpf.o: ${f.bpfLoad}`,
            fix: 'check the capabilities and kernel above; the verifier log is on stderr',
          },
  );
  const tools = Object.entries(f.tools)
    .filter(([, ok]) => !ok)
    .map(([t]) => t);
  out.push(
    tools.length === 0
      ? { name: 'tools', status: 'ok', detail: Object.keys(f.tools).join(' ') }
      : { name: 'tools', status: 'fail', detail: `missing ${tools.join(', ')}`, fix: 'make deps' },
  );
  return out;
}

const here = dirname(fileURLToPath(import.meta.url));
const OBJECT = join(here, '..', '..', 'bpf', 'redirect.bpf.o');
const TOOLS = ['ip', 'nft', 'nsenter', 'sysctl', 'mount', 'bpftool'];

/** Pure: the filesystem type of the last mount at `path` in a mountinfo text (the one in effect). */
export function fsTypeAt(mountinfo: string, path: string): string | undefined {
  let found: string | undefined;
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0 || line.split(' ')[4] !== path) continue;
    found = line.slice(sep + 3).split(' ')[0];
  }
  return found;
}

function readFacts(s: CliSettings): MachineFacts {
  const status = readFileSync('/proc/self/status', 'utf8');
  const capHex = /CapEff:\s*([0-9a-f]+)/.exec(status)?.[1] ?? '0';
  let libbpf: string | undefined;
  let bpfLoad: string | undefined;
  try {
    libbpf = libbpfVersion();
  } catch {
    libbpf = undefined;
  }
  const bpfObject = existsSync(OBJECT);
  if (bpfObject && libbpf !== undefined) {
    try {
      new Libbpf().loadObject(OBJECT).close();
    } catch (err) {
      bpfLoad = describeError(err);
    }
  }
  const tools: Record<string, boolean> = {};
  for (const t of TOOLS) {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      tools[t] = true;
    } catch {
      tools[t] = false;
    }
  }
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  const sysFsCgroup = fsTypeAt(mountinfo, '/sys/fs/cgroup');
  return {
    kernel: release(),
    ...(sysFsCgroup === undefined ? {} : { sysFsCgroup }),
    btf: existsSync('/sys/kernel/btf/vmlinux'),
    capEff: BigInt(`0x${capHex}`),
    cgroup2: cgroup2Mounts(mountinfo),
    ...(s.cgroup2Root === undefined ? {} : { cgroup2Configured: s.cgroup2Root }),
    bpffs: bpffsMounts(mountinfo),
    libbpf,
    bpfObject,
    bpfLoad,
    tools,
  };
}

export const CHECK_USAGE = `Usage: ambit check [--pre [--kubeconfig FILE] [--context NAME] [--cni-conf-dir DIR]] [-o table|json|yaml]

Preflight: checks that this machine can run Ambit (kernel version, BTF, cgroup v2, bpffs, capabilities,
libbpf, the compiled BPF object and the tools local mode uses), each with a fix. Exits 1 if one fails.

  --pre            check this machine as a Kubernetes node for cluster mode: the unified cgroup v2
                   hierarchy at /sys/fs/cgroup (a v1 or hybrid host fails), bpffs at /sys/fs/bpf, and
                   the CNI: the primary network in the CNI config folder, socket-level load balancing at
                   the root cgroup (Cilium, Calico eBPF), and eBPF host routing that bypasses the host's
                   netfilter (then STRICT inbound cannot be promised). Cilium's settings are read from
                   kube-system/cilium-config with kubectl when the cluster can be reached.
  --kubeconfig     kubeconfig for reading cilium-config (default: kubectl's current context, if any)
  --context        kubeconfig context to use
  --cni-conf-dir   the CNI config folder (default ${DEFAULT_CNI_CONF_DIR})`;

export async function checkCommand(argv: readonly string[], s: CliSettings): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      output: { type: 'string', short: 'o' },
      pre: { type: 'boolean' },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      'cni-conf-dir': { type: 'string' },
    },
  });
  const format = parseOutputFormat(values.output);
  const pre = values.pre === true;
  if (!pre) {
    const misplaced = (['kubeconfig', 'context', 'cni-conf-dir'] as const).filter(
      (k) => values[k] !== undefined,
    );
    if (misplaced.length > 0)
      throw new AmbitError(ErrorCode.USAGE, `--${misplaced.join(', --')}: only with --pre (the node checks)`);
  }
  const mode: CheckMode = pre ? 'cluster' : 'local';
  const facts = readFacts(s);
  const results = evaluate(facts, mode);
  if (pre) {
    const cluster =
      values.kubeconfig === undefined && values.context === undefined
        ? undefined
        : {
            ...(values.kubeconfig === undefined ? {} : { kubeconfig: values.kubeconfig }),
            ...(values.context === undefined ? {} : { context: values.context }),
          };
    const cni = await readCniFacts({
      // Cluster mode's root; on a hybrid host (which fails above) the v2 mount there is, for the CNI rows.
      cgroupRoot:
        facts.sysFsCgroup === 'cgroup2' ? '/sys/fs/cgroup' : detectCgroup2Root(undefined, [...facts.cgroup2]),
      cniConfDir: values['cni-conf-dir'] ?? DEFAULT_CNI_CONF_DIR,
      cluster,
    });
    results.push(...evaluateCni(cni));
  }
  const failed = results.some((r) => r.status === 'fail');
  const what = pre ? 'This node' : 'This machine';
  const can = pre ? 'can run Ambit in cluster mode' : 'can run Ambit';
  if (format === 'json' || format === 'yaml') {
    process.stdout.write(`${render({ mode, ok: !failed, checks: results }, format)}\n`);
  } else {
    const mark = { ok: 'ok', warn: 'WARN', fail: 'FAIL' } as const;
    process.stdout.write(
      `${table(
        ['CHECK', 'STATUS', 'DETAIL'],
        results.map((r) => [r.name, mark[r.status], r.detail]),
      )}\n`,
    );
    const fixes = results.filter((r) => r.fix !== undefined);
    if (fixes.length > 0) process.stdout.write(`\n${fixes.map((r) => `${r.name}: ${r.fix}`).join('\n')}\n`);
    process.stdout.write(failed ? `\n${what} cannot run Ambit yet.\n` : `\n${what} ${can}.\n`);
  }
  return failed ? 1 : 0;
}
