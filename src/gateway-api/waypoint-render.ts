import { isIP } from 'node:net';
import type { Labels } from '../config/kube-types.js';
import { labelValue } from '../config/validators.js';
import { GATEWAY_GROUP, type Gateway, type Listener, WAYPOINT_CLASS } from './types.js';
import { GATEWAY_NAME_LABEL, WAYPOINT_HBONE_PORT, waypointFor } from './waypoint.js';

/**
 * What a waypoint Gateway becomes in the cluster: a ServiceAccount, a Deployment and a Service, all
 * named after the Gateway, in its namespace, as istiod's waypoint template makes them. The control
 * plane applies them (server-side, owned by the Gateway); this file only computes them.
 */

/** A JSON value as the Kubernetes API reads it. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | JsonObject;
export type JsonObject = { readonly [key: string]: JsonValue | undefined };

export type ObjectMeta = {
  readonly name: string;
  readonly namespace?: string;
  readonly labels?: Labels;
  readonly annotations?: Labels;
  readonly ownerReferences?: readonly JsonObject[];
};

/** A Kubernetes object as plain JSON, ready for `kubectl apply` or the API. */
export type KubeObject = {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: ObjectMeta;
  readonly [field: string]: JsonValue;
};

export interface WaypointRenderOptions {
  /** The Ambit image; its entrypoint takes the daemon to run as its first argument (`waypoint`). */
  readonly image: string;
  readonly trustDomain: string;
  /** `host:port` of the control plane's gRPC (CA and config), `ambit-control-plane.ambit-system.svc:15012`. */
  readonly controlPlane: string;
  /** Ambit's version, written as the `ambit.dev/version` label. */
  readonly version: string;
}

/**
 * A waypoint Gateway with the metadata that rendering reads beyond the parsed Gateway: its
 * annotations (`ambit.dev/replicas`) and its UID (for `ownerReferences`, so that deleting the
 * Gateway garbage-collects what was rendered for it). Both are optional: without a UID the objects
 * are not owned (`ambit waypoint render` of a Gateway that is not in a cluster yet).
 */
export type RenderableGateway = Gateway & { readonly annotations?: Labels; readonly uid?: string };

export interface WaypointRender {
  /** [ServiceAccount, Deployment, Service]; empty when the Gateway cannot be rendered at all. */
  readonly objects: readonly KubeObject[];
  /**
   * What was wrong and what was done instead (`annotation ambit.dev/replicas=abc ...; 1 replica is
   * used`), for the Gateway's status (`GatewayFacts.problems`). Never thrown: a waypoint with a bad
   * annotation still runs with the default.
   */
  readonly problems: readonly string[];
}

/** Gateway annotation: how many waypoint pods to run (default 1). */
export const REPLICAS_ANNOTATION = 'ambit.dev/replicas';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const NAME_LABEL = 'app.kubernetes.io/name';
export const VERSION_LABEL = 'ambit.dev/version';
/** Istio's label for the class of the Gateway an object was rendered for. */
export const GATEWAY_CLASS_LABEL = 'gateway.networking.k8s.io/gateway-class-name';
/**
 * `ambit.dev/dataplane-mode` (mesh/labels.ts `DATAPLANE_MODE`; restated because gateway-api sits
 * below mesh). `none` on the pod keeps the node proxy from capturing a waypoint's own traffic.
 */
const DATAPLANE_MODE = 'ambit.dev/dataplane-mode';
/** The ConfigMap, in every namespace with a waypoint, that holds the mesh's trust bundle. */
export const CA_ROOT_CONFIGMAP = 'ambit-ca-root-cert';
/** Its `app.kubernetes.io/managed-by`: the control plane, which publishes it (its field manager's name). */
export const CA_ROOT_MANAGED_BY = 'ambit-control-plane';
export const CA_ROOT_KEY = 'root-cert.pem';
/** The audience of the projected token a waypoint presents to the control plane. */
export const TOKEN_AUDIENCE = 'ambit-ca';

