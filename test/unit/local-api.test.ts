import { describe, expect, test } from 'vitest';
import { snapshotFromLocalState } from '../../src/kube/local-api.js';
import type { NodeLayout } from '../../src/local/layout.js';
import type { LocalState, PodState, ServiceState } from '../../src/local/state.js';

const node: NodeLayout = {
  name: 'node-0',
  index: 0,
  netns: 'ambit.node.0',
  ip4: '172.30.0.2',
  ip6: 'fd00:30::2',
  podCidr4: '10.244.0.0/24',
  podCidr6: 'fd00:10:244::/64',
  gateway4: '10.244.0.1',
  gateway6: 'fd00:10:244::1',
  proxy4: '10.244.0.254',
  proxy6: 'fd00:10:244::fe',
  podsCgroup: 'nodes/node-0/pods',
  systemCgroup: 'nodes/node-0/system',
};

function pod(name: string, over: Partial<PodState> = {}): PodState {
  return {
    namespace: 'shop',
    name,
    uid: `uid-${name}`,
    node: 'node-0',
    netns: `ambit.pod.shop.${name}`,
    ip4: '10.244.0.2',
    ip6: 'fd00:10:244::2',
    cgroup: `nodes/node-0/pods/shop_${name}`,
    serviceAccount: 'web-sa',
    labels: { app: 'web' },
    annotations: { note: 'x' },
    phase: 'Running',
    ready: true,
    containers: [{ name: 'c', state: 'running', ready: true, restarts: 0 }],
    ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
    createdAt: '2024-01-01T00:00:00Z',
    ...over,
  };
}

const web: ServiceState = {
  namespace: 'shop',
  name: 'web',
  labels: { team: 'a' },
  annotations: {},
  vips: ['10.96.0.10', 'fd00:10:96::a'],
  ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
  selector: { app: 'web' },
  endpoints: [
    {
      pod: 'web-a',
      node: 'node-0',
      ip4: '10.244.0.2',
      ip6: 'fd00:10:244::2',
      ready: true,
      ports: { http: 8080 },
    },
    {
      pod: 'gone',
      node: 'node-0',
      ip4: '10.244.0.7',
      ip6: 'fd00:10:244::7',
      ready: false,
      ports: { http: 8080 },
    },
  ],
};

const base: LocalState = {
  version: 1,
  cluster: 'dev',
  manifests: '/tmp/m',
  daemonPid: 100,
  cgroupDir: '/sys/fs/cgroup/ambit.dev',
  phase: 'running',
  nodes: [node],
  namespaces: [{ name: 'shop', labels: { 'ambit.dev/dataplane-mode': 'ambient' } }],
  pods: [pod('web-a'), pod('other', { namespace: 'dev', uid: 'uid-dev-other', ip4: '10.244.0.3' })],
  services: [web],
  daemons: [],
  issues: [],
  kept: [
    {
      kind: 'HTTPRoute',
      apiVersion: 'gateway.networking.k8s.io/v1',
      namespace: 'shop',
      name: 'r',
      file: '/tmp/m/r.yaml',
      line: 3,
      body: { spec: { hostnames: ['web'] } },
    },
  ],
  generation: 1,
  updatedAt: '2024-01-01T00:00:00Z',
};

