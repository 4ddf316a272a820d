import { describe, expect, test } from 'vitest';
import { ResourceDiffer } from '../../src/cluster/diff.js';
import { parseKubeObject } from '../../src/cluster/kube-objects.js';
import type { ClusterPod } from '../../src/cluster/resources.js';
import type { ClusterEvent } from '../../src/cluster/source.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { snapPod } from './cluster-fixtures.js';

/** A Pod as a Kubernetes API server returns it (trimmed of fields Ambit does not read, but real-shaped). */
function apiPod(name: string, node: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'shop',
      uid: `0d9f1a3c-${name}`,
      resourceVersion: '4711',
      creationTimestamp: '2026-11-30T10:00:00Z',
      labels: { app: 'web', 'pod-template-hash': '7d4b9c8f6d' },
      annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-11-30T09:59:00Z' },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d4b9c8f6d', controller: true },
      ],
      managedFields: [{ manager: 'kube-controller-manager', operation: 'Update' }],
    },
    spec: {
      nodeName: node,
      serviceAccountName: 'web',
      containers: [
        { name: 'web', image: 'nginx:1.27', ports: [{ containerPort: 8080, name: 'http', protocol: 'TCP' }] },
      ],
      dnsPolicy: 'ClusterFirst',
    },
    status: {
      phase: 'Running',
      conditions: [
        { type: 'Initialized', status: 'True' },
        { type: 'Ready', status: 'True' },
        { type: 'ContainersReady', status: 'True' },
      ],
      hostIP: '172.18.0.2',
      podIP: '10.244.1.5',
      podIPs: [{ ip: '10.244.1.5' }, { ip: 'fd00:10:244:1::5' }],
      qosClass: 'Burstable',
      startTime: '2026-11-30T10:00:01Z',
    },
    ...over,
  };
}

