import { describe, expect, test } from 'vitest';
import type { ClusterPod } from '../../src/cluster/resources.js';
import type { Labels } from '../../src/manifests/model.js';
import { MeshIndex } from '../../src/mesh/mesh-index.js';
import { buildMeshView, workloadNameOf } from '../../src/mesh/view.js';
import {
  AMBIENT_NS,
  type Snapshot,
  snapEndpoint,
  snapPod,
  snapService,
  snapshot,
} from './cluster-fixtures.js';

const viewOf = (s: Snapshot, trustDomain: string) => buildMeshView(s, trustDomain, s.revision);

describe('workloadNameOf', () => {
  test.each<[string, Labels, string]>([
    ['web-7d4b9c8f6d-x2x9q', { 'pod-template-hash': '7d4b9c8f6d' }, 'web'],
    ['my-api-7d4b9c8f6d-x2x9q', { 'pod-template-hash': '7d4b9c8f6d' }, 'my-api'],
    ['web-7d4b9c8f6d-x2x9q', {}, 'web-7d4b9c8f6d-x2x9q'],
    ['db-0', {}, 'db-0'],
    ['web-x2x9q', { 'pod-template-hash': 'abc' }, 'web-x2x9q'],
    ['web', { 'pod-template-hash': 'abc' }, 'web'],
  ])('%s with %j -> %s', (name, labels, expected) => {
    expect(workloadNameOf(name, labels)).toBe(expected);
  });
});

describe('buildMeshView', () => {
  test.each<{ what: string; pod: Partial<ClusterPod>; included: boolean }>([
    { what: 'a Running pod', pod: {}, included: true },
    { what: 'a Running pod that is not ready', pod: { ready: false }, included: true },
    { what: 'a Pending pod', pod: { phase: 'Pending' }, included: false },
    { what: 'a Succeeded pod', pod: { phase: 'Succeeded' }, included: false },
    { what: 'a Failed pod', pod: { phase: 'Failed' }, included: false },
    { what: 'a pod being deleted', pod: { terminating: true }, included: false },
    { what: 'a hostNetwork pod', pod: { hostNetwork: true }, included: false },
    { what: 'a pod without addresses', pod: { ips: [] }, included: false },
  ])('$what is a workload: $included', ({ pod, included }) => {
    const view = viewOf(snapshot({ pods: [snapPod('web', pod)] }), 'cluster.local');
    expect(view.workloads.map((w) => w.name)).toEqual(included ? ['web'] : []);
  });

  test('a workload carries the pod facts, its SPIFFE identity and its canonical names', () => {
    const view = viewOf(
      snapshot({
        namespaces: [{ name: 'shop', labels: AMBIENT_NS }],
        pods: [
          snapPod('web-7d4b9c8f6d-x2x9q', {
            serviceAccount: 'web-sa',
            node: 'node-1',
            labels: { 'pod-template-hash': '7d4b9c8f6d', tier: 'front' },
            ready: false,
          }),
        ],
      }),
      'example.org',
    );
    expect(view.workloads).toEqual([
      {
        uid: 'uid-web-7d4b9c8f6d-x2x9q',
        namespace: 'shop',
        name: 'web-7d4b9c8f6d-x2x9q',
        serviceAccount: 'web-sa',
        node: 'node-1',
        ips: ['10.244.0.2', 'fd00:10:244::2'],
        labels: { 'pod-template-hash': '7d4b9c8f6d', tier: 'front' },
        app: 'web',
        workloadName: 'web',
        captured: true,
        identity: 'spiffe://example.org/ns/shop/sa/web-sa',
        ready: false,
      },
    ]);
  });

  test.each<{ what: string; name: string; labels: Labels; app: string }>([
    {
      what: 'app label first',
      name: 'web-1',
      labels: { app: 'shop-web', 'app.kubernetes.io/name': 'other' },
      app: 'shop-web',
    },
    {
      what: 'then app.kubernetes.io/name',
      name: 'web-1',
      labels: { 'app.kubernetes.io/name': 'k' },
      app: 'k',
    },
    {
      what: 'then the Deployment name',
      name: 'web-7d4b9c8f6d-x2x9q',
      labels: { 'pod-template-hash': '7d4b9c8f6d' },
      app: 'web',
    },
    { what: 'then the pod name', name: 'db-0', labels: {}, app: 'db-0' },
  ])('app: $what', ({ name, labels, app }) => {
    const view = viewOf(snapshot({ pods: [snapPod(name, { labels })] }), 'cluster.local');
    expect(view.workloads[0]?.app).toBe(app);
  });

  test.each<{ what: string; ns: Labels; pod: Labels; captured: boolean }>([
    { what: 'ambient namespace', ns: AMBIENT_NS, pod: {}, captured: true },
    { what: 'plain namespace', ns: {}, pod: {}, captured: false },
    {
      what: 'opted-out pod in an ambient namespace',
      ns: AMBIENT_NS,
      pod: { 'ambit.dev/dataplane-mode': 'none' },
      captured: false,
    },
    { what: 'ambient pod in a plain namespace', ns: {}, pod: AMBIENT_NS, captured: true },
  ])('captured: $what -> $captured', ({ ns, pod, captured }) => {
    const view = viewOf(
      snapshot({ namespaces: [{ name: 'shop', labels: ns }], pods: [snapPod('web', { labels: pod })] }),
      'cluster.local',
    );
    expect(view.workloads[0]?.captured).toBe(captured);
  });

  test('service endpoints keep only pods that are workloads', () => {
    const view = viewOf(
      snapshot({
        pods: [snapPod('a'), snapPod('b', { phase: 'Pending' }), snapPod('c', { hostNetwork: true })],
        services: [
          snapService('web', {
            vips: ['10.96.0.10', 'fd00:10:96::a'],
            labels: { team: 'x' },
            endpoints: [
              snapEndpoint('a', { ready: false, ports: { '80': 8080 } }),
              snapEndpoint('b'),
              snapEndpoint('c'),
              snapEndpoint('gone', { podUid: 'uid-gone' }),
              { pod: 'manual', node: 'node-0', ips: ['10.0.0.9'], ready: true, ports: {} },
            ],
          }),
        ],
      }),
      'cluster.local',
    );
    expect(view.services).toEqual([
      {
        namespace: 'shop',
        name: 'web',
        hostname: 'web.shop.svc.cluster.local',
        vips: ['10.96.0.10', 'fd00:10:96::a'],
        ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }],
        labels: { team: 'x' },
        endpoints: [{ workloadUid: 'uid-a', ready: false, ports: { '80': 8080 } }],
      },
    ]);
  });

  test('revision, trust domain and node addresses come through', () => {
    const view = viewOf(
      snapshot({
        revision: 'abc',
        nodes: [
          { name: 'node-0', ip4: '172.18.0.2', ip6: 'fd00:18::2' },
          { name: 'node-1', ip4: '172.18.0.3' },
        ],
      }),
      'td.example',
    );
    expect(view.revision).toBe('abc');
    expect(view.trustDomain).toBe('td.example');
    expect(view.nodes).toEqual([
      { name: 'node-0', ips: ['172.18.0.2', 'fd00:18::2'] },
      { name: 'node-1', ips: ['172.18.0.3'] },
    ]);
  });
});