describe('snapshotFromLocalState', () => {
  const snap = snapshotFromLocalState(base);

  test('pods carry both addresses, their cgroup and the facts the mesh needs', () => {
    expect(snap.pods[0]).toEqual({
      uid: 'uid-web-a',
      namespace: 'shop',
      name: 'web-a',
      node: 'node-0',
      ips: ['10.244.0.2', 'fd00:10:244::2'],
      serviceAccount: 'web-sa',
      labels: { app: 'web' },
      annotations: { note: 'x' },
      phase: 'Running',
      ready: true,
      hostNetwork: false,
      cgroup: 'nodes/node-0/pods/shop_web-a',
      ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
    });
    expect(snap.pods.map((p) => `${p.namespace}/${p.name}`)).toEqual(['shop/web-a', 'dev/other']);
  });

  test('endpoints name their pod by uid when the pod of that namespace exists', () => {
    expect(snap.services).toEqual([
      {
        namespace: 'shop',
        name: 'web',
        labels: { team: 'a' },
        annotations: {},
        vips: ['10.96.0.10', 'fd00:10:96::a'],
        ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
        endpoints: [
          {
            podUid: 'uid-web-a',
            pod: 'web-a',
            node: 'node-0',
            ips: ['10.244.0.2', 'fd00:10:244::2'],
            ready: true,
            ports: { http: 8080 },
          },
          {
            pod: 'gone',
            node: 'node-0',
            ips: ['10.244.0.7', 'fd00:10:244::7'],
            ready: false,
            ports: { http: 8080 },
          },
        ],
      },
    ]);
  });

  test('an endpoint does not take the uid of a same-named pod in another namespace', () => {
    const s = snapshotFromLocalState({
      ...base,
      services: [{ ...web, endpoints: [{ ...web.endpoints[0]!, pod: 'other' }] }],
    });
    expect(s.services[0]?.endpoints[0]).not.toHaveProperty('podUid');
  });

  test('nodes, namespaces and kept config objects', () => {
    expect(snap.nodes).toEqual([{ name: 'node-0', ip4: '172.30.0.2', ip6: 'fd00:30::2' }]);
    expect(snap.namespaces).toEqual(base.namespaces);
    expect(snap.config).toEqual([
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        namespace: 'shop',
        name: 'r',
        file: '/tmp/m/r.yaml',
        line: 3,
        body: { spec: { hostnames: ['web'] } },
      },
    ]);
  });

  test('the same state gives the same revision', () => {
    expect(snapshotFromLocalState(structuredClone(base)).revision).toBe(snap.revision);
    expect(snap.revision).toMatch(/^[0-9a-f]{16}$/);
  });

  test.each<{ what: string; state: LocalState }>([
    {
      what: 'a pod label',
      state: { ...base, pods: [pod('web-a', { labels: { app: 'api' } }), base.pods[1]!] },
    },
    {
      what: 'a pod turns not ready',
      state: { ...base, pods: [pod('web-a', { ready: false }), base.pods[1]!] },
    },
    {
      what: 'a pod phase',
      state: { ...base, pods: [pod('web-a', { phase: 'Terminating' }), base.pods[1]!] },
    },
    { what: 'a pod address', state: { ...base, pods: [pod('web-a', { ip4: '10.244.0.9' }), base.pods[1]!] } },
    { what: 'a pod goes away', state: { ...base, pods: [pod('web-a')] } },
    {
      what: 'a namespace label',
      state: { ...base, namespaces: [{ name: 'shop', labels: {} }] },
    },
    { what: 'a Service VIP', state: { ...base, services: [{ ...web, vips: ['10.96.0.11'] }] } },
    {
      what: 'an endpoint turns ready',
      state: {
        ...base,
        services: [{ ...web, endpoints: [web.endpoints[0]!, { ...web.endpoints[1]!, ready: true }] }],
      },
    },
    { what: 'a node address', state: { ...base, nodes: [{ ...node, ip4: '172.30.0.9' }] } },
    { what: 'a kept config body', state: { ...base, kept: [{ ...base.kept[0]!, body: { spec: {} } }] } },
  ])('the revision changes with content: $what', ({ state }) => {
    expect(snapshotFromLocalState(state).revision).not.toBe(snap.revision);
  });

  test.each<{ what: string; state: LocalState }>([
    {
      what: 'generation and update time',
      state: { ...base, generation: 7, updatedAt: '2025-01-01T00:00:00Z' },
    },
    { what: 'the cluster phase', state: { ...base, phase: 'stopping' } },
    { what: 'the daemon pid', state: { ...base, daemonPid: 200 } },
    {
      what: 'a container restart',
      state: {
        ...base,
        pods: [
          pod('web-a', { containers: [{ name: 'c', state: 'running', ready: true, restarts: 3 }] }),
          base.pods[1]!,
        ],
      },
    },
    { what: 'the Service selector', state: { ...base, services: [{ ...web, selector: { app: 'x' } }] } },
    { what: 'the node gateway', state: { ...base, nodes: [{ ...node, gateway4: '10.244.0.254' }] } },
  ])('the revision is stable when nothing the mesh reads changes: $what', ({ state }) => {
    expect(snapshotFromLocalState(state).revision).toBe(snap.revision);
  });
});
