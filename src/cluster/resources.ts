import type { SourceRef } from '../config/issue.js';
import type { Labels, Protocol, QosClass, ServicePort } from '../config/kube-types.js';
import type { Gateway, GrpcRoute, HttpRoute } from '../gateway-api/types.js';
import type { AuthorizationPolicy, PeerAuthentication, RequestAuthentication } from '../policy/types.js';
import type { BackendTrafficPolicy } from '../traffic-policy/types.js';

/**
 * The cluster as Ambit's daemons see it: readonly domain types for the Kubernetes objects they read,
 * parsed once from the API's wire shape (src/cluster/kube-objects.ts). Whatever feeds a ClusterSource
 * (the local cluster's API, a Kubernetes informer) produces exactly these.
 */

export interface ClusterNamespace {
  readonly kind: 'Namespace';
  readonly name: string;
  readonly labels: Labels;
}

/** A ServiceAccount: the identity pods run as (`spiffe://<td>/ns/<ns>/sa/<name>`). */
export interface ClusterServiceAccount {
  readonly kind: 'ServiceAccount';
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export interface ClusterNode {
  readonly kind: 'Node';
  readonly name: string;
  /** InternalIP addresses, IPv4 first: where the node's proxy is reached (HBONE). */
  readonly addresses: readonly string[];
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

export interface ClusterPod {
  readonly kind: 'Pod';
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  /** `spec.nodeName`; '' while unscheduled. */
  readonly node: string;
  readonly serviceAccount: string;
  readonly labels: Labels;
  readonly annotations: Labels;
  /** `status.podIPs`, primary family first. */
  readonly ips: readonly string[];
  readonly phase: PodPhase;
  /** The pod's Ready condition. */
  readonly ready: boolean;
  readonly hostNetwork: boolean;
  /** `status.qosClass` (the kubelet's cgroup layout depends on it). */
  readonly qosClass?: QosClass;
  /** Set once the pod is being deleted (`metadata.deletionTimestamp`). */
  readonly terminating: boolean;
}

export interface ClusterService {
  readonly kind: 'Service';
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly annotations: Labels;
  /** `spec.clusterIPs`; empty for a headless Service. */
  readonly vips: readonly string[];
  readonly ports: readonly ServicePort[];
}

export interface SliceEndpoint {
  readonly addresses: readonly string[];
  readonly ready: boolean;
  /** `targetRef` when it is a Pod. */
  readonly podUid?: string;
  readonly pod?: string;
  readonly node?: string;
}

/** A `discovery.k8s.io/v1` EndpointSlice: endpoints of one Service, all with the same port numbers. */
export interface ClusterEndpointSlice {
  readonly kind: 'EndpointSlice';
  readonly namespace: string;
  readonly name: string;
  /** The Service it belongs to (label `kubernetes.io/service-name`). */
  readonly service: string;
  /** Service port name ('' for an unnamed port) -> the port number on these endpoints. */
  readonly ports: readonly { readonly name: string; readonly port: number; readonly protocol: Protocol }[];
  readonly endpoints: readonly SliceEndpoint[];
}

/** The mesh configuration kinds Ambit reads: security policies and Gateway API objects. */
export type MeshConfigKind =
  | 'AuthorizationPolicy'
  | 'PeerAuthentication'
  | 'RequestAuthentication'
  | 'Gateway'
  | 'HTTPRoute'
  | 'GRPCRoute'
  | 'BackendTrafficPolicy';

export type MeshConfigValue =
  | { readonly kind: 'AuthorizationPolicy'; readonly value: AuthorizationPolicy }
  | { readonly kind: 'PeerAuthentication'; readonly value: PeerAuthentication }
  | { readonly kind: 'RequestAuthentication'; readonly value: RequestAuthentication }
  | { readonly kind: 'Gateway'; readonly value: Gateway }
  | { readonly kind: 'HTTPRoute'; readonly value: HttpRoute }
  | { readonly kind: 'GRPCRoute'; readonly value: GrpcRoute }
  | { readonly kind: 'BackendTrafficPolicy'; readonly value: BackendTrafficPolicy };

/** A problem found parsing a config object; errors reject it, warnings keep it. */
export interface ConfigObjectIssue {
  readonly severity: 'error' | 'warning';
  /** `spec.rules[0].from[0].source.ipBlocks[1]`. */
  readonly path: string;
  readonly message: string;
}

/**
 * One mesh configuration object, parsed: its typed value, or none when it failed validation (the
 * issues say why). Rejected objects stay in the view so that their rejection can be reported.
 */
export interface ClusterConfigObject {
  readonly kind: MeshConfigKind;
  readonly namespace: string;
  readonly name: string;
  /** Where the object came from, when it was read from a file (local mode). */
  readonly source?: SourceRef;
  readonly parsed?: MeshConfigValue;
  readonly issues: readonly ConfigObjectIssue[];
  /** A rejected AuthorizationPolicy that may be a DENY: what node proxies enforce instead (fail closed). */
  readonly failClosed?: AuthorizationPolicy;
}

export type ClusterResource =
  | ClusterNamespace
  | ClusterServiceAccount
  | ClusterNode
  | ClusterPod
  | ClusterService
  | ClusterEndpointSlice
  | ClusterConfigObject;

export type ClusterKind = ClusterResource['kind'];

/** `Kind/namespace/name`, or `Kind/name` for cluster-scoped kinds: the identity of a resource. */
export function resourceKey(r: ClusterResource): string {
  switch (r.kind) {
    case 'Namespace':
    case 'Node':
      return `${r.kind}/${r.name}`;
    default:
      return `${r.kind}/${r.namespace}/${r.name}`;
  }
}

/** `ns/name`. */
export function namespacedName(r: { readonly namespace: string; readonly name: string }): string {
  return `${r.namespace}/${r.name}`;
}
