import { parseArgs } from 'node:util';
import { parseFlags } from '../config/flags.js';
import { AmbitError, ErrorCode } from '../errors.js';
import { LOG_LEVELS, type LogLevel } from '../telemetry/logger.js';

export interface ControlPlaneConfig {
  readonly listenHost: string;
  readonly grpcPort: number;
  readonly monitoringPort: number;
  /** Localhost-only admin (CA rotation). */
  readonly adminPort: number;
  readonly trustDomain: string;
  /** The CA's folder: root-cert.pem, root-key.pem (0600), trust-bundle.pem. */
  readonly caDir: string;
  readonly nodeTokens: string;
  readonly localState: string;
  /** Default and maximum workload certificate lifetime. */
  readonly certTtlSeconds: number;
  readonly maxCertTtlSeconds: number;
  readonly logLevel: LogLevel;
}

function seconds(v: string | undefined, flag: string, dflt: number, errors: string[]): number {
  if (v === undefined) return dflt;
  const m = /^(\d+)(s|m|h)?$/.exec(v);
  if (m === null) {
    errors.push(`--${flag} ${v}: not a duration (e.g. 30s, 10m, 24h)`);
    return dflt;
  }
  return Number(m[1]) * (m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1);
}

export function parseControlPlaneConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): ControlPlaneConfig {
  const { values } = parseFlags(
    () =>
      parseArgs({
        args: [...argv],
        options: {
          listen: { type: 'string' },
          'grpc-port': { type: 'string' },
          'monitoring-port': { type: 'string' },
          'admin-port': { type: 'string' },
          'trust-domain': { type: 'string' },
          'ca-dir': { type: 'string' },
          'node-tokens': { type: 'string' },
          'local-state': { type: 'string' },
          'cert-ttl': { type: 'string' },
          'max-cert-ttl': { type: 'string' },
          'log-level': { type: 'string' },
        },
        strict: true,
      }),
    'control plane',
  );
  const errors: string[] = [];
  const need = (v: string | undefined, flag: string, envName: string): string => {
    const out = v ?? env[envName];
    if (out === undefined || out === '') errors.push(`--${flag} (or ${envName}) is required`);
    return out ?? '';
  };
  const port = (v: string | undefined, flag: string, dflt: number): number => {
    const n = v === undefined ? dflt : /^[0-9]+$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isInteger(n) || n < 0 || n > 65535) errors.push(`--${flag} ${v}: not a port number`);
    return n;
  };
  const logLevel = (values['log-level'] ?? env.AMBIT_LOG_LEVEL ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel))
    errors.push(`--log-level ${logLevel}: use one of ${LOG_LEVELS.join(', ')}`);
  const cfg: ControlPlaneConfig = {
    listenHost: values.listen ?? '::',
    grpcPort: port(values['grpc-port'], 'grpc-port', 15012),
    monitoringPort: port(values['monitoring-port'], 'monitoring-port', 15014),
    adminPort: port(values['admin-port'], 'admin-port', 15010),
    trustDomain: values['trust-domain'] ?? env.AMBIT_TRUST_DOMAIN ?? 'cluster.local',
    caDir: need(values['ca-dir'], 'ca-dir', 'AMBIT_CA_DIR'),
    nodeTokens: need(values['node-tokens'], 'node-tokens', 'AMBIT_NODE_TOKENS'),
    localState: need(values['local-state'], 'local-state', 'AMBIT_LOCAL_STATE'),
    certTtlSeconds: seconds(values['cert-ttl'] ?? env.AMBIT_CERT_TTL, 'cert-ttl', 86_400, errors),
    maxCertTtlSeconds: seconds(values['max-cert-ttl'], 'max-cert-ttl', 7 * 86_400, errors),
    logLevel,
  };
  if (cfg.certTtlSeconds > cfg.maxCertTtlSeconds) errors.push('--cert-ttl is longer than --max-cert-ttl');
  if (errors.length > 0)
    throw new AmbitError(ErrorCode.USAGE, `control plane configuration:\n  ${errors.join('\n  ')}`);
  return Object.freeze(cfg);
}
