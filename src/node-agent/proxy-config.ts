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
  /** The control plane's gRPC address (`host:port`). */
  readonly controlPlane: string;
  /** PEM trust bundle to verify the control plane with, until the first config brings the current one. */
  readonly caBundle: string;
  /** File holding this node's bearer token. */
  readonly tokenFile: string;
  /** Addresses the HBONE listener binds (default: all). */
  readonly hboneIps: readonly string[];
  readonly hbonePort: number;
  /** Transparent listener for plaintext to enrolled pods, captured by the agent's rules. */
  readonly inboundPort: number;
  /** Requested workload certificate lifetime; 0 leaves it to the CA. */
  readonly certTtlSeconds: number;
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
          'control-plane': { type: 'string' },
          'ca-bundle': { type: 'string' },
          'token-file': { type: 'string' },
          'hbone-ip': { type: 'string', multiple: true },
          'hbone-port': { type: 'string' },
          'inbound-port': { type: 'string' },
          'cert-ttl': { type: 'string' },
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
  const ttl = (v: string | undefined): number => {
    if (v === undefined) return 0;
    const m = /^(\d+)(s|m|h)?$/.exec(v);
    if (m === null) {
      errors.push(`--cert-ttl ${v}: not a duration (e.g. 30s, 10m, 24h)`);
      return 0;
    }
    return Number(m[1]) * (m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1);
  };
  const ips = (flag: string, list: readonly string[]): void => {
    for (const ip of list) if (isIP(ip) === 0) errors.push(`--${flag} ${ip}: not an IP address`);
  };
  const outboundIps =
    values['outbound-ip'] ?? (env.AMBIT_OUTBOUND_IPS ?? '').split(',').filter((s) => s !== '');
  if (outboundIps.length === 0) errors.push('--outbound-ip (or AMBIT_OUTBOUND_IPS) is required');
  ips('outbound-ip', outboundIps);
  const hboneIps = values['hbone-ip'] ?? ['::'];
  ips('hbone-ip', hboneIps);
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
    controlPlane: str(values['control-plane'], 'control-plane', 'AMBIT_CONTROL_PLANE'),
    caBundle: str(values['ca-bundle'], 'ca-bundle', 'AMBIT_CA_BUNDLE'),
    tokenFile: str(values['token-file'], 'token-file', 'AMBIT_TOKEN_FILE'),
    hboneIps,
    hbonePort: port(values['hbone-port'], 'hbone-port', 15008),
    inboundPort: port(values['inbound-port'], 'inbound-port', 15006),
    certTtlSeconds: ttl(values['cert-ttl'] ?? env.AMBIT_CERT_TTL),
    logLevel,
    ...(env.AMBIT_CPU_PROFILE === undefined
      ? {}
      : { cpuProfile: `${env.AMBIT_CPU_PROFILE}.${process.pid}.cpuprofile` }),
  };
  if (errors.length > 0)
    throw new AmbitError(ErrorCode.USAGE, `node proxy configuration:\n  ${errors.join('\n  ')}`);
  return Object.freeze(cfg);
}
