import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeError } from '../errors.js';
import { run } from '../os/run-command.js';
import {
  type CgroupProgram,
  type CiliumConfigFact,
  type CniFacts,
  ciliumConfigFact,
  parseCgroupShow,
  parseNetShow,
  type TcProgram,
  type Unread,
} from './check-cni.js';

/** Where Cilium and Calico pin their tc maps. */
const TC_GLOBALS = '/sys/fs/bpf/tc/globals';
/** The folder every runtime reads CNI configs from unless configured otherwise. */
export const DEFAULT_CNI_CONF_DIR = '/etc/cni/net.d';

/** How the check may reach the cluster: a kubeconfig and context, or kubectl's own default. */
export interface ClusterAccess {
  readonly kubeconfig?: string;
  readonly context?: string;
}

const short = (err: unknown): string => describeError(err).split('\n')[0] ?? '';

async function rootPrograms(root: string | undefined): Promise<readonly CgroupProgram[] | Unread> {
  if (root === undefined) return { error: 'no cgroup v2 hierarchy is mounted' };
  try {
    return parseCgroupShow(await run('bpftool', ['-j', 'cgroup', 'show', root], { timeoutMs: 10_000 }));
  } catch (err) {
    return { error: short(err) };
  }
}

async function tcPrograms(): Promise<readonly TcProgram[] | Unread> {
  try {
    return parseNetShow(await run('bpftool', ['-j', 'net', 'show'], { timeoutMs: 10_000 }));
  } catch (err) {
    return { error: short(err) };
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function cniConfigs(dir: string): CniFacts['cniConfigs'] {
  let files: string[];
  try {
    files = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isFile() || e.isSymbolicLink())
      .map((e) => e.name);
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code ?? short(err) };
  }
  return files.flatMap((file) => {
    try {
      return [{ file, text: readFileSync(join(dir, file), 'utf8') }];
    } catch {
      return [];
    }
  });
}

/**
 * kube-system/cilium-config through kubectl (Ambit carries no kubeconfig code of its own): with the
 * given kubeconfig/context, else with kubectl's current context when it has one.
 */
async function ciliumConfig(access: ClusterAccess | undefined): Promise<CiliumConfigFact> {
  const args = [
    ...(access?.kubeconfig === undefined ? [] : ['--kubeconfig', access.kubeconfig]),
    ...(access?.context === undefined ? [] : ['--context', access.context]),
  ];
  if (access?.kubeconfig === undefined && access?.context === undefined) {
    try {
      await run('kubectl', ['config', 'current-context'], { timeoutMs: 5000 });
    } catch {
      return { state: 'not-read', why: 'no --kubeconfig and kubectl has no current context' };
    }
  }
  try {
    const out = await run(
      'kubectl',
      [
        ...args,
        '--request-timeout=10s',
        '-n',
        'kube-system',
        'get',
        'configmap',
        'cilium-config',
        '-o',
        'json',
      ],
      { timeoutMs: 15_000 },
    );
    return ciliumConfigFact({ stdout: out });
  } catch (err) {
    return ciliumConfigFact({ error: short(err) });
  }
}

/** Reads what `ambit check --pre` decides the CNI rows from. */
export async function readCniFacts(o: {
  readonly cgroupRoot: string | undefined;
  readonly cniConfDir: string;
  readonly cluster: ClusterAccess | undefined;
}): Promise<CniFacts> {
  const [programs, tc, cilium] = await Promise.all([
    rootPrograms(o.cgroupRoot),
    tcPrograms(),
    ciliumConfig(o.cluster),
  ]);
  return {
    cgroupRoot: o.cgroupRoot,
    rootPrograms: programs,
    tcPrograms: tc,
    tcGlobals: listDir(TC_GLOBALS),
    cniConfDir: o.cniConfDir,
    cniConfigs: cniConfigs(o.cniConfDir),
    ciliumConfig: cilium,
  };
}
