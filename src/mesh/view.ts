import type { ClusterEndpointSlice, ClusterNode, ClusterPod, ClusterService } from '../cluster/resources.js';
import { type Labels, type ServicePort, servicePortKey } from '../config/kube-types.js';
import type { Gateway } from '../gateway-api/types.js';
import { isWaypoint, type WaypointRef } from '../gateway-api/waypoint.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import type { AppliedTrafficPolicy } from '../traffic-policy/types.js';
import { isAmbient } from './labels.js';
import {
  bindWaypoint,
  type MeshWaypoint,
  meshWaypointOf,
  requiredWaypointOf,
  type WaypointLookup,
  waypointKey,
} from './waypoints.js';

export type { MeshWaypoint } from './waypoints.js';

/**
 * The mesh as proxies see it: workloads with addresses and identities, and services with their
 * endpoints. The control plane builds it from the cluster with the pure functions below, entry by
 * entry, and pushes it to nodes.
 */
export interface Workload {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly serviceAccount: string;
  readonly node: string;
  readonly ips: readonly string[];
  readonly labels: Labels;
  /** `app` or `app.kubernetes.io/name` label, else the workload name (Istio's canonical service). */
  readonly app: string;
  /** The owning Deployment's name for replicas, else the pod name (Istio's `destination_workload`). */
  readonly workloadName: string;
  /** In the ambient mesh: its traffic is captured and carried in HBONE. */
  readonly captured: boolean;
  readonly identity: string;
  readonly ready: boolean;
  /** Traffic addressed to this pod goes through this waypoint (one that takes workload traffic). */
  readonly waypoint?: WaypointRef;
}

export interface ServiceEndpoint {
  readonly workloadUid: string;
  readonly ready: boolean;
  /** Service port key (name, or number as text) -> target port on this workload. */
  readonly ports: Readonly<Record<string, number>>;
}

export interface MeshService {
  readonly namespace: string;
  readonly name: string;
  /** `name.namespace.svc.cluster.local`. */
  readonly hostname: string;
  readonly vips: readonly string[];
  readonly ports: readonly ServicePort[];
  readonly labels: Labels;
  readonly endpoints: readonly ServiceEndpoint[];
  /** Traffic to this Service goes through this waypoint (one that takes Service traffic). */
  readonly waypoint?: WaypointRef;
  /**
   * The waypoint this Service requires (`ambit.dev/waypoint-required`): its endpoints take mesh traffic
   * only from that waypoint's identity. Set even when the waypoint is missing, so that the endpoints
   * then refuse mesh traffic rather than take it straight from clients (fail closed).
   */
  readonly requiredWaypoint?: WaypointRef;
  /** The BackendTrafficPolicy in force for requests a waypoint sends to this Service. */
  readonly trafficPolicy?: AppliedTrafficPolicy;
}

export interface MeshNode {
  readonly name: string;
  readonly ips: readonly string[];
}

export interface MeshView {
  readonly revision: string;
  readonly trustDomain: string;
  readonly nodes: readonly MeshNode[];
  readonly workloads: readonly Workload[];
  readonly services: readonly MeshService[];
  readonly waypoints: readonly MeshWaypoint[];
}

export const CLUSTER_DOMAIN = 'cluster.local';

/** Deployment replicas are named `<deploy>-<hash>-<suffix>`; Istio reports the Deployment. */
export function workloadNameOf(podName: string, labels: Labels): string {
  if (labels['pod-template-hash'] !== undefined) {
    const parts = podName.split('-');
    if (parts.length >= 3) return parts.slice(0, -2).join('-');
  }
  return podName;
}

/**
 * The workload a pod is, or undefined for a pod that is not one: not running, without an address, or
 * on the host network (its traffic is the node's).
 */
export function workloadOf(
  pod: ClusterPod,
  namespaceLabels: Labels | undefined,
  trustDomain: string,
  waypoints: WaypointLookup = noWaypoints,
): Workload | undefined {
  if (pod.hostNetwork || pod.ips.length === 0 || pod.phase !== 'Running' || pod.terminating) return undefined;
  const workloadName = workloadNameOf(pod.name, pod.labels);
  const { waypoint } = bindWaypoint(pod, namespaceLabels, 'workload', waypoints);
  return {
    uid: pod.uid,
    namespace: pod.namespace,
    name: pod.name,
    serviceAccount: pod.serviceAccount,
    node: pod.node,
    ips: pod.ips,
    labels: pod.labels,
    app: pod.labels.app ?? pod.labels['app.kubernetes.io/name'] ?? workloadName,
    workloadName,
    captured: isAmbient(namespaceLabels, pod.labels),
    identity: SpiffeId.of(trustDomain, pod.namespace, pod.serviceAccount).toString(),
    ready: pod.ready,
    ...(waypoint === undefined ? {} : { waypoint }),
  };
}

