import { AmbitError, ErrorCode } from '../errors.js';
import { CLUSTER_NAME, DEFAULT_CLUSTER } from '../local/layout.js';

/** Settings that come from the environment; the only place the CLI reads process.env. */
export interface CliSettings {
  /** Where local clusters keep their state (AMBIT_RUN_DIR, default /run/ambit). */
  readonly runRoot: string;
  /** A cgroup v2 mount to use instead of auto-detection (AMBIT_CGROUP2_ROOT). */
  readonly cgroup2Root: string | undefined;
  /** bpffs folder for pinned objects (AMBIT_BPF_ROOT, default /sys/fs/bpf/ambit). */
  readonly bpfRoot: string;
  /** Default local cluster name (AMBIT_CLUSTER, default ambit). */
  readonly cluster: string;
  /** The user's terminal type, passed on to `ambit local exec` (TERM). */
  readonly term: string;
  /** The kubectl the cluster commands run (AMBIT_KUBECTL, default `kubectl` on PATH). */
  readonly kubectl: string;
}

export function readSettings(env: NodeJS.ProcessEnv = process.env): CliSettings {
  const cluster = env.AMBIT_CLUSTER ?? DEFAULT_CLUSTER;
  checkClusterName(cluster, 'AMBIT_CLUSTER');
  return {
    runRoot: env.AMBIT_RUN_DIR ?? '/run/ambit',
    cgroup2Root: env.AMBIT_CGROUP2_ROOT === '' ? undefined : env.AMBIT_CGROUP2_ROOT,
    bpfRoot: env.AMBIT_BPF_ROOT ?? '/sys/fs/bpf/ambit',
    cluster,
    term: env.TERM ?? 'dumb',
    kubectl: env.AMBIT_KUBECTL === undefined || env.AMBIT_KUBECTL === '' ? 'kubectl' : env.AMBIT_KUBECTL,
  };
}

export function checkClusterName(name: string, where: string): void {
  if (!CLUSTER_NAME.test(name)) {
    throw new AmbitError(
      ErrorCode.USAGE,
      `${where} ${JSON.stringify(name)}: a cluster name is 1-20 lowercase letters, digits and "-", starting and ending with a letter or digit`,
    );
  }
}
