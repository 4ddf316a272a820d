import { CA_ROOT_CONFIGMAP } from '../gateway-api/waypoint-render.js';
import { KubeCallTable, watchCalls } from '../kube/api-calls.js';
import { type ApiResource, resourceOfKind } from '../kube/api-resources.js';
import type { ClusterKind } from './resources.js';
import { CLUSTER_KINDS } from './source-kube.js';

/*
 * Every Kubernetes API call of every daemon, one table per daemon. Each daemon's client is built with
 * its table and refuses a request outside it (KubeCallTable.check), and `ambit install` renders each
 * daemon's ClusterRole from its table: a call added to the code without a line here fails the first
 * test that makes it, instead of a 403 in a user's cluster.
 */

function resource(kind: ClusterKind | 'Deployment' | 'ConfigMap'): ApiResource {
  const r = resourceOfKind(kind);
  if (r === undefined) throw new Error(`no API resource for ${kind}`);
  return r;
}

/** What the node agent watches: its own node's pods (a field selector) and the namespaces. */
export const NODE_AGENT_KINDS: readonly ClusterKind[] = ['Namespace', 'Pod'];

export const NODE_AGENT_CALLS = new KubeCallTable('node agent', [
  ...watchCalls(NODE_AGENT_KINDS.map(resource)),
  // A CNI call for a pod (or namespace) that the watch has not delivered yet: one GET of it.
  ...NODE_AGENT_KINDS.map((k) => ({ verb: 'get', group: resource(k).group, resource: resource(k).plural })),
]);

/** The node proxy learns everything from the control plane: it never calls the Kubernetes API. */
export const NODE_PROXY_CALLS = new KubeCallTable('node proxy', []);

/** The kinds whose status the control plane writes as the Gateway API controller of its class. */
export const STATUS_KINDS = ['Gateway', 'HTTPRoute', 'GRPCRoute'] as const satisfies readonly ClusterKind[];

/** The objects the control plane applies (server-side) and deletes for each waypoint Gateway. */
export const WAYPOINT_OBJECT_KINDS = ['ServiceAccount', 'Deployment', 'Service'] as const;

/** TokenReview: granted by the built-in ClusterRole `system:auth-delegator`, not by Ambit's own role. */
export const TOKEN_REVIEW_CALL = { verb: 'create', group: 'authentication.k8s.io', resource: 'tokenreviews' };

/**
 * `update` of `gateways/finalizers`: asked by the API server's OwnerReferencesPermissionEnforcement
 * admission plugin (on in OpenShift and hardened clusters), not made by the code. A waypoint's objects
 * carry an ownerReference to their Gateway with `blockOwnerDeletion: true`
 * (src/gateway-api/waypoint-render.ts), and that plugin lets a writer set it only if it may update the
 * owner's `finalizers` subresource; without this grant every waypoint apply is refused (403).
 */
export const GATEWAY_FINALIZERS_CALL = {
  verb: 'update',
  group: resource('Gateway').group,
  resource: resource('Gateway').plural,
  subresource: 'finalizers',
};

export const CONTROL_PLANE_CALLS = new KubeCallTable('control plane', [
  ...watchCalls(CLUSTER_KINDS.map(resource)),
  ...STATUS_KINDS.map((k) => ({
    verb: 'patch',
    group: resource(k).group,
    resource: resource(k).plural,
    subresource: 'status',
  })),
  // Waypoints (src/control-plane/waypoint-applier.ts): each waypoint Gateway's objects are watched
  // (label selector), applied server-side (a PATCH that creates the object when it is missing: RBAC
  // asks for both) and deleted when their Gateway is gone. Nothing reads one by name (no `get`).
  ...watchCalls([resource('Deployment')]),
  ...WAYPOINT_OBJECT_KINDS.flatMap((k) =>
    ['create', 'patch', 'delete'].map((verb) => ({
      verb,
      group: resource(k).group,
      resource: resource(k).plural,
    })),
  ),
  GATEWAY_FINALIZERS_CALL,
  // The CA root ConfigMap in every namespace (src/control-plane/ca-root-publisher.ts): watched by name
  // across namespaces and applied server-side, which creates it where it is missing. It never reads
  // one by name nor deletes one. The patch is narrowed to that name (`resourceNames`), so that the
  // control plane cannot rewrite another ConfigMap (kube-system/aws-auth, say). RBAC cannot narrow
  // the rest: a list or watch names no object (a field selector is not an RBAC attribute), and a
  // create's name is in its body, not its path; so they stay cluster-wide.
  ...watchCalls([resource('ConfigMap')]),
  { verb: 'create', group: '', resource: resource('ConfigMap').plural },
  { verb: 'patch', group: '', resource: resource('ConfigMap').plural, resourceNames: [CA_ROOT_CONFIGMAP] },
  TOKEN_REVIEW_CALL,
]);
