import type { ClusterEndpointSlice, ClusterNode, ClusterPod, ClusterService } from '../cluster/resources.js';
import { type Labels, type ServicePort, servicePortKey } from '../config/kube-types.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import { isAmbient } from './labels.js';

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
): Workload | undefined {
  if (pod.hostNetwork || pod.ips.length === 0 || pod.phase !== 'Running' || pod.terminating) return undefined;
  const workloadName = workloadNameOf(pod.name, pod.labels);
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
  };
}

/**
 * A Service with its endpoints, read from its EndpointSlices the way kube-proxy reads them: each slice
 * gives the target port of every Service port for its endpoints (an unnamed port is '' there). Only
 * endpoints that are workloads are kept; a pod in two slices is one endpoint.
 */
export function serviceOf(
  svc: ClusterService,
  slices: readonly ClusterEndpointSlice[],
  isWorkload: (uid: string) => boolean,
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
  return {
    namespace: svc.namespace,
    name: svc.name,
    hostname: `${svc.name}.${svc.namespace}.svc.${CLUSTER_DOMAIN}`,
    vips: svc.vips,
    ports: svc.ports,
    labels: svc.labels,
    endpoints: [...byUid].map(([workloadUid, e]) => ({ workloadUid, ready: e.ready, ports: e.ports })),
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
}

/** The whole view at once (the control plane keeps it up to date entry by entry instead). */
export function buildMeshView(input: ViewInputs, trustDomain: string, revision: string): MeshView {
  const workloads: Workload[] = [];
  for (const p of input.pods) {
    const w = workloadOf(p, input.namespaces.get(p.namespace)?.labels, trustDomain);
    if (w !== undefined) workloads.push(w);
  }
  const known = new Set(workloads.map((w) => w.uid));
  const services = [...input.services].map((s) =>
    serviceOf(s, input.slicesOf(`${s.namespace}/${s.name}`), (uid) => known.has(uid)),
  );
  return { revision, trustDomain, nodes: [...input.nodes].map(nodeOf), workloads, services };
}