describe('MeshIndex', () => {
  const index = new MeshIndex(
    viewOf(
      snapshot({
        nodes: [
          { name: 'node-0', ip4: '172.18.0.2', ip6: 'fd00:18::2' },
          { name: 'node-1', ip4: '172.18.0.3' },
        ],
        pods: [
          snapPod('a', { ips: ['10.244.0.2', 'fd00:10:244:0:0:0:0:2'] }),
          snapPod('b', { node: 'node-1', ips: ['10.244.1.3', 'FD00:10:244:1::3'] }),
        ],
        services: [
          snapService('web', { vips: ['10.96.0.10', 'FD00:10:96:0::A'] }),
          snapService('db', { namespace: 'data', vips: [] }),
        ],
      }),
      'cluster.local',
    ),
  );

  test.each<[string, string | undefined]>([
    ['10.244.0.2', 'a'],
    ['::ffff:10.244.0.2', 'a'],
    ['::FFFF:10.244.0.2', 'a'],
    ['fd00:10:244::2', 'a'],
    ['fd00:10:244:0:0:0:0:2', 'a'],
    ['FD00:10:244::2', 'a'],
    ['10.244.1.3', 'b'],
    ['fd00:10:244:1::3', 'b'],
    ['10.244.0.9', undefined],
    ['10.96.0.10', undefined],
  ])('workloadByIp(%s) -> %s', (ip, name) => {
    expect(index.workloadByIp(ip)?.name).toBe(name);
  });

  test.each<[string, string | undefined]>([
    ['10.96.0.10', 'web'],
    ['::ffff:10.96.0.10', 'web'],
    ['fd00:10:96::a', 'web'],
    ['fd00:10:96:0:0:0:0:a', 'web'],
    ['10.96.0.11', undefined],
    ['10.244.0.2', undefined],
  ])('serviceByVip(%s) -> %s', (ip, name) => {
    expect(index.serviceByVip(ip)?.name).toBe(name);
  });

  test.each<[string, string | undefined]>([
    ['web.shop.svc.cluster.local', 'web'],
    ['db.data.svc.cluster.local', 'db'],
    ['web.shop', undefined],
    ['web.data.svc.cluster.local', undefined],
  ])('serviceByHost(%s) -> %s', (host, name) => {
    expect(index.serviceByHost(host)?.name).toBe(name);
  });

  test.each<[string, string[]]>([
    ['node-0', ['172.18.0.2', 'fd00:18::2']],
    ['node-1', ['172.18.0.3']],
    ['node-9', []],
  ])('nodeAddresses(%s)', (node, ips) => {
    expect(index.nodeAddresses(node)).toEqual(ips);
  });

  test('workload by uid and workloads per node', () => {
    expect(index.workload('uid-b')?.name).toBe('b');
    expect(index.workload('uid-x')).toBeUndefined();
    expect(index.workloadsOnNode('node-1').map((w) => w.name)).toEqual(['b']);
    expect(index.workloadsOnNode('node-9')).toEqual([]);
  });
});
