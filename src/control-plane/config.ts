import { DaemonFlags } from '../config/flags.js';
import { type KubeSettings, kubeSettings } from '../config/kube-settings.js';
import type { LogLevel } from '../config/log-level.js';
import { AMBIT_IMAGE } from '../version.js';

/** Where waypoint pods reach the control plane in a cluster: its Service in ambit-system. */
export const DEFAULT_WAYPOINT_CONTROL_PLANE = 'ambit-control-plane.ambit-system.svc:15012';

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
  /** How waypoint Gateways are rendered into the objects the control plane applies. */
  readonly waypoints: {
    readonly image: string;
    /** `host:port` waypoint pods reach the control plane at. */
    readonly controlPlane: string;
    /** Local mode: the waypoint's command and environment (pods without images or projected volumes). */
    readonly container?: {
      readonly command: readonly string[];
      readonly env: Readonly<Record<string, string>>;
    };
  };
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
      'waypoint-control-plane': 'string',
      'waypoint-command': 'list',
      'waypoint-env': 'list',
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
  const command = f.list('waypoint-command');
  const waypointEnv: Record<string, string> = {};
  for (const e of f.list('waypoint-env')) {
    const at = e.indexOf('=');
    if (at <= 0) f.error(`--waypoint-env ${e}: use NAME=value`);
    else waypointEnv[e.slice(0, at)] = e.slice(at + 1);
  }
  if (command.length === 0 && Object.keys(waypointEnv).length > 0)
    f.error('--waypoint-env needs --waypoint-command (it replaces what the image would set)');
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
    waypoints: {
      image: f.string('waypoint-image', AMBIT_IMAGE, { env: 'AMBIT_WAYPOINT_IMAGE' }),
      controlPlane: f.string('waypoint-control-plane', DEFAULT_WAYPOINT_CONTROL_PLANE),
      ...(command.length === 0 ? {} : { container: { command, env: waypointEnv } }),
    },
  });
}
