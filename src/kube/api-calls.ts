/**
 * The Kubernetes API calls a daemon makes, as RBAC names them: what its ClusterRole must allow
 * (`ambit install` renders the rules from here, and a test checks that every call is covered). Keep
 * each list next to the code that makes the calls in mind: a new call goes here first.
 */
export interface ApiCall {
  readonly verbs: readonly string[];
  /** '' for the core group. */
  readonly group: string;
  /** `deployments`, or `gateways/status` for a subresource. */
  readonly resource: string;
  /** Why the daemon makes it (for the rendered rule's comment and for a reviewer). */
  readonly why: string;
}

const WATCH = ['list', 'watch'];

/** The control plane's calls. */
export const CONTROL_PLANE_API_CALLS: readonly ApiCall[] = [
  // The cluster view (src/cluster/source-kube.ts, CLUSTER_KINDS): a reflector per kind.
  { verbs: WATCH, group: '', resource: 'namespaces', why: 'cluster view' },
  { verbs: WATCH, group: '', resource: 'nodes', why: 'cluster view' },
  { verbs: WATCH, group: '', resource: 'pods', why: 'cluster view' },
  { verbs: WATCH, group: 'discovery.k8s.io', resource: 'endpointslices', why: 'cluster view' },
  { verbs: WATCH, group: 'security.ambit.dev', resource: 'authorizationpolicies', why: 'cluster view' },
  { verbs: WATCH, group: 'security.ambit.dev', resource: 'peerauthentications', why: 'cluster view' },
  { verbs: WATCH, group: 'gateway.networking.k8s.io', resource: 'gateways', why: 'cluster view, waypoints' },
  { verbs: WATCH, group: 'gateway.networking.k8s.io', resource: 'httproutes', why: 'cluster view' },
  { verbs: WATCH, group: 'gateway.networking.k8s.io', resource: 'grpcroutes', why: 'cluster view' },
  // Node and workload identity: TokenReview (src/kube/token-review.ts; system:auth-delegator).
  { verbs: ['create'], group: 'authentication.k8s.io', resource: 'tokenreviews', why: 'node identity' },
  // Gateway API status (src/control-plane/status-writer.ts): merge patches to the status subresource.
  {
    verbs: ['patch'],
    group: 'gateway.networking.k8s.io',
    resource: 'gateways/status',
    why: 'Gateway status',
  },
  {
    verbs: ['patch'],
    group: 'gateway.networking.k8s.io',
    resource: 'httproutes/status',
    why: 'route status',
  },
  {
    verbs: ['patch'],
    group: 'gateway.networking.k8s.io',
    resource: 'grpcroutes/status',
    why: 'route status',
  },
  // Waypoints (src/control-plane/waypoint-applier.ts): each waypoint Gateway's objects, watched
  // (label selector), applied server-side (PATCH apply-patch+yaml; a create when absent needs
  // `create` too), and deleted when their Gateway is gone. `get` for a reviewer's kubectl auth can-i.
  {
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    group: 'apps',
    resource: 'deployments',
    why: 'waypoint objects',
  },
  {
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    group: '',
    resource: 'services',
    why: 'cluster view, waypoint objects',
  },
  {
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    group: '',
    resource: 'serviceaccounts',
    why: 'cluster view, waypoint objects',
  },
];

/** The resources (`deployments.apps`, `services`) a list of calls writes, as local mode's API checks them. */
export function writtenResources(calls: readonly ApiCall[]): string[] {
  return calls
    .filter((c) => c.verbs.includes('patch') && !c.resource.includes('/'))
    .map((c) => (c.group === '' ? c.resource : `${c.resource}.${c.group}`));
}
