import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Libbpf, libbpfVersion } from '../bpf/libbpf.js';
import { describeError } from '../errors.js';
import { bpffsMounts } from '../os/bpffs.js';
import { cgroup2Mounts, detectCgroup2Root } from '../os/cgroup.js';
import { parseOutputFormat, render, table } from './output.js';
import type { CliSettings } from './settings.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
  /** What to do about a warning or failure. */
  readonly fix?: string;
}

/** What the checks read from the machine; tests pass their own. */
export interface MachineFacts {
  readonly kernel: string;
  readonly btf: boolean;
  readonly capEff: bigint;
  readonly cgroup2: readonly string[];
  readonly cgroup2Configured?: string;
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

/** Pure: what each fact means for Ambit, with a fix for anything short of ok. */
export function evaluate(f: MachineFacts): CheckResult[] {
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
    root === undefined
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
  return {
    kernel: release(),
    btf: existsSync('/sys/kernel/btf/vmlinux'),
    capEff: BigInt(`0x${capHex}`),
    cgroup2: cgroup2Mounts(),
    ...(s.cgroup2Root === undefined ? {} : { cgroup2Configured: s.cgroup2Root }),
    bpffs: bpffsMounts(),
    libbpf,
    bpfObject,
    bpfLoad,
    tools,
  };
}

export const CHECK_USAGE = `Usage: ambit check [-o table|json|yaml]

Preflight: checks that this machine can run Ambit (kernel version, BTF, cgroup v2, bpffs, capabilities,
libbpf, the compiled BPF object and the tools local mode uses), each with a fix. Exits 1 if one fails.`;

export function checkCommand(argv: readonly string[], s: CliSettings): number {
  const { values } = parseArgs({ args: [...argv], options: { output: { type: 'string', short: 'o' } } });
  const format = parseOutputFormat(values.output);
  const results = evaluate(readFacts(s));
  const failed = results.some((r) => r.status === 'fail');
  if (format === 'json' || format === 'yaml') {
    process.stdout.write(`${render({ ok: !failed, checks: results }, format)}\n`);
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
    process.stdout.write(
      failed ? '\nThis machine cannot run Ambit yet.\n' : '\nThis machine can run Ambit.\n',
    );
  }
  return failed ? 1 : 0;
}
