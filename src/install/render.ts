import { CONTROL_PLANE_CALLS, NODE_AGENT_CALLS } from '../cluster/daemon-calls.js';
import { CONTROLLER_NAME } from '../gateway-api/status.js';
import { GATEWAY_GROUP, WAYPOINT_CLASS } from '../gateway-api/types.js';
import {
  CA_ROOT_CONFIGMAP,
  CA_ROOT_KEY,
  type JsonObject,
  type KubeObject,
  TOKEN_AUDIENCE,
} from '../gateway-api/waypoint-render.js';
import { IN_CLUSTER_DIR } from '../kube/kubeconfig.js';
import { DATAPLANE_MODE, OPT_OUT } from '../mesh/labels.js';
import { DEFAULT_AGENT_READY_FILE } from '../node/agent-ready.js';
import { AMBIT_VERSION } from '../version.js';
import { renderCrds } from './crds.js';
import { rulesFor } from './rbac.js';
import type { InstallValues } from './values.js';

/*
 * Everything `ambit install` puts in a cluster, as plain objects in the order they are applied:
 * the namespace, the CRDs, identities and RBAC, the control plane, the node DaemonSet, the
 * GatewayClass. Pure and deterministic (same values, same bytes): no clock, no randomness, keys in a
 * fixed order. The daemons' flags are written as their config.ts parses them (a test parses them).
 */

export const CONTROL_PLANE = 'ambit-control-plane';
export const NODE = 'ambit-node';
export const NODE_CLEANUP = 'ambit-node-cleanup';
const AUTH_DELEGATOR = 'system:auth-delegator';

export const GRPC_PORT = 15012;
export const MONITORING_PORT = 15014;
const HBONE_PORT = 15008;
const METRICS_PORT = 15020;
export const READINESS_PORT = 15021;

/** Where the host folders are mounted in the node pod: at their own paths, so every default holds. */
const BPF_FS = '/sys/fs/bpf';
export const BPF_DIR = `${BPF_FS}/ambit`;
const RUN_DIR = '/var/run/ambit';
const TOKEN_DIR = '/var/run/secrets/tokens';
const TOKEN_FILE = 'ambit-token';
const CA_BUNDLE_DIR = '/var/run/secrets/ambit';
const CA_DIR = '/var/lib/ambit/ca';
/** Istio's proxy uid: numeric, so that the kubelet can check runAsNonRoot without reading the image. */
const NON_ROOT_UID = 1337;

const common = (): Record<string, string> => ({
  'app.kubernetes.io/managed-by': 'ambit',
  'app.kubernetes.io/part-of': 'ambit',
  'ambit.dev/version': AMBIT_VERSION,
});
const named = (name: string): Record<string, string> => ({ 'app.kubernetes.io/name': name, ...common() });
/** Pod labels: Ambit's own pods are never enrolled (DATAPLANE_MODE=none, the loop-safety rule). */
const podLabels = (name: string): Record<string, string> => ({ ...named(name), [DATAPLANE_MODE]: OPT_OUT });
const selector = (name: string): JsonObject => ({ matchLabels: { 'app.kubernetes.io/name': name } });

function meta(name: string, v: InstallValues, namespaced = true): KubeObject['metadata'] {
  return { name, ...(namespaced ? { namespace: v.namespace } : {}), labels: named(name) };
}

const fieldEnv = (name: string, fieldPath: string): JsonObject => ({
  name,
  valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } },
});

/** The downward API facts the node pod reads (its node, its own pod for the cgroup root, the node's IPs). */
const NODE_ENV: JsonObject[] = [
  fieldEnv('NODE_NAME', 'spec.nodeName'),
  fieldEnv('POD_NAME', 'metadata.name'),
  fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
  fieldEnv('POD_UID', 'metadata.uid'),
  // Every address of the node, comma-separated, IPv4 and IPv6 on a dual-stack node (Kubernetes 1.29+).
  fieldEnv('HOST_IPS', 'status.hostIPs'),
];

/** Every taint tolerated: the mesh must run on every node that runs pods (as istio-cni, ztunnel). */
const TOLERATE_ALL: JsonObject[] = [{ operator: 'Exists' }];

function hostPath(name: string, path: string, type: string): JsonObject {
  return { name, hostPath: { path, type } };
}

