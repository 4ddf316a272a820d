import type {
  ClusterEndpointSlice,
  ClusterNamespace,
  ClusterNode,
  ClusterPod,
  ClusterResource,
  ClusterService,
} from '../../src/cluster/resources.js';
import { ClusterStore } from '../../src/cluster/store.js';
import type { Labels } from '../../src/config/kube-types.js';
import { type Gateway, WAYPOINT_CLASS } from '../../src/gateway-api/types.js';
import { buildMeshView, type ViewInputs } from '../../src/mesh/view.js';

/** Builders for cluster resources: small objects with defaults, overridden per test row. */

export function snapPod(name: string, over: Partial<ClusterPod> = {}): ClusterPod {
  return {
    kind: 'Pod',
    uid: `uid-${name}`,
    namespace: 'shop',
    name,
    node: 'node-0',
    ips: ['10.244.0.2', 'fd00:10:244::2'],
    serviceAccount: 'default',
    labels: {},
    annotations: {},
    phase: 'Running',
    ready: true,
    hostNetwork: false,
    terminating: false,
    ...over,
  };
}

/** An endpoint of a Service, as a test writes it: which pod, and the target port of each service port key. */
export interface SnapEndpoint {
  readonly podUid?: string;
  readonly pod: string;
  readonly node: string;
  readonly ips: readonly string[];
  readonly ready: boolean;
  readonly ports: Readonly<Record<string, number>>;
}

export function snapEndpoint(pod: string, over: Partial<SnapEndpoint> = {}): SnapEndpoint {
  return { podUid: `uid-${pod}`, pod, node: 'node-0', ips: [], ready: true, ports: {}, ...over };
}

export type SnapService = ClusterService & { readonly endpoints: readonly SnapEndpoint[] };

export function snapService(
  name: string,
  over: Partial<ClusterService> & { endpoints?: readonly SnapEndpoint[] } = {},
): SnapService {
  return {
    kind: 'Service',
    namespace: 'shop',
    name,
    labels: {},
    annotations: {},
    vips: ['10.96.0.10'],
    ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }],
    endpoints: [],
    ...over,
  };
}

/**
 * The EndpointSlices of a test Service, one per distinct port mapping, the way the endpoint-slice
 * controller groups them (a service port key that is a port number is the unnamed port '').
 */
export function slicesOf(s: SnapService): ClusterEndpointSlice[] {
  const groups = new Map<string, SnapEndpoint[]>();
  for (const e of s.endpoints) {
    const k = JSON.stringify(e.ports);
    groups.set(k, [...(groups.get(k) ?? []), e]);
  }
  return [...groups.values()].map((eps, i) => ({
    kind: 'EndpointSlice',
    namespace: s.namespace,
    name: `${s.name}-${i}`,
    service: s.name,
    ports: Object.entries(eps[0]!.ports).map(([key, port]) => ({
      name: s.ports.some((p) => p.name === key) ? key : '',
      port,
      protocol: 'TCP' as const,
    })),
    endpoints: eps.map((e) => ({
      addresses: e.ips,
      ready: e.ready,
      ...(e.podUid === undefined ? {} : { podUid: e.podUid }),
      pod: e.pod,
      node: e.node,
    })),
  }));
}

/** A waypoint Gateway (class ambit-waypoint, HBONE listener on 15008). */
export function snapGateway(name: string, over: Partial<Gateway> = {}): Gateway {
  return {
    namespace: 'shop',
    name,
    labels: {},
    gatewayClassName: WAYPOINT_CLASS,
    listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE', allowedRoutes: { from: 'Same' } }],
    addresses: [],
    ...over,
  };
}

export interface Snapshot extends ViewInputs {
  readonly revision: string;
  readonly store: ClusterStore;
  readonly resources: readonly ClusterResource[];
}

/** A cluster in a store, from namespaces, nodes, pods and services (with their endpoints). */
export function snapshot(
  over: {
    revision?: string;
    namespaces?: readonly { name: string; labels: Labels }[];
    nodes?: readonly { name: string; ip4: string; ip6?: string }[];
    pods?: readonly ClusterPod[];
    services?: readonly SnapService[];
    gateways?: readonly Gateway[];
  } = {},
): Snapshot {
  const namespaces: ClusterNamespace[] = (over.namespaces ?? [{ name: 'shop', labels: {} }]).map((n) => ({
    kind: 'Namespace',
    ...n,
  }));
  const nodes: ClusterNode[] = (over.nodes ?? [{ name: 'node-0', ip4: '172.18.0.2', ip6: 'fd00:18::2' }]).map(
    (n) => ({ kind: 'Node', name: n.name, addresses: n.ip6 === undefined ? [n.ip4] : [n.ip4, n.ip6] }),
  );
  const services = over.services ?? [];
  const resources: ClusterResource[] = [
    ...namespaces,
    ...nodes,
    ...(over.pods ?? []),
    ...services.map(({ endpoints: _e, ...svc }) => svc),
    ...services.flatMap(slicesOf),
  ];
  const store = new ClusterStore();
  store.apply(resources.map((resource) => ({ type: 'added', resource })));
  return {
    revision: over.revision ?? 'rev-1',
    store,
    resources,
    namespaces: store.namespaces,
    nodes: [...store.nodes.values()],
    pods: [...store.pods.values()],
    services: [...store.services.values()],
    slicesOf: (key) => store.slicesOf(key),
    gateways: over.gateways ?? [],
  };
}

export const AMBIENT_NS: Labels = { 'ambit.dev/dataplane-mode': 'ambient' };

/** The mesh view of a snapshot, as the control plane builds it. */
export function viewOf(s: Snapshot, trustDomain: string) {
  return buildMeshView(s, trustDomain, s.revision);
}