describe('parseKubeObject: real-shaped API objects to cluster resources', () => {
  test('a Pod: its identity, addresses, phase and readiness; fields Ambit does not read are ignored', () => {
    expect(parseKubeObject(apiPod('web-7d4b9c8f6d-x2x9q', 'node-1'))).toEqual({
      resource: {
        kind: 'Pod',
        uid: '0d9f1a3c-web-7d4b9c8f6d-x2x9q',
        namespace: 'shop',
        name: 'web-7d4b9c8f6d-x2x9q',
        node: 'node-1',
        serviceAccount: 'web',
        labels: { app: 'web', 'pod-template-hash': '7d4b9c8f6d' },
        annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-11-30T09:59:00Z' },
        ips: ['10.244.1.5', 'fd00:10:244:1::5'],
        phase: 'Running',
        ready: true,
        hostNetwork: false,
        qosClass: 'Burstable',
        terminating: false,
      } satisfies ClusterPod,
    });
  });

  test.each<{ what: string; over: Record<string, unknown>; want: Partial<ClusterPod> }>([
    {
      what: 'a pending pod without addresses',
      over: { status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] } },
      want: { phase: 'Pending', ips: [], ready: false },
    },
    {
      what: 'only podIP (older API servers)',
      over: { status: { phase: 'Running', podIP: '10.1.2.3' } },
      want: { ips: ['10.1.2.3'] },
    },
    {
      what: 'a pod being deleted',
      over: {
        metadata: { name: 'x', namespace: 'shop', uid: 'u', deletionTimestamp: '2026-11-30T11:00:00Z' },
      },
      want: { terminating: true },
    },
    {
      what: 'a phase Ambit does not know',
      over: { status: { phase: 'Evicted' } },
      want: { phase: 'Unknown' },
    },
    {
      what: 'a host-network pod',
      over: { spec: { nodeName: 'n', hostNetwork: true } },
      want: { hostNetwork: true, serviceAccount: 'default' },
    },
  ])('$what', ({ over, want }) => {
    const r = parseKubeObject(apiPod('p', 'node-1', over));
    expect('resource' in r && r.resource).toMatchObject(want);
  });

  test('a Pod without a uid cannot be used and says why', () => {
    expect(parseKubeObject(apiPod('p', 'n', { metadata: { name: 'p', namespace: 'shop' } }))).toEqual({
      problem: 'Pod/shop/p: metadata.uid: is required',
    });
  });

  test('an EndpointSlice: its Service, port numbers and endpoints (a nil ready condition is ready)', () => {
    const slice = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'web-abc12',
        namespace: 'shop',
        labels: {
          'kubernetes.io/service-name': 'web',
          'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
        },
      },
      addressType: 'IPv4',
      endpoints: [
        {
          addresses: ['10.244.1.5'],
          conditions: { ready: true, serving: true, terminating: false },
          nodeName: 'node-1',
          targetRef: { kind: 'Pod', name: 'web-1', namespace: 'shop', uid: 'uid-1' },
        },
        {
          addresses: ['10.244.2.9'],
          conditions: {},
          targetRef: { kind: 'Pod', name: 'web-2', uid: 'uid-2' },
        },
        { addresses: ['192.0.2.1'], conditions: { ready: false } },
      ],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    };
    expect(parseKubeObject(slice)).toEqual({
      resource: {
        kind: 'EndpointSlice',
        namespace: 'shop',
        name: 'web-abc12',
        service: 'web',
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
        endpoints: [
          { addresses: ['10.244.1.5'], ready: true, podUid: 'uid-1', pod: 'web-1', node: 'node-1' },
          { addresses: ['10.244.2.9'], ready: true, podUid: 'uid-2', pod: 'web-2' },
          { addresses: ['192.0.2.1'], ready: false },
        ],
      },
    });
  });

  test('a Node: its InternalIP addresses, IPv4 first', () => {
    expect(
      parseKubeObject({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: 'node-1' },
        status: {
          addresses: [
            { type: 'InternalIP', address: 'fd00:18::2' },
            { type: 'Hostname', address: 'node-1' },
            { type: 'InternalIP', address: '172.18.0.2' },
            { type: 'ExternalIP', address: '203.0.113.7' },
          ],
        },
      }),
    ).toEqual({ resource: { kind: 'Node', name: 'node-1', addresses: ['172.18.0.2', 'fd00:18::2'] } });
  });

  test('a headless Service has no VIPs; kinds Ambit does not read are ignored, with what they are', () => {
    const headless = parseKubeObject({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'db', namespace: 'shop' },
      spec: { clusterIP: 'None', clusterIPs: ['None'], ports: [{ port: 5432 }] },
    });
    expect('resource' in headless && headless.resource).toMatchObject({
      vips: [],
      ports: [{ port: 5432, targetPort: 5432, protocol: 'TCP' }],
    });
    expect(
      parseKubeObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'shop' } }),
    ).toEqual({
      ignored: 'ConfigMap/shop/x: Ambit does not read ConfigMap',
    });
  });
});

describe('ResourceDiffer and ClusterStore: per-resource events and the indexes built from them', () => {
  test('added, updated, deleted; a pod recreated under its name is a delete and an add; the store follows', () => {
    const differ = new ResourceDiffer();
    const store = new ClusterStore();
    const kinds = (events: ClusterEvent[]) =>
      events.map((e) => `${e.type} ${e.resource.kind === 'Pod' ? e.resource.uid : ''}`);
    const a = snapPod('a', { serviceAccount: 'web' });
    const b = snapPod('b', { serviceAccount: 'web', node: 'node-1' });
    let ev = differ.diff([a, b]);
    store.apply(ev);
    expect(kinds(ev)).toEqual(['added uid-a', 'added uid-b']);
    expect(
      store
        .podsRunningAs('shop', 'web')
        .map((p) => p.name)
        .sort(),
    ).toEqual(['a', 'b']);
    ev = differ.diff([a, b]);
    expect(ev).toEqual([]);
    ev = differ.diff([
      { ...a, ready: false },
      { ...b, uid: 'uid-b2', serviceAccount: 'api' },
    ]);
    store.apply(ev);
    expect(kinds(ev)).toEqual(['updated uid-a', 'deleted uid-b', 'added uid-b2']);
    expect(store.podsRunningAs('shop', 'web').map((p) => p.name)).toEqual(['a']);
    expect(store.podsRunningAs('shop', 'api').map((p) => p.uid)).toEqual(['uid-b2']);
    ev = differ.diff([]);
    store.apply(ev);
    expect(store.pods.size).toBe(0);
    expect(store.podsRunningAs('shop', 'web')).toEqual([]);
  });
});
