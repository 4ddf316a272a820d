import { DaemonFlags } from '../config/flags.js';
import type { LogLevel } from '../config/log-level.js';

/** The local daemon's settings: flags only (`ambit local up` has resolved and checked everything). */
export interface LocalDaemonConfig {
  readonly cluster: string;
  readonly manifests: string;
  readonly nodes: number;
  readonly runRoot: string;
  /** The cgroup v2 mount to build under. */
  readonly cgroupRoot: string;
  readonly bpfRoot: string;
  readonly logLevel: LogLevel;
  /** Workload certificate lifetime for the control plane to issue (tests use short ones). */
  readonly certTtl?: string;
}

export function parseLocalDaemonConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): LocalDaemonConfig {
  const f = DaemonFlags.parse(
    'ambit local daemon (it is started by `ambit local up`)',
    {
      cluster: 'string',
      manifests: 'string',
      nodes: 'string',
      'run-root': 'string',
      'cgroup-root': 'string',
      'bpf-root': 'string',
      'log-level': 'string',
      'cert-ttl': 'string',
    },
    argv,
    env,
  );
  const nodes = Number(
    f.required('nodes', { check: (v) => (/^[1-9][0-9]?$/.test(v) ? undefined : 'not a node count') }),
  );
  const certTtl = f.optional('cert-ttl');
  return f.finish({
    cluster: f.required('cluster'),
    manifests: f.required('manifests'),
    nodes,
    runRoot: f.required('run-root'),
    cgroupRoot: f.required('cgroup-root'),
    bpfRoot: f.required('bpf-root'),
    logLevel: f.logLevel(),
    ...(certTtl === undefined ? {} : { certTtl }),
  });
}