/** The control plane's address as the node proxies dial it. */
export const controlPlaneAddress = (v: InstallValues): string =>
  `${CONTROL_PLANE}.${v.namespace}.svc:${GRPC_PORT}`;

function namespace(v: InstallValues): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: v.namespace,
      labels: {
        ...common(),
        [DATAPLANE_MODE]: OPT_OUT,
        // hostNetwork, hostPath and added capabilities: the node DaemonSet needs the privileged level.
        'pod-security.kubernetes.io/enforce': 'privileged',
      },
    },
  };
}

function serviceAccount(name: string, v: InstallValues): KubeObject {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(name, v) };
}

function clusterRole(name: string, rules: readonly JsonObject[]): KubeObject {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name, labels: named(name) },
    rules,
  };
}

function clusterRoleBinding(name: string, role: string, sa: string, v: InstallValues): KubeObject {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name, labels: named(sa) },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: [{ kind: 'ServiceAccount', name: sa, namespace: v.namespace }],
  };
}

function rbac(v: InstallValues): KubeObject[] {
  const rules = (t: typeof CONTROL_PLANE_CALLS, also: string[] = []): JsonObject[] =>
    rulesFor(t, also).map((r) => ({
      apiGroups: [...r.apiGroups],
      resources: [...r.resources],
      verbs: [...r.verbs],
      ...(r.resourceNames === undefined ? {} : { resourceNames: [...r.resourceNames] }),
    }));
  return [
    clusterRole(CONTROL_PLANE, rules(CONTROL_PLANE_CALLS, [AUTH_DELEGATOR])),
    clusterRole(NODE, rules(NODE_AGENT_CALLS)),
    clusterRoleBinding(CONTROL_PLANE, CONTROL_PLANE, CONTROL_PLANE, v),
    // TokenReview: how the control plane checks the node and waypoint tokens it is shown.
    clusterRoleBinding(`${CONTROL_PLANE}-auth-delegator`, AUTH_DELEGATOR, CONTROL_PLANE, v),
    clusterRoleBinding(NODE, NODE, NODE, v),
  ];
}

const restricted: JsonObject = {
  runAsNonRoot: true,
  runAsUser: NON_ROOT_UID,
  runAsGroup: NON_ROOT_UID,
  privileged: false,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
};

function controlPlane(v: InstallValues): KubeObject[] {
  const labels = podLabels(CONTROL_PLANE);
  const deployment: KubeObject = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(CONTROL_PLANE, v),
    spec: {
      replicas: v.controlPlane.replicas,
      selector: selector(CONTROL_PLANE),
      template: {
        metadata: {
          labels,
          annotations: {
            'prometheus.io/path': '/metrics',
            'prometheus.io/port': String(MONITORING_PORT),
            'prometheus.io/scrape': 'true',
          },
        },
        spec: {
          serviceAccountName: CONTROL_PLANE,
          securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'control-plane',
              image: v.images.controlPlane,
              imagePullPolicy: v.imagePullPolicy,
              // The image's entrypoint runs the daemon named by the first argument (src/control-plane/main.ts).
              args: [
                'control-plane',
                `--ca-dir=${CA_DIR}`,
                `--node-service-account=${v.namespace}/${NODE}`,
                `--trust-domain=${v.trustDomain}`,
                `--waypoint-image=${v.images.waypoint}`,
                `--waypoint-control-plane=${controlPlaneAddress(v)}`,
                `--log-level=${v.logLevel}`,
              ],
              ports: [
                { name: 'grpc-tls', containerPort: GRPC_PORT, protocol: 'TCP' },
                { name: 'http-monitoring', containerPort: MONITORING_PORT, protocol: 'TCP' },
              ],
              // Ready once the cluster has been read (the config it pushes is complete).
              readinessProbe: {
                httpGet: { path: '/ready', port: MONITORING_PORT, scheme: 'HTTP' },
                periodSeconds: 5,
                timeoutSeconds: 1,
                failureThreshold: 3,
              },
              livenessProbe: {
                tcpSocket: { port: GRPC_PORT },
                initialDelaySeconds: 10,
                periodSeconds: 10,
                failureThreshold: 6,
              },
              resources: { requests: { cpu: '100m', memory: '256Mi' } },
              securityContext: restricted,
              volumeMounts: [{ name: 'ca', mountPath: CA_DIR }],
            },
          ],
          // The CA root lives with the pod (generated at first start; replicas is 1 until the CA is
          // shared through the API). Supplying root-cert.pem and root-key.pem there keeps a fixed root.
          volumes: [{ name: 'ca', emptyDir: {} }],
        },
      },
    },
  };
  const service: KubeObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(CONTROL_PLANE, v),
    spec: {
      type: 'ClusterIP',
      selector: { 'app.kubernetes.io/name': CONTROL_PLANE },
      ports: [
        { name: 'grpc-tls', port: GRPC_PORT, targetPort: GRPC_PORT, protocol: 'TCP', appProtocol: 'grpc' },
        {
          name: 'http-monitoring',
          port: MONITORING_PORT,
          targetPort: MONITORING_PORT,
          protocol: 'TCP',
          appProtocol: 'http',
        },
      ],
    },
  };
  // maxUnavailable rather than minAvailable: with one replica a node drain may still evict it (the
  // node proxies keep their last config while the control plane is away), but never two at once.
  const pdb: KubeObject = {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(CONTROL_PLANE, v),
    spec: { maxUnavailable: 1, selector: selector(CONTROL_PLANE) },
  };
  return [service, deployment, pdb];
}

