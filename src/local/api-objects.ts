import { createHash } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { SOURCE_ANNOTATION } from '../cluster/kube-objects.js';
import type { Labels } from '../config/kube-types.js';
import type { KeptObject } from '../manifests/model.js';
import type { NodeLayout } from './layout.js';
import type { PodState, ServiceState } from './state.js';

/**
 * The local cluster's API: the cluster the local daemon runs, as the Kubernetes objects an API server
 * would hold (Namespaces, Nodes, Pods with status, Services with their ClusterIPs, the EndpointSlices
 * the endpoint-slice controller would make, and the mesh's config objects). The mesh's daemons read
 * these through the same parser they will use on a real API server. Pure, so tests check the shapes.
 */
export interface ApiInputs {
  readonly namespaces: readonly { readonly name: string; readonly labels: Labels }[];
  readonly nodes: readonly NodeLayout[];
  readonly pods: readonly PodState[];
  readonly services: readonly ServiceState[];
  readonly config: readonly KeptObject[];
}

type Json = Record<string, unknown>;

const LOCAL_CONTROLLER = 'ambit-local';

export function namespaceObject(n: { name: string; labels: Labels }): Json {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: n.name, labels: { 'kubernetes.io/metadata.name': n.name, ...n.labels } },
  };
}

export function nodeObject(n: NodeLayout): Json {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name } },
    spec: { podCIDRs: [n.podCidr4, n.podCidr6] },
    status: {
      addresses: [
        { type: 'InternalIP', address: n.ip4 },
        { type: 'InternalIP', address: n.ip6 },
        { type: 'Hostname', address: n.name },
      ],
    },
  };
}

export function podObject(p: PodState): Json {
  const terminating = p.phase === 'Terminating';
  const phase = terminating ? 'Running' : p.phase;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.name,
      namespace: p.namespace,
      uid: p.uid,
      labels: p.labels,
      annotations: p.annotations,
      creationTimestamp: p.createdAt,
      ...(p.owner === undefined
        ? {}
        : {
            ownerReferences: [{ kind: p.owner.split('/')[0], name: p.owner.split('/')[1], controller: true }],
          }),
      ...(terminating ? { deletionTimestamp: p.deletedAt ?? p.createdAt } : {}),
    },
    spec: {
      nodeName: p.node,
      serviceAccountName: p.serviceAccount,
      containers: p.containers.map((c) => ({ name: c.name })),
    },
    status: {
      phase,
      podIP: p.ip4,
      podIPs: [{ ip: p.ip4 }, { ip: p.ip6 }],
      conditions: [{ type: 'Ready', status: p.ready ? 'True' : 'False' }],
      qosClass: 'BestEffort',
    },
  };
}

export function serviceObject(s: ServiceState): Json {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: s.name, namespace: s.namespace, labels: s.labels, annotations: s.annotations },
    spec: {
      type: 'ClusterIP',
      clusterIP: s.vips[0] ?? 'None',
      clusterIPs: s.vips.length === 0 ? ['None'] : s.vips,
      ports: s.ports.map((p) => ({
        ...(p.name === undefined ? {} : { name: p.name }),
        port: p.port,
        targetPort: p.targetPort,
        protocol: p.protocol,
        ...(p.appProtocol === undefined ? {} : { appProtocol: p.appProtocol }),
      })),
      ...(s.selector === undefined ? {} : { selector: s.selector }),
    },
  };
}

/**
 * The EndpointSlices of a Service, as the endpoint-slice controller makes them: one per address family
 * and per set of target ports (endpoints whose named ports resolve to different numbers go into
 * different slices), named after the Service and a hash of what they hold.
 */
export function endpointSliceObjects(s: ServiceState, podUid: (pod: string) => string | undefined): Json[] {
  const groups = new Map<
    string,
    { family: 'IPv4' | 'IPv6'; ports: Record<string, number>; endpoints: Json[] }
  >();
  for (const e of s.endpoints) {
    const key = JSON.stringify(e.ports);
    for (const [family, address] of [
      ['IPv4', e.ip4],
      ['IPv6', e.ip6],
    ] as const) {
      if (address === '' || isIPv4(address) !== (family === 'IPv4')) continue;
      const gk = `${family}|${key}`;
      const g = groups.get(gk) ?? { family, ports: e.ports, endpoints: [] };
      groups.set(gk, g);
      const uid = podUid(e.pod);
      g.endpoints.push({
        addresses: [address],
        conditions: { ready: e.ready, serving: e.ready, terminating: false },
        nodeName: e.node,
        targetRef: {
          kind: 'Pod',
          name: e.pod,
          namespace: s.namespace,
          ...(uid === undefined ? {} : { uid }),
        },
      });
    }
  }
  return [...groups.entries()].map(([gk, g]) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${s.name}-${createHash('sha256').update(gk).digest('hex').slice(0, 5)}`,
      namespace: s.namespace,
      labels: {
        'kubernetes.io/service-name': s.name,
        'endpointslice.kubernetes.io/managed-by': LOCAL_CONTROLLER,
      },
    },
    addressType: g.family,
    endpoints: g.endpoints,
    ports: s.ports
      .filter((p) => g.ports[p.name ?? String(p.port)] !== undefined)
      .map((p) => ({ name: p.name ?? '', port: g.ports[p.name ?? String(p.port)], protocol: p.protocol })),
  }));
}

/** A mesh config object as the manifest wrote it, with where it came from. */
export function configObject(k: KeptObject): Json {
  const metadata = (k.body.metadata ?? {}) as Json;
  const annotations = (metadata.annotations ?? {}) as Json;
  return {
    ...k.body,
    metadata: {
      ...metadata,
      namespace: k.meta.namespace,
      annotations: { ...annotations, [SOURCE_ANNOTATION]: `${k.source.file}:${k.source.line}` },
    },
  };
}

export function apiObjects(i: ApiInputs): Json[] {
  const uidOf = new Map(i.pods.map((p) => [`${p.namespace}/${p.name}`, p.uid]));
  return [
    ...i.namespaces.map(namespaceObject),
    ...i.nodes.map(nodeObject),
    ...i.pods.map(podObject),
    ...i.services.map(serviceObject),
    ...i.services.flatMap((s) => endpointSliceObjects(s, (pod) => uidOf.get(`${s.namespace}/${pod}`))),
    ...i.config.map(configObject),
  ];
}

/** Writes the API as a Kubernetes List, atomically (rename), so that readers never see half a file. */
export function writeApi(path: string, objects: readonly Json[], resourceVersion: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const list = {
    apiVersion: 'v1',
    kind: 'List',
    metadata: { resourceVersion: String(resourceVersion) },
    items: objects,
  };
  writeFileSync(tmp, `${JSON.stringify(list)}\n`, { mode: 0o644 });
  renameSync(tmp, path);
}
