import { DaemonFlags } from '../config/flags.js';
import type { LogLevel } from '../config/log-level.js';

/** Node proxy settings, from flags with environment fallbacks (the DaemonSet sets env). Frozen after parse. */
export interface NodeProxyConfig {
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
  /** HBONE's port: where this proxy listens and where it dials other nodes (15008 everywhere). */
  readonly hbonePort: number;
  /** Transparent listener for plaintext to enrolled pods, captured by the agent's rules. */
  readonly inboundPort: number;
  /** Requested workload certificate lifetime; 0 leaves it to the CA. */
  readonly certTtlSeconds: number;
  readonly logLevel: LogLevel;
  /**
   * The node agent's ready file (src/node/agent-ready.ts): when set, readiness also requires the
   * agent's claim (links attached, first cluster view reconciled) for this node.
   */
  readonly agentReadyFile?: string;
  /** Write a V8 CPU profile here on exit (AMBIT_CPU_PROFILE), for performance work. */
  readonly cpuProfile?: string;
}

export function parseNodeProxyConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): NodeProxyConfig {
  const f = DaemonFlags.parse(
    'node proxy',
    {
      node: 'string',
      'trust-domain': 'string',
      'outbound-ip': 'list',
      'outbound-port': 'string',
      'metrics-port': 'string',
      'readiness-port': 'string',
      'admin-port': 'string',
      'bpf-dir': 'string',
      'control-plane': 'string',
      'ca-bundle': 'string',
      'token-file': 'string',
      'hbone-ip': 'list',
      'hbone-port': 'string',
      'inbound-port': 'string',
      'cert-ttl': 'string',
      'log-level': 'string',
      'agent-ready-file': 'string',
    },
    argv,
    env,
  );
  // One flag may carry several, comma-separated: the downward API's status.hostIPs (`$(HOST_IPS)`).
  const outboundIps = f
    .list('outbound-ip', { env: 'AMBIT_OUTBOUND_IPS', required: true })
    .flatMap((v) => v.split(','))
    .filter((v) => v !== '');
  for (const ip of outboundIps) f.ip(ip, 'outbound-ip');
  const hboneIps = f.list('hbone-ip', { default: ['::'] });
  for (const ip of hboneIps) f.ip(ip, 'hbone-ip');
  const profile = env.AMBIT_CPU_PROFILE;
  const agentReadyFile = f.optional('agent-ready-file', { env: 'AMBIT_AGENT_READY_FILE' });
  return f.finish({
    node: f.required('node', { env: 'AMBIT_NODE_NAME' }),
    trustDomain: f.string('trust-domain', 'cluster.local', { env: 'AMBIT_TRUST_DOMAIN' }),
    outboundIps,
    outboundPort: f.port('outbound-port', 15001),
    metricsPort: f.port('metrics-port', 15020),
    readinessPort: f.port('readiness-port', 15021),
    adminPort: f.port('admin-port', 15000),
    bpfDir: f.required('bpf-dir', { env: 'AMBIT_BPF_DIR' }),
    controlPlane: f.required('control-plane', { env: 'AMBIT_CONTROL_PLANE' }),
    caBundle: f.required('ca-bundle', { env: 'AMBIT_CA_BUNDLE' }),
    tokenFile: f.required('token-file', { env: 'AMBIT_TOKEN_FILE' }),
    hboneIps,
    hbonePort: f.port('hbone-port', 15008),
    inboundPort: f.port('inbound-port', 15006),
    certTtlSeconds: f.seconds('cert-ttl', 0, { env: 'AMBIT_CERT_TTL' }),
    logLevel: f.logLevel(),
    ...(agentReadyFile === undefined || agentReadyFile === '' ? {} : { agentReadyFile }),
    ...(profile === undefined ? {} : { cpuProfile: `${profile}.${process.pid}.cpuprofile` }),
  });
}
