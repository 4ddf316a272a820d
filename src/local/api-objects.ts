import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { SOURCE_ANNOTATION } from '../cluster/kube-objects.js';
import type { Labels } from '../config/kube-types.js';
import type { DeploymentObject, KeptObject, ServiceAccountObject } from '../manifests/model.js';
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
  readonly deployments?: readonly DeploymentObject[];
  readonly serviceAccounts?: readonly ServiceAccountObject[];
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

export function podObject(p: PodState, hostIP?: string): Json {
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
      ...(p.hostNetwork ? { hostNetwork: true } : {}),
      containers: p.containers.map((c) => ({ name: c.name })),
    },
    status: {
      phase,
      podIP: p.ip4,
      podIPs: [{ ip: p.ip4 }, { ip: p.ip6 }],
      ...(hostIP === undefined ? {} : { hostIP, hostIPs: [{ ip: hostIP }] }),
      conditions: [
        // As the kubelet reports a sandbox whose network failed (its event says FailedCreatePodSandBox).
        ...(p.message === undefined
          ? []
          : [
              {
                type: 'PodReadyToStartContainers',
                status: 'False',
                reason: 'FailedCreatePodSandBox',
                message: p.message,
              },
            ]),
        { type: 'Ready', status: p.ready ? 'True' : 'False' },
      ],
      containerStatuses: p.containers.map((c) => ({
        name: c.name,
        ready: c.ready,
        restartCount: c.restarts,
        started: c.state === 'running',
        state:
          c.state === 'running'
            ? { running: { startedAt: c.startedAt } }
            : c.state === 'terminated'
              ? {
                  terminated: {
                    exitCode: c.exitCode ?? 0,
                    reason: c.reason ?? (c.exitCode === 0 ? 'Completed' : 'Error'),
                  },
                }
              : { waiting: { reason: c.reason ?? 'ContainerCreating' } },
      })),
      qosClass: p.qosClass ?? 'BestEffort',
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

/** A Deployment with the status its controller would report, counted from the pods it owns. */
export function deploymentObject(d: DeploymentObject, pods: readonly PodState[]): Json {
  const mine = pods.filter(
    (p) => p.namespace === d.meta.namespace && p.owner === `Deployment/${d.meta.name}`,
  );
  const live = mine.filter((p) => p.phase !== 'Terminating');
  const ready = live.filter((p) => p.ready).length;
  const annotations = { ...d.meta.annotations, [SOURCE_ANNOTATION]: `${d.source.file}:${d.source.line}` };
  const m = d.manifest;
  const rendered: Json =
    m === undefined
      ? {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          spec: {
            replicas: d.replicas,
            selector: { matchLabels: d.selector },
            template: {
              metadata: { labels: d.template.labels, annotations: d.template.annotations },
              spec: {
                serviceAccountName: d.template.spec.serviceAccountName,
                containers: d.template.spec.containers.map((c) => ({
                  name: c.name,
                  ...(c.image === undefined ? {} : { image: c.image }),
                  command: c.command,
                })),
              },
            },
          },
        }
      : { ...m, spec: { ...((m.spec ?? {}) as Json), replicas: d.replicas } };
  return {
    ...rendered,
    metadata: {
      ...((m?.metadata ?? {}) as Json),
      name: d.meta.name,
      namespace: d.meta.namespace,
      labels: d.meta.labels,
      annotations,
    },
    status: {
      replicas: live.length,
      updatedReplicas: live.length,
      readyReplicas: ready,
      availableReplicas: ready,
      ...(ready < d.replicas ? { unavailableReplicas: d.replicas - ready } : {}),
    },
  };
}

export function serviceAccountObject(sa: { namespace: string; name: string }): Json {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa.name, namespace: sa.namespace } };
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
    ...i.pods.map((p) => podObject(p, i.nodes.find((n) => n.name === p.node)?.ip4)),
    ...i.services.map(serviceObject),
    ...i.services.flatMap((s) => endpointSliceObjects(s, (pod) => uidOf.get(`${s.namespace}/${pod}`))),
    ...i.config.map(configObject),
    ...(i.deployments ?? []).map((d) => deploymentObject(d, i.pods)),
    ...serviceAccounts(i).map(serviceAccountObject),
  ];
}

/** Every namespace has `default`; the rest are declared, or named by a pod (as admission would require). */
function serviceAccounts(i: ApiInputs): { namespace: string; name: string }[] {
  const out = new Map<string, { namespace: string; name: string }>();
  const add = (namespace: string, name: string): void => {
    out.set(`${namespace}/${name}`, { namespace, name });
  };
  for (const n of i.namespaces) add(n.name, 'default');
  for (const sa of i.serviceAccounts ?? []) add(sa.meta.namespace, sa.meta.name);
  for (const p of i.pods) add(p.namespace, p.serviceAccount);
  return [...out.values()];
}
