/**
 * The Kubernetes API resources Ambit reads or serves: group, version, names and scope, as an API
 * server's discovery documents them. The watch client builds its paths from here, and local mode's API
 * server serves exactly these.
 */
export interface ApiResource {
  readonly kind: string;
  /** '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly singular: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  readonly verbs: readonly string[];
  readonly categories?: readonly string[];
}

const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];

export const API_RESOURCES: readonly ApiResource[] = [
  {
    kind: 'Namespace',
    group: '',
    version: 'v1',
    plural: 'namespaces',
    singular: 'namespace',
    namespaced: false,
    shortNames: ['ns'],
    verbs: WRITE,
  },
  {
    kind: 'Node',
    group: '',
    version: 'v1',
    plural: 'nodes',
    singular: 'node',
    namespaced: false,
    shortNames: ['no'],
    verbs: READ,
  },
  {
    kind: 'Pod',
    group: '',
    version: 'v1',
    plural: 'pods',
    singular: 'pod',
    namespaced: true,
    shortNames: ['po'],
    verbs: WRITE,
    categories: ['all'],
  },
  {
    kind: 'Service',
    group: '',
    version: 'v1',
    plural: 'services',
    singular: 'service',
    namespaced: true,
    shortNames: ['svc'],
    verbs: WRITE,
    categories: ['all'],
  },
  {
    kind: 'ServiceAccount',
    group: '',
    version: 'v1',
    plural: 'serviceaccounts',
    singular: 'serviceaccount',
    namespaced: true,
    shortNames: ['sa'],
    verbs: WRITE,
  },
  {
    kind: 'ConfigMap',
    group: '',
    version: 'v1',
    plural: 'configmaps',
    singular: 'configmap',
    namespaced: true,
    shortNames: ['cm'],
    verbs: WRITE,
  },
  {
    kind: 'Event',
    group: '',
    version: 'v1',
    plural: 'events',
    singular: 'event',
    namespaced: true,
    shortNames: ['ev'],
    verbs: READ,
  },
  {
    kind: 'Deployment',
    group: 'apps',
    version: 'v1',
    plural: 'deployments',
    singular: 'deployment',
    namespaced: true,
    shortNames: ['deploy'],
    verbs: WRITE,
    categories: ['all'],
  },
  {
    kind: 'EndpointSlice',
    group: 'discovery.k8s.io',
    version: 'v1',
    plural: 'endpointslices',
    singular: 'endpointslice',
    namespaced: true,
    shortNames: [],
    verbs: READ,
  },
  {
    kind: 'Gateway',
    group: 'gateway.networking.k8s.io',
    version: 'v1',
    plural: 'gateways',
    singular: 'gateway',
    namespaced: true,
    shortNames: ['gtw'],
    verbs: WRITE,
    categories: ['gateway-api'],
  },
  {
    kind: 'HTTPRoute',
    group: 'gateway.networking.k8s.io',
    version: 'v1',
    plural: 'httproutes',
    singular: 'httproute',
    namespaced: true,
    shortNames: [],
    verbs: WRITE,
    categories: ['gateway-api'],
  },
  {
    kind: 'GRPCRoute',
    group: 'gateway.networking.k8s.io',
    version: 'v1',
    plural: 'grpcroutes',
    singular: 'grpcroute',
    namespaced: true,
    shortNames: [],
    verbs: WRITE,
    categories: ['gateway-api'],
  },
  {
    kind: 'AuthorizationPolicy',
    group: 'security.ambit.dev',
    version: 'v1alpha1',
    plural: 'authorizationpolicies',
    singular: 'authorizationpolicy',
    namespaced: true,
    shortNames: ['ap'],
    verbs: WRITE,
  },
  {
    kind: 'PeerAuthentication',
    group: 'security.ambit.dev',
    version: 'v1alpha1',
    plural: 'peerauthentications',
    singular: 'peerauthentication',
    namespaced: true,
    shortNames: ['pa'],
    verbs: WRITE,
  },
  {
    kind: 'RequestAuthentication',
    group: 'security.ambit.dev',
    version: 'v1alpha1',
    plural: 'requestauthentications',
    singular: 'requestauthentication',
    namespaced: true,
    shortNames: ['ra'],
    verbs: WRITE,
  },
  {
    kind: 'BackendTrafficPolicy',
    group: 'traffic.ambit.dev',
    version: 'v1alpha1',
    plural: 'backendtrafficpolicies',
    singular: 'backendtrafficpolicy',
    namespaced: true,
    shortNames: ['btp'],
    verbs: WRITE,
  },
];

/** `v1` or `group/version`: an object's apiVersion. */
export function apiVersionOf(r: Pick<ApiResource, 'group' | 'version'>): string {
  return r.group === '' ? r.version : `${r.group}/${r.version}`;
}

export function resourceOfKind(kind: string): ApiResource | undefined {
  return API_RESOURCES.find((r) => r.kind === kind);
}

/** The collection's path: `/api/v1/namespaces/ns/pods`, or across namespaces when `namespace` is undefined. */
export function collectionPath(r: ApiResource, namespace?: string): string {
  const base = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  return r.namespaced && namespace !== undefined
    ? `${base}/namespaces/${encodeURIComponent(namespace)}/${r.plural}`
    : `${base}/${r.plural}`;
}
