import { DaemonFlags } from '../config/flags.js';
import type { LogLevel } from '../config/log-level.js';

/**
 * Waypoint settings, from flags with environment fallbacks: the rendered Deployment sets the
 * environment (its pod's name, namespace, node and address from the downward API, the control plane
 * and the Gateway it serves). Frozen after parse.
 */
export interface WaypointConfig {
  /** The Gateway this waypoint serves (its pods run as the ServiceAccount of the same name). */
  readonly gateway: string;
  readonly namespace: string;
  readonly pod: string;
  readonly node: string;
  /** The pod's address: where HBONE is served. */
  readonly podIp: string;
  readonly serviceAccount: string;
  readonly trustDomain: string;
  readonly controlPlane: string;
  readonly caBundle: string;
  /** The pod's ServiceAccount token (a projected token for audience `ambit`). */
  readonly tokenFile: string;
  readonly hbonePort: number;
  /** The node proxies' HBONE port, where the waypoint dials endpoints (15008 everywhere). */
  readonly nodeHbonePort: number;
  readonly metricsPort: number;
  readonly readinessPort: number;
  readonly adminPort: number;
  /** OTLP/HTTP traces endpoint (`http://collector:4318/v1/traces`); no tracing without one. */
  readonly otlpEndpoint?: string;
  /** Share of new traces sampled (0 to 1); a request with a sampled `traceparent` is always traced. */
  readonly traceSampling: number;
  readonly certTtlSeconds: number;
  readonly logLevel: LogLevel;
}

export function parseWaypointConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): WaypointConfig {
  const f = DaemonFlags.parse(
    'waypoint',
    {
      gateway: 'string',
      namespace: 'string',
      pod: 'string',
      node: 'string',
      'pod-ip': 'string',
      'service-account': 'string',
      'trust-domain': 'string',
      'control-plane': 'string',
      'ca-bundle': 'string',
      'token-file': 'string',
      'hbone-port': 'string',
      'node-hbone-port': 'string',
      'metrics-port': 'string',
      'readiness-port': 'string',
      'admin-port': 'string',
      'otlp-endpoint': 'string',
      'trace-sampling': 'string',
      'cert-ttl': 'string',
      'log-level': 'string',
    },
    argv,
    env,
  );
  const podIp = f.required('pod-ip', { env: 'INSTANCE_IP' });
  if (podIp !== '') f.ip(podIp, 'pod-ip');
  const gateway = f.required('gateway', { env: 'AMBIT_GATEWAY_NAME' });
  const otlp = f.optional('otlp-endpoint', {
    env: 'AMBIT_OTLP_ENDPOINT',
    check: (v) => (/^https?:\/\/[^/]+/.test(v) ? undefined : 'is not an http(s) URL'),
  });
  const samplingText = f.string('trace-sampling', '0.01', { env: 'AMBIT_TRACE_SAMPLING' });
  const traceSampling = Number(samplingText);
  if (!(traceSampling >= 0 && traceSampling <= 1))
    f.error(`--trace-sampling ${samplingText}: not a share between 0 and 1`);
  return f.finish({
    gateway,
    namespace: f.required('namespace', { env: 'POD_NAMESPACE' }),
    pod: f.required('pod', { env: 'POD_NAME' }),
    node: f.required('node', { env: 'NODE_NAME' }),
    podIp,
    serviceAccount: f.string('service-account', gateway, { env: 'SERVICE_ACCOUNT' }),
    trustDomain: f.string('trust-domain', 'cluster.local', { env: 'AMBIT_TRUST_DOMAIN' }),
    controlPlane: f.required('control-plane', { env: 'AMBIT_CONTROL_PLANE' }),
    caBundle: f.required('ca-bundle', { env: 'AMBIT_CA_BUNDLE' }),
    tokenFile: f.required('token-file', { env: 'AMBIT_TOKEN_FILE' }),
    hbonePort: f.port('hbone-port', 15008),
    nodeHbonePort: f.port('node-hbone-port', 15008),
    metricsPort: f.port('metrics-port', 15020),
    readinessPort: f.port('readiness-port', 15021),
    adminPort: f.port('admin-port', 15000),
    ...(otlp === undefined ? {} : { otlpEndpoint: otlp }),
    traceSampling: Number.isFinite(traceSampling) ? traceSampling : 0.01,
    certTtlSeconds: f.seconds('cert-ttl', 0, { env: 'AMBIT_CERT_TTL' }),
    logLevel: f.logLevel(),
  });
}
