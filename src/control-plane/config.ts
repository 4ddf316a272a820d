import { DaemonFlags } from '../config/flags.js';
import { type KubeSettings, kubeSettings } from '../config/kube-settings.js';
import type { LogLevel } from '../config/log-level.js';
import { AMBIT_IMAGE } from '../version.js';

export interface ControlPlaneConfig {
  readonly listenHost: string;
  readonly grpcPort: number;
  readonly monitoringPort: number;
  /** Localhost-only admin (CA rotation). */
  readonly adminPort: number;
  readonly trustDomain: string;
  /** The CA's folder: root-cert.pem, root-key.pem (0600), trust-bundle.pem. */
  readonly caDir: string;
  /** The node agents' ServiceAccount: its tokens speak for the node in their TokenReview. */
  readonly nodeServiceAccount: { readonly namespace: string; readonly name: string };
  /** Where the cluster is read: the Kubernetes API of this kubeconfig, else the in-cluster one. */
  readonly kube: KubeSettings;
  /** Default and maximum workload certificate lifetime. */
  readonly certTtlSeconds: number;
  readonly maxCertTtlSeconds: number;
  readonly logLevel: LogLevel;
  /** The image of the waypoint Deployments this control plane renders (parsed: always set; AMBIT_IMAGE by default). */
  readonly waypointImage?: string;
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
      'node-service-account': 'string',
      kubeconfig: 'string',
      'cert-ttl': 'string',
      'max-cert-ttl': 'string',
      'log-level': 'string',
      'waypoint-image': 'string',
    },
    argv,
    env,
  );
  const certTtlSeconds = f.seconds('cert-ttl', 86_400, { env: 'AMBIT_CERT_TTL' });
  const maxCertTtlSeconds = f.seconds('max-cert-ttl', 7 * 86_400);
  if (certTtlSeconds > maxCertTtlSeconds) f.error('--cert-ttl is longer than --max-cert-ttl');
  const nsa = f.string('node-service-account', 'ambit-system/ambit-node', {
    env: 'AMBIT_NODE_SERVICE_ACCOUNT',
  });
  const [saNamespace, saName] = nsa.split('/');
  if (saNamespace === undefined || saName === undefined || saName === '' || nsa.split('/').length !== 2)
    f.error(`--node-service-account ${nsa}: use <namespace>/<name>`);
  const nodeServiceAccount = { namespace: saNamespace ?? '', name: saName ?? '' };
  return f.finish({
    listenHost: f.string('listen', '::'),
    grpcPort: f.port('grpc-port', 15012),
    monitoringPort: f.port('monitoring-port', 15014),
    adminPort: f.port('admin-port', 15010),
    trustDomain: f.string('trust-domain', 'cluster.local', { env: 'AMBIT_TRUST_DOMAIN' }),
    caDir: f.required('ca-dir', { env: 'AMBIT_CA_DIR' }),
    nodeServiceAccount: nodeServiceAccount,
    kube: kubeSettings(f.optional('kubeconfig', { env: 'KUBECONFIG' }), env),
    certTtlSeconds,
    maxCertTtlSeconds,
    logLevel: f.logLevel(),
    waypointImage: f.string('waypoint-image', AMBIT_IMAGE, { env: 'AMBIT_WAYPOINT_IMAGE' }),
  });
}
