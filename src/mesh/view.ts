import type { Labels, ServicePort } from '../config/model.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import type { ClusterSnapshot } from '../kube/snapshot.js';
import { isAmbient } from './labels.js';

/**
 * The mesh as proxies see it: workloads with addresses and identities, and services with their
 * endpoints. Built from a cluster snapshot by a pure function; the control plane pushes it to nodes.
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

export function buildMeshView(snap: ClusterSnapshot, trustDomain: string): MeshView {
  const nsLabels = new Map(snap.namespaces.map((n) => [n.name, n.labels]));
  const workloads: Workload[] = snap.pods
    .filter((p) => !p.hostNetwork && p.ips.length > 0 && p.phase === 'Running')
    .map((p) => ({
      uid: p.uid,
      namespace: p.namespace,
      name: p.name,
      serviceAccount: p.serviceAccount,
      node: p.node,
      ips: p.ips,
      labels: p.labels,
      app: p.labels.app ?? p.labels['app.kubernetes.io/name'] ?? workloadNameOf(p.name, p.labels),
      workloadName: workloadNameOf(p.name, p.labels),
      captured: isAmbient(nsLabels.get(p.namespace), p.labels),
      identity: SpiffeId.of(trustDomain, p.namespace, p.serviceAccount).toString(),
      ready: p.ready,
    }));
  const known = new Set(workloads.map((w) => w.uid));
  const services: MeshService[] = snap.services.map((s) => ({
    namespace: s.namespace,
    name: s.name,
    hostname: `${s.name}.${s.namespace}.svc.${CLUSTER_DOMAIN}`,
    vips: s.vips,
    ports: s.ports,
    labels: s.labels,
    endpoints: s.endpoints
      .filter((e) => e.podUid !== undefined && known.has(e.podUid))
      .map((e) => ({ workloadUid: e.podUid!, ready: e.ready, ports: e.ports })),
  }));
  return {
    revision: snap.revision,
    trustDomain,
    nodes: snap.nodes.map((n) => ({ name: n.name, ips: n.ip6 === undefined ? [n.ip4] : [n.ip4, n.ip6] })),
    workloads,
    services,
  };
}