const noWaypoints: WaypointLookup = () => undefined;

/**
 * A Service with its endpoints, read from its EndpointSlices the way kube-proxy reads them: each slice
 * gives the target port of every Service port for its endpoints (an unnamed port is '' there). Only
 * endpoints that are workloads are kept; a pod in two slices is one endpoint.
 */
export function serviceOf(
  svc: ClusterService,
  slices: readonly ClusterEndpointSlice[],
  isWorkload: (uid: string) => boolean,
  namespaceLabels: Labels | undefined = undefined,
  waypoints: WaypointLookup = noWaypoints,
): MeshService {
  const byUid = new Map<string, { ready: boolean; ports: Record<string, number> }>();
  const unnamed = svc.ports.find((p) => p.name === undefined);
  for (const slice of [...slices].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const ports: Record<string, number> = {};
    for (const p of slice.ports) {
      const key = p.name !== '' ? p.name : unnamed === undefined ? undefined : servicePortKey(unnamed);
      if (key !== undefined) ports[key] = p.port;
    }
    for (const e of slice.endpoints) {
      if (e.podUid === undefined || !isWorkload(e.podUid)) continue;
      const have = byUid.get(e.podUid);
      if (have === undefined) byUid.set(e.podUid, { ready: e.ready, ports: { ...ports } });
      else Object.assign(have.ports, ports);
    }
  }
  const { waypoint } = bindWaypoint(svc, namespaceLabels, 'service', waypoints);
  const requiredWaypoint = requiredWaypointOf(svc, namespaceLabels);
  return {
    namespace: svc.namespace,
    name: svc.name,
    hostname: `${svc.name}.${svc.namespace}.svc.${CLUSTER_DOMAIN}`,
    vips: svc.vips,
    ports: svc.ports,
    labels: svc.labels,
    endpoints: [...byUid].map(([workloadUid, e]) => ({ workloadUid, ready: e.ready, ports: e.ports })),
    ...(waypoint === undefined ? {} : { waypoint }),
    ...(requiredWaypoint === undefined ? {} : { requiredWaypoint }),
  };
}

export function nodeOf(n: ClusterNode): MeshNode {
  return { name: n.name, ips: n.addresses };
}

/** Everything a MeshView is built from. */
export interface ViewInputs {
  readonly namespaces: ReadonlyMap<string, { readonly labels: Labels }>;
  readonly nodes: Iterable<ClusterNode>;
  readonly pods: Iterable<ClusterPod>;
  readonly services: Iterable<ClusterService>;
  slicesOf(service: string): readonly ClusterEndpointSlice[];
  /** Waypoint Gateways. */
  readonly gateways?: Iterable<Gateway>;
}

/** The whole view at once (the control plane keeps it up to date entry by entry instead). */
export function buildMeshView(input: ViewInputs, trustDomain: string, revision: string): MeshView {
  const waypoints = [...(input.gateways ?? [])].filter(isWaypoint).map((g) => meshWaypointOf(g, trustDomain));
  const byKey = new Map(waypoints.map((w) => [waypointKey(w), w]));
  const lookup: WaypointLookup = (ref) => byKey.get(waypointKey(ref));
  const workloads: Workload[] = [];
  for (const p of input.pods) {
    const w = workloadOf(p, input.namespaces.get(p.namespace)?.labels, trustDomain, lookup);
    if (w !== undefined) workloads.push(w);
  }
  const known = new Set(workloads.map((w) => w.uid));
  const services = [...input.services].map((s) =>
    serviceOf(
      s,
      input.slicesOf(`${s.namespace}/${s.name}`),
      (uid) => known.has(uid),
      input.namespaces.get(s.namespace)?.labels,
      lookup,
    ),
  );
  return { revision, trustDomain, nodes: [...input.nodes].map(nodeOf), workloads, services, waypoints };
}