export const WAYPOINT_METRICS_PORT = 15020;
export const WAYPOINT_STATUS_PORT = 15021;
/**
 * The Service's `appProtocol` for HBONE: the listener's protocol in lowercase, which is what
 * istiod writes for a waypoint's `mesh` listener (protocol HBONE).
 */
export const HBONE_APP_PROTOCOL = 'hbone';

const TOKEN_DIR = '/var/run/secrets/tokens';
const TOKEN_FILE = 'ambit-token';
const CA_DIR = '/var/run/secrets/ambit';
/** Istio's proxy uid/gid: numeric, so the kubelet can check runAsNonRoot without reading the image. */
const PROXY_UID = 1337;
const MAX_REPLICAS = 100;
/** Service names are DNS-1035 labels: a Gateway name that is not one cannot name the waypoint's Service. */
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** `ns/name`, for messages. */
const show = (gw: Gateway): string => `${gw.namespace}/${gw.name}`;

/** Object keys sorted, so that the same labels always serialise to the same bytes. */
function sorted(m: Record<string, string>): Labels {
  return Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The waypoint's replica count from `ambit.dev/replicas`: an integer from 1 to 100. Anything else
 * keeps 1 and says why; 0 is refused because a waypoint with no pods refuses every connection sent
 * to it (`ambit.dev/use-waypoint: none` is how traffic skips a waypoint).
 */
export function waypointReplicas(annotations: Labels | undefined): { replicas: number; problem?: string } {
  const v = annotations?.[REPLICAS_ANNOTATION];
  if (v === undefined) return { replicas: 1 };
  const n = /^[0-9]{1,4}$/.test(v) ? Number(v) : Number.NaN;
  if (n >= 1 && n <= MAX_REPLICAS) return { replicas: n };
  return {
    replicas: 1,
    problem: `annotation ${REPLICAS_ANNOTATION}=${JSON.stringify(v)} is not a whole number from 1 to ${MAX_REPLICAS}; 1 replica is used`,
  };
}

/** Why a listener of a waypoint Gateway takes no traffic (the Gateway API's listener reasons). */
export interface ListenerProblem {
  readonly reason: 'UnsupportedProtocol' | 'PortUnavailable';
  readonly message: string;
}

/** What a waypoint Gateway asks for, checked: the Gateway's `Accepted` condition follows from it. */
export interface WaypointCheck {
  /** Set when the Gateway is not accepted: nothing is rendered for it. */
  readonly rejected?: {
    readonly reason: 'Invalid' | 'ListenersNotValid' | 'UnsupportedAddress';
    readonly message: string;
  };
  /** Per listener, in spec order: undefined for the listener that serves HBONE. */
  readonly listeners: readonly (ListenerProblem | undefined)[];
  /** The cluster IPs asked for in `spec.addresses` (at most one per IP family, first first). */
  readonly clusterIps: readonly string[];
  /** What is ignored, and why (a value that is not an IP address, a second IPv4 address). */
  readonly problems: readonly string[];
}

const MESH_LISTENER = `{name: mesh, port: ${WAYPOINT_HBONE_PORT}, protocol: HBONE}`;

/** A waypoint serves HBONE on 15008 and nothing else: any other listener takes no traffic. */
export function listenerProblem(l: Listener): ListenerProblem | undefined {
  if (l.protocol !== 'HBONE')
    return {
      reason: 'UnsupportedProtocol',
      message: `protocol ${l.protocol} is not served by a waypoint, which takes only HBONE on port ${WAYPOINT_HBONE_PORT}`,
    };
  if (l.port !== WAYPOINT_HBONE_PORT)
    return {
      reason: 'PortUnavailable',
      message: `port ${l.port}: a waypoint serves HBONE on port ${WAYPOINT_HBONE_PORT} only`,
    };
  return undefined;
}

/**
 * Checks a waypoint Gateway the way its status reports it. Not accepted: a name that cannot name a
 * Service, an address of a type other than IPAddress (the spec's UnsupportedAddress), or no listener
 * serving HBONE on 15008 (the parser already refuses that; a Gateway built another way gets the same
 * answer). Accepted, with what is ignored: other listeners, more than one address per IP family.
 */
export function checkWaypoint(gw: Gateway): WaypointCheck {
  const listeners = gw.listeners.map(listenerProblem);
  const problems: string[] = [];
  const clusterIps: string[] = [];
  const unsupported: string[] = [];
  gw.addresses.forEach((a, i) => {
    const at = `spec.addresses[${i}]`;
    const family = isIP(a.value);
    const taken = clusterIps.find((ip) => isIP(ip) === family);
    if (a.type !== 'IPAddress') unsupported.push(`${at}: type ${a.type}`);
    else if (family === 0)
      problems.push(`${at}: ${JSON.stringify(a.value)} is not an IP address; it is ignored`);
    else if (taken !== undefined)
      problems.push(
        `${at}: ${a.value} is ignored; the waypoint's Service takes one address per IP family, ${taken}`,
      );
    else clusterIps.push(a.value);
  });
  const base = { listeners, clusterIps, problems };
  if (!DNS1035_LABEL.test(gw.name) || gw.name.length > 63)
    return {
      ...base,
      rejected: {
        reason: 'Invalid',
        message: `Gateway name ${JSON.stringify(gw.name)} cannot name the waypoint's Service (at most 63 lowercase letters, digits and "-", starting with a letter); rename the Gateway`,
      },
    };
  if (unsupported.length > 0)
    return {
      ...base,
      rejected: {
        reason: 'UnsupportedAddress',
        message: `${unsupported.join(', ')}: a waypoint takes only addresses of type IPAddress (its Service's cluster IP)`,
      },
    };
  if (!listeners.some((p) => p === undefined))
    return {
      ...base,
      rejected: {
        reason: 'ListenersNotValid',
        message: [
          `a waypoint needs a listener ${MESH_LISTENER}`,
          ...gw.listeners.map((l, i) => `listener ${l.name}: ${listeners[i]?.message}`),
        ].join('; '),
      },
    };
  return base;
}

/**
 * Renders a waypoint Gateway (class `ambit-waypoint`) into [ServiceAccount, Deployment, Service].
 * Pure and deterministic: the same Gateway and options give the same objects, key for key.
 */
export function renderWaypoint(gw: RenderableGateway, o: WaypointRenderOptions): WaypointRender {
  if (gw.gatewayClassName !== WAYPOINT_CLASS)
    return {
      objects: [],
      problems: [`Gateway ${show(gw)} is of class ${gw.gatewayClassName}, not ${WAYPOINT_CLASS}`],
    };
  const check = checkWaypoint(gw);
  if (check.rejected !== undefined) return { objects: [], problems: [check.rejected.message] };
  const problems: string[] = [...check.problems];
  const forProblem = waypointFor(gw.labels).problem;
  if (forProblem !== undefined) problems.push(forProblem);
  const { replicas, problem: replicasProblem } = waypointReplicas(gw.annotations);
  if (replicasProblem !== undefined) problems.push(replicasProblem);
  const versionBad = labelValue(o.version);
  if (versionBad !== undefined)
    problems.push(
      `Ambit version ${JSON.stringify(o.version)} ${versionBad}; the ${VERSION_LABEL} label is left out`,
    );

  const labels = sorted({
    [GATEWAY_NAME_LABEL]: gw.name,
    [GATEWAY_CLASS_LABEL]: gw.gatewayClassName,
    [MANAGED_BY_LABEL]: 'ambit',
    [NAME_LABEL]: gw.name,
    ...(versionBad === undefined ? { [VERSION_LABEL]: o.version } : {}),
  });
  const metadata: ObjectMeta = {
    name: gw.name,
    namespace: gw.namespace,
    labels,
    ...(gw.uid === undefined
      ? {}
      : {
          // The Gateway controls them (`controller`), and a foreground delete of the Gateway waits
          // for them (`blockOwnerDeletion`); the garbage collector deletes them after the Gateway.
          ownerReferences: [
            {
              apiVersion: `${GATEWAY_GROUP}/v1`,
              kind: 'Gateway',
              name: gw.name,
              uid: gw.uid,
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        }),
  };

  const serviceAccount: KubeObject = { apiVersion: 'v1', kind: 'ServiceAccount', metadata };
  const deployment: KubeObject = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata,
    spec: {
      replicas,
      // The selector is immutable: only the gateway-name label, which never changes for a Gateway.
      selector: { matchLabels: { [GATEWAY_NAME_LABEL]: gw.name } },
      template: {
        metadata: {
          labels: sorted({ ...labels, [DATAPLANE_MODE]: 'none' }),
          annotations: {
            'prometheus.io/path': '/metrics',
            'prometheus.io/port': String(WAYPOINT_METRICS_PORT),
            'prometheus.io/scrape': 'true',
          },
        },
        spec: podSpec(gw, o),
      },
    },
  };
  const service: KubeObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata,
    spec: {
      type: 'ClusterIP',
      // A Service's cluster IPs cannot change: a new address takes effect when the Service is re-created.
      ...(check.clusterIps.length === 0
        ? {}
        : { clusterIP: check.clusterIps[0]!, clusterIPs: check.clusterIps }),
      // Dual-stack where the cluster is, as istiod's waypoint Service; single-stack clusters get one IP.
      ipFamilyPolicy: 'PreferDualStack',
      selector: { [GATEWAY_NAME_LABEL]: gw.name },
      ports: [
        {
          name: 'mesh',
          port: WAYPOINT_HBONE_PORT,
          targetPort: WAYPOINT_HBONE_PORT,
          protocol: 'TCP',
          appProtocol: HBONE_APP_PROTOCOL,
        },
        {
          name: 'status-port',
          port: WAYPOINT_STATUS_PORT,
          targetPort: WAYPOINT_STATUS_PORT,
          protocol: 'TCP',
          appProtocol: 'tcp',
        },
      ],
    },
  };
  return { objects: [serviceAccount, deployment, service], problems };
}

/** The Gateway annotation naming an OTLP/HTTP traces endpoint for its waypoint (`http://collector:4318/v1/traces`). */
export const OTLP_ENDPOINT_ANNOTATION = 'ambit.dev/otlp-endpoint';
/** The share of new traces the waypoint samples, 0 to 1 (default 0.01, as Istio's 1%). */
export const TRACE_SAMPLING_ANNOTATION = 'ambit.dev/trace-sampling';

function tracingEnv(annotations: Labels | undefined): JsonObject[] {
  const endpoint = annotations?.[OTLP_ENDPOINT_ANNOTATION];
  const sampling = annotations?.[TRACE_SAMPLING_ANNOTATION];
  return [
    ...(endpoint === undefined ? [] : [{ name: 'AMBIT_OTLP_ENDPOINT', value: endpoint }]),
    ...(sampling === undefined ? [] : [{ name: 'AMBIT_TRACE_SAMPLING', value: sampling }]),
  ];
}

function fieldEnv(name: string, fieldPath: string): JsonObject {
  return { name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } };
}

