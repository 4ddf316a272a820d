import { DaemonFlags } from '../config/flags.js';
import { type KubeSettings, kubeSettings } from '../config/kube-settings.js';
import type { LogLevel } from '../config/log-level.js';

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
  /** Key that verifies ServiceAccount tokens (waypoints'); without it only node tokens are accepted. */
  readonly serviceAccountKey: string | undefined;
  /** Where the cluster is read: the Kubernetes API of this kubeconfig, else the in-cluster one. */
  readonly kube: KubeSettings;
  /** Default and maximum workload certificate lifetime. */
  readonly certTtlSeconds: number;
  readonly maxCertTtlSeconds: number;
  readonly logLevel: LogLevel;
}

export function parseControlPlaneConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): ControlPlaneConfig {
  const f = DaemonFlags.parse(
    'control plane',
    {
      listen: 'string',
      'grpc-port': 'string',
      'monitoring-port': 'string',
      'admin-port': 'string',
      'trust-domain': 'string',
      'ca-dir': 'string',
      'node-tokens': 'string',
      'service-account-key': 'string',
      kubeconfig: 'string',
      'cert-ttl': 'string',
      'max-cert-ttl': 'string',
      'log-level': 'string',
    },
    argv,
    env,
  );
  const certTtlSeconds = f.seconds('cert-ttl', 86_400, { env: 'AMBIT_CERT_TTL' });
  const maxCertTtlSeconds = f.seconds('max-cert-ttl', 7 * 86_400);
  if (certTtlSeconds > maxCertTtlSeconds) f.error('--cert-ttl is longer than --max-cert-ttl');
  return f.finish({
    listenHost: f.string('listen', '::'),
    grpcPort: f.port('grpc-port', 15012),
    monitoringPort: f.port('monitoring-port', 15014),
    adminPort: f.port('admin-port', 15010),
    trustDomain: f.string('trust-domain', 'cluster.local', { env: 'AMBIT_TRUST_DOMAIN' }),
    caDir: f.required('ca-dir', { env: 'AMBIT_CA_DIR' }),
    nodeTokens: f.required('node-tokens', { env: 'AMBIT_NODE_TOKENS' }),
    serviceAccountKey: f.optional('service-account-key', { env: 'AMBIT_SERVICE_ACCOUNT_KEY' }),
    kube: kubeSettings(f.optional('kubeconfig', { env: 'KUBECONFIG' }), env),
    certTtlSeconds,
    maxCertTtlSeconds,
    logLevel: f.logLevel(),
  });
}
