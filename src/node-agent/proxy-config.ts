import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { parseFlags } from '../config/flags.js';
import { AmbitError, ErrorCode } from '../errors.js';
import { LOG_LEVELS, type LogLevel } from '../telemetry/logger.js';

/** Node proxy settings, from flags with environment fallbacks. Frozen after parse. */
export interface ProxyConfig {
  readonly node: string;
  readonly trustDomain: string;
  /** Addresses the outbound listener binds (where eBPF sends pods' connections). */
  readonly outboundIps: readonly string[];
  readonly outboundPort: number;
  readonly metricsPort: number;
  readonly readinessPort: number;
  readonly adminPort: number;
  readonly bpfDir: string;
  readonly localState: string;
  readonly logLevel: LogLevel;
  /** Write a V8 CPU profile here on exit (AMBIT_CPU_PROFILE), for performance work. */
  readonly cpuProfile?: string;
}

export function parseProxyConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ProxyConfig {
  const { values } = parseFlags(
    () =>
      parseArgs({
        args: [...argv],
        options: {
          node: { type: 'string' },
          'trust-domain': { type: 'string' },
          'outbound-ip': { type: 'string', multiple: true },
          'outbound-port': { type: 'string' },
          'metrics-port': { type: 'string' },
          'readiness-port': { type: 'string' },
          'admin-port': { type: 'string' },
          'bpf-dir': { type: 'string' },
          'local-state': { type: 'string' },
          'log-level': { type: 'string' },
        },
        strict: true,
      }),
    'node proxy',
  );
  const errors: string[] = [];
  const str = (v: string | undefined, flag: string, envName: string): string => {
    const out = v ?? env[envName];
    if (out === undefined || out === '') errors.push(`--${flag} (or ${envName}) is required`);
    return out ?? '';
  };
  const port = (v: string | undefined, flag: string, dflt: number): number => {
    const n = v === undefined ? dflt : /^[0-9]+$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isInteger(n) || n < 0 || n > 65535)
      errors.push(`--${flag} ${v === '' ? '""' : v}: not a port number`);
    return n;
  };
  const outboundIps =
    values['outbound-ip'] ?? (env.AMBIT_OUTBOUND_IPS ?? '').split(',').filter((s) => s !== '');
  if (outboundIps.length === 0) errors.push('--outbound-ip (or AMBIT_OUTBOUND_IPS) is required');
  for (const ip of outboundIps) if (isIP(ip) === 0) errors.push(`--outbound-ip ${ip}: not an IP address`);
  const logLevel = (values['log-level'] ?? env.AMBIT_LOG_LEVEL ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel))
    errors.push(`--log-level ${logLevel}: use one of ${LOG_LEVELS.join(', ')}`);
  const cfg: ProxyConfig = {
    node: str(values.node, 'node', 'AMBIT_NODE_NAME'),
    trustDomain: values['trust-domain'] ?? env.AMBIT_TRUST_DOMAIN ?? 'cluster.local',
    outboundIps,
    outboundPort: port(values['outbound-port'], 'outbound-port', 15001),
    metricsPort: port(values['metrics-port'], 'metrics-port', 15020),
    readinessPort: port(values['readiness-port'], 'readiness-port', 15021),
    adminPort: port(values['admin-port'], 'admin-port', 15000),
    bpfDir: str(values['bpf-dir'], 'bpf-dir', 'AMBIT_BPF_DIR'),
    localState: str(values['local-state'], 'local-state', 'AMBIT_LOCAL_STATE'),
    logLevel,
    ...(env.AMBIT_CPU_PROFILE === undefined
      ? {}
      : { cpuProfile: `${env.AMBIT_CPU_PROFILE}.${process.pid}.cpuprofile` }),
  };
  if (errors.length > 0)
    throw new AmbitError(ErrorCode.USAGE, `node proxy configuration:\n  ${errors.join('\n  ')}`);
  return Object.freeze(cfg);
}