function podSpec(gw: Gateway, o: WaypointRenderOptions): JsonObject {
  return {
    serviceAccountName: gw.name,
    // The waypoint never calls the Kubernetes API: it learns the cluster from the control plane,
    // and proves itself with the projected token below, which has Ambit's audience only.
    automountServiceAccountToken: false,
    // Long enough for the drain: on SIGTERM the waypoint stops accepting, lets open streams finish
    // until its drain deadline, then exits; the node proxies stop sending new connections to it as
    // soon as the control plane pushes the endpoint's removal.
    terminationGracePeriodSeconds: 30,
    securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
    containers: [
      {
        name: 'waypoint',
        image: o.image,
        // The image's entrypoint runs the Ambit daemon named by its first argument
        // (`waypoint` -> src/l7-waypoint/main.ts); every setting comes from the environment.
        args: ['waypoint'],
        env: [
          fieldEnv('POD_NAME', 'metadata.name'),
          fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
          fieldEnv('NODE_NAME', 'spec.nodeName'),
          fieldEnv('INSTANCE_IP', 'status.podIP'),
          fieldEnv('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
          { name: 'AMBIT_CONTROL_PLANE', value: o.controlPlane },
          { name: 'AMBIT_TRUST_DOMAIN', value: o.trustDomain },
          { name: 'AMBIT_GATEWAY_NAME', value: gw.name },
          { name: 'AMBIT_TOKEN_FILE', value: `${TOKEN_DIR}/${TOKEN_FILE}` },
          { name: 'AMBIT_CA_BUNDLE', value: `${CA_DIR}/${CA_ROOT_KEY}` },
          // V8 sizes its young generation from the node's memory (up to 3 x 64 MiB on a big node):
          // a proxy's garbage is short-lived, and 8 MiB semi-spaces keep its memory small at no
          // measurable cost in CPU (docs/benchmarks.md).
          { name: 'NODE_OPTIONS', value: '--max-semi-space-size=8' },
          ...tracingEnv(gw.annotations),
        ],
        // The admin port (15000) listens on localhost only and is not declared.
        ports: [
          { name: 'hbone', containerPort: WAYPOINT_HBONE_PORT, protocol: 'TCP' },
          { name: 'metrics', containerPort: WAYPOINT_METRICS_PORT, protocol: 'TCP' },
          { name: 'status-port', containerPort: WAYPOINT_STATUS_PORT, protocol: 'TCP' },
        ],
        readinessProbe: {
          httpGet: { path: '/healthz/ready', port: WAYPOINT_STATUS_PORT, scheme: 'HTTP' },
          initialDelaySeconds: 0,
          periodSeconds: 5,
          timeoutSeconds: 1,
          successThreshold: 1,
          failureThreshold: 3,
        },
        // Requests only, Istio's waypoint defaults: enough for an idle Node.js proxy (its heap and
        // pooled HTTP/2 sessions) so the scheduler reserves it. No CPU limit: CFS throttling would add
        // latency to every request through the waypoint. No memory limit either: one hit kills the pod
        // and every connection it carries; a namespace LimitRange can still impose one.
        resources: { requests: { cpu: '100m', memory: '128Mi' } },
        securityContext: {
          runAsNonRoot: true,
          runAsUser: PROXY_UID,
          runAsGroup: PROXY_UID,
          privileged: false,
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        },
        volumeMounts: [
          { name: 'ambit-token', mountPath: TOKEN_DIR, readOnly: true },
          { name: CA_ROOT_CONFIGMAP, mountPath: CA_DIR, readOnly: true },
        ],
      },
    ],
    volumes: [
      {
        name: 'ambit-token',
        projected: {
          sources: [
            // The kubelet rotates the token well before it expires (at 80% of its life).
            { serviceAccountToken: { audience: TOKEN_AUDIENCE, expirationSeconds: 43200, path: TOKEN_FILE } },
          ],
        },
      },
      { name: CA_ROOT_CONFIGMAP, configMap: { name: CA_ROOT_CONFIGMAP } },
    ],
  };
}

/**
 * How a waypoint's container is started where pods have no images (local mode): the command that
 * runs this build's waypoint, and environment values that take the place of the projected volumes
 * (where the token and the trust bundle are). Values may use `$(POD_NAMESPACE)` and `$(POD_NAME)`.
 */
export interface ContainerOverride {
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** The objects with the Deployment's containers run as `o` says (the rest untouched). Pure. */
export function overrideContainers(objects: readonly KubeObject[], o: ContainerOverride): KubeObject[] {
  return objects.map((obj) => {
    if (obj.kind !== 'Deployment') return obj;
    const spec = structuredClone(obj.spec) as {
      template: {
        spec: {
          containers: { env?: { name: string; value?: string }[]; command?: string[]; args?: string[] }[];
        };
      };
    };
    for (const c of spec.template.spec.containers) {
      c.command = [...o.command];
      c.args = [];
      const env = c.env ?? [];
      for (const [name, value] of Object.entries(o.env)) {
        const e = env.find((v) => v.name === name);
        if (e === undefined) env.push({ name, value });
        else e.value = value;
      }
      c.env = env;
    }
    return { ...obj, spec: spec as unknown as JsonValue };
  });
}