/**
 * The node agent's container security: capabilities rather than privileged. BPF (load, pin),
 * NET_ADMIN (cgroup socket programs, nftables), SYS_ADMIN (bpf_prog_query on cgroups, setns into pod
 * network namespaces), NET_RAW (raw sockets of the nftables netlink and the inbound capture). It runs
 * as root: it writes the host's CNI folders, and a non-root process gets no effective capabilities
 * from the container runtime.
 */
const agentSecurity: JsonObject = {
  privileged: false,
  runAsUser: 0,
  runAsNonRoot: false,
  allowPrivilegeEscalation: true,
  readOnlyRootFilesystem: true,
  capabilities: { add: ['BPF', 'NET_ADMIN', 'SYS_ADMIN', 'NET_RAW'], drop: ['ALL'] },
};

/**
 * The node proxy's: BPF to read the pinned original-destination map, NET_ADMIN and NET_RAW for the
 * transparent (IP_TRANSPARENT) inbound listener. Root for the same reason as the agent.
 */
const proxySecurity: JsonObject = {
  privileged: false,
  runAsUser: 0,
  runAsNonRoot: false,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { add: ['BPF', 'NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
};

/** The agent's flags, as src/node-agent/config.ts parses them (`$(VAR)` expanded by the kubelet). */
function agentArgs(v: InstallValues, uninstall: boolean): string[] {
  // The host's CNI folders and the socket dir, where the agent installs (and uninstall removes) its plugin.
  const cni = [
    `--cni-socket=${RUN_DIR}/cni.sock`,
    `--cni-bin-dir=${v.cni.binDir}`,
    `--cni-conf-dir=${v.cni.confDir}`,
  ];
  if (uninstall)
    return ['node-agent', '--uninstall', `--bpf-dir=${BPF_DIR}`, ...cni, `--log-level=${v.logLevel}`];
  return [
    'node-agent',
    '--node=$(NODE_NAME)',
    // The host's cgroup v2 mount (the hostPath below). No --pods-cgroup: the agent finds its own pod
    // cgroup by POD_UID (/proc/self/cgroup, or by name in the host tree from its private cgroup
    // namespace) and attaches at the kubelet's pod root above it, whatever the driver and nesting.
    `--cgroup-root=${v.cgroupRoot}`,
    `--bpf-dir=${BPF_DIR}`,
    // Pods' connections are sent to the node proxy at the node's addresses (the pod's netns reaches
    // them): its IPv4 one, and its IPv6 one on a dual-stack node. An IPv4-only node has none, and its
    // pods' IPv6 connections are left alone (src/node-agent/config.ts says why not IPv4-mapped).
    '--host-ips=$(HOST_IPS)',
    ...cni,
    `--log-level=${v.logLevel}`,
  ];
}

function nodeVolumes(v: InstallValues): JsonObject[] {
  return [
    // bpffs: the pins outlive the agent, so that a restart or an upgrade does not touch traffic.
    hostPath('bpffs', BPF_FS, 'Directory'),
    hostPath('cgroup', v.cgroupRoot, 'Directory'),
    hostPath('cni-bin', v.cni.binDir, 'DirectoryOrCreate'),
    hostPath('cni-conf', v.cni.confDir, 'DirectoryOrCreate'),
    hostPath('run', RUN_DIR, 'DirectoryOrCreate'),
  ];
}

function agentMounts(v: InstallValues): JsonObject[] {
  return [
    // HostToContainer: the host's bpffs mount (and one made later) is seen as it is on the host.
    { name: 'bpffs', mountPath: BPF_FS, mountPropagation: 'HostToContainer' },
    { name: 'cgroup', mountPath: v.cgroupRoot, readOnly: true },
    { name: 'cni-bin', mountPath: v.cni.binDir },
    { name: 'cni-conf', mountPath: v.cni.confDir },
    { name: 'run', mountPath: RUN_DIR },
  ];
}

/**
 * The node agent's Kubernetes API credentials, as the kubelet's own `kube-api-access` volume has them
 * (a bound token for the API server's default audience, the cluster CA, the namespace), mounted in the
 * node-agent container only, at the service-account path its in-cluster config reads
 * (src/kube/kubeconfig.ts): the pod does not automount its token, so the node proxy beside it, which
 * never calls the API, does not hold the node role's list and watch of every pod.
 */
const KUBE_API_ACCESS = 'kube-api-access';
const kubeApiAccess: JsonObject = {
  name: KUBE_API_ACCESS,
  projected: {
    // The kubelet's default for a service-account token volume (rotated at 80% of its life).
    defaultMode: 0o644,
    sources: [
      { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
      { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      {
        downwardAPI: {
          items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }],
        },
      },
    ],
  },
};

function nodeDaemonSet(v: InstallValues): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: meta(NODE, v),
    spec: {
      selector: selector(NODE),
      // One node at a time: its pods keep their pinned redirection while the agent restarts.
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: {
          labels: podLabels(NODE),
          annotations: {
            'prometheus.io/path': '/metrics',
            'prometheus.io/port': String(METRICS_PORT),
            'prometheus.io/scrape': 'true',
          },
        },
        spec: {
          serviceAccountName: NODE,
          // Only the node agent calls the API: its token is mounted in its container alone (kube-api-access).
          automountServiceAccountToken: false,
          // The node proxy listens on the node's addresses (15001, 15006, 15008), where pods' traffic is sent.
          hostNetwork: true,
          dnsPolicy: 'ClusterFirstWithHostNet',
          priorityClassName: 'system-node-critical',
          tolerations: TOLERATE_ALL,
          // The node proxy drains open connections before it exits.
          terminationGracePeriodSeconds: 30,
          containers: [
            {
              name: 'node-agent',
              image: v.images.node,
              imagePullPolicy: v.imagePullPolicy,
              args: agentArgs(v, false),
              env: NODE_ENV,
              resources: { requests: { cpu: '50m', memory: '128Mi' } },
              securityContext: agentSecurity,
              volumeMounts: [
                ...agentMounts(v),
                { name: KUBE_API_ACCESS, mountPath: IN_CLUSTER_DIR, readOnly: true },
              ],
            },
            {
              name: 'node-proxy',
              image: v.images.node,
              imagePullPolicy: v.imagePullPolicy,
              // As src/node-proxy/config.ts parses them.
              args: [
                'node-proxy',
                '--node=$(NODE_NAME)',
                // Every node address, so the IPv6 redirect target is listened on (dual-stack nodes).
                '--outbound-ip=$(HOST_IPS)',
                `--bpf-dir=${BPF_DIR}`,
                `--control-plane=${controlPlaneAddress(v)}`,
                `--ca-bundle=${CA_BUNDLE_DIR}/${CA_ROOT_KEY}`,
                `--token-file=${TOKEN_DIR}/${TOKEN_FILE}`,
                `--trust-domain=${v.trustDomain}`,
                // Ready (15021) only once the agent beside it has claimed readiness: links attached and
                // the first cluster view reconciled (src/node/agent-ready.ts).
                `--agent-ready-file=${DEFAULT_AGENT_READY_FILE}`,
                `--log-level=${v.logLevel}`,
              ],
              env: [...NODE_ENV, { name: 'NODE_OPTIONS', value: '--max-semi-space-size=8' }],
              // The admin port (15000) listens on localhost only and is not declared.
              ports: [
                { name: 'hbone', containerPort: HBONE_PORT, protocol: 'TCP' },
                { name: 'metrics', containerPort: METRICS_PORT, protocol: 'TCP' },
                { name: 'status-port', containerPort: READINESS_PORT, protocol: 'TCP' },
              ],
              readinessProbe: {
                httpGet: { path: '/healthz/ready', port: READINESS_PORT, scheme: 'HTTP' },
                periodSeconds: 5,
                timeoutSeconds: 1,
                failureThreshold: 3,
              },
              resources: { requests: { cpu: '100m', memory: '128Mi' } },
              securityContext: proxySecurity,
              volumeMounts: [
                { name: 'bpffs', mountPath: BPF_FS, mountPropagation: 'HostToContainer', readOnly: true },
                { name: 'ambit-token', mountPath: TOKEN_DIR, readOnly: true },
                { name: CA_ROOT_CONFIGMAP, mountPath: CA_BUNDLE_DIR, readOnly: true },
                { name: 'run', mountPath: RUN_DIR, readOnly: true },
              ],
            },
          ],
          volumes: [
            ...nodeVolumes(v),
            kubeApiAccess,
            {
              name: 'ambit-token',
              projected: {
                sources: [
                  // The node's identity to the control plane (checked with a TokenReview); the kubelet
                  // rotates it at 80% of its life. Its audience is Ambit's, so the API server refuses it:
                  // it is not an API credential.
                  {
                    serviceAccountToken: {
                      audience: TOKEN_AUDIENCE,
                      expirationSeconds: 43200,
                      path: TOKEN_FILE,
                    },
                  },
                ],
              },
            },
            // The mesh's trust bundle, to verify the control plane before the first config brings it.
            { name: CA_ROOT_CONFIGMAP, configMap: { name: CA_ROOT_CONFIGMAP } },
          ],
        },
      },
    },
  };
}

function gatewayClass(): KubeObject {
  return {
    apiVersion: `${GATEWAY_GROUP}/v1`,
    kind: 'GatewayClass',
    metadata: { name: WAYPOINT_CLASS, labels: common() },
    spec: {
      controllerName: CONTROLLER_NAME,
      description: 'Ambit waypoints: the L7 proxies of a namespace or a Service (HBONE on 15008).',
    },
  };
}

/** Everything a cluster needs for Ambit, in apply order. The Gateway API CRDs are a separate step. */
export function renderInstall(v: InstallValues): KubeObject[] {
  return [
    namespace(v),
    ...renderCrds(common()),
    serviceAccount(CONTROL_PLANE, v),
    serviceAccount(NODE, v),
    ...rbac(v),
    ...controlPlane(v),
    nodeDaemonSet(v),
    gatewayClass(),
  ];
}

/**
 * The node cleanup step of `ambit uninstall`: a short-lived DaemonSet whose init container runs the
 * node agent's `--uninstall` on every node (pins, links, nftables, the CNI conflist entry, the plugin
 * binary) and whose pod turns Ready only after it succeeded, so that `kubectl rollout status` returns
 * when every node is clean. It is applied once the node DaemonSet is gone (a stopped agent leaves its
 * pins on purpose: a SIGTERM is a restart or an upgrade, never an uninstall).
 */
export function renderNodeCleanup(v: InstallValues): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: meta(NODE_CLEANUP, v),
    spec: {
      selector: selector(NODE_CLEANUP),
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: { labels: podLabels(NODE_CLEANUP) },
        spec: {
          serviceAccountName: NODE,
          automountServiceAccountToken: false,
          hostNetwork: true,
          dnsPolicy: 'ClusterFirstWithHostNet',
          priorityClassName: 'system-node-critical',
          tolerations: TOLERATE_ALL,
          terminationGracePeriodSeconds: 1,
          initContainers: [
            {
              name: 'uninstall',
              image: v.images.node,
              imagePullPolicy: v.imagePullPolicy,
              args: agentArgs(v, true),
              env: NODE_ENV,
              securityContext: agentSecurity,
              volumeMounts: agentMounts(v),
            },
          ],
          containers: [
            {
              // Nothing left to do: a running container makes the pod Ready, the signal that this node is clean.
              name: 'done',
              image: v.images.node,
              imagePullPolicy: v.imagePullPolicy,
              args: ['idle'],
              resources: { requests: { cpu: '1m', memory: '8Mi' } },
              securityContext: restricted,
            },
          ],
          volumes: nodeVolumes(v),
        },
      },
    },
  };
}
