import { describe, expect, test } from 'vitest';
import type { MeshView } from '../../src/mesh/view.js';
import { snapGateway, snapPod, snapService, snapshot, viewOf } from './cluster-fixtures.js';

const USE = 'ambit.dev/use-waypoint';
const USE_NS = 'ambit.dev/use-waypoint-namespace';
const FOR = 'ambit.dev/waypoint-for';

const cluster = snapshot({
  namespaces: [
    { name: 'shop', labels: { [USE]: 'waypoint' } },
    { name: 'plain', labels: {} },
    { name: 'infra', labels: {} },
    { name: 'tenant', labels: { [USE]: 'shared', [USE_NS]: 'infra' } },
    { name: 'pods', labels: { [USE]: 'pod-wp' } },
    { name: 'ghost', labels: { [USE]: 'missing' } },
    { name: 'optout', labels: { [USE]: 'none' } },
  ],
  gateways: [
    snapGateway('waypoint'),
    snapGateway('other-wp'),
    snapGateway('shared', { namespace: 'infra' }),
    snapGateway('pod-wp', { namespace: 'pods', labels: { [FOR]: 'workload' } }),
    snapGateway('all-wp', { namespace: 'pods', labels: { [FOR]: 'all' } }),
    snapGateway('off-wp', { labels: { [FOR]: 'none' } }),
    snapGateway('bad-for', { labels: { [FOR]: 'everything' } }),
    snapGateway('ingress', { gatewayClassName: 'istio' }),
  ],
  pods: [
    snapPod('web-1', { ips: ['10.244.0.10'] }),
    snapPod('web-2', { ips: ['10.244.0.11'], labels: { [USE]: 'other-wp' } }),
    snapPod('app-1', { namespace: 'pods', ips: ['10.244.1.10'] }),
    snapPod('app-2', { namespace: 'pods', ips: ['10.244.1.11'], labels: { [USE]: 'all-wp' } }),
    snapPod('app-3', { namespace: 'pods', ips: ['10.244.1.12'], labels: { [USE]: 'none' } }),
    snapPod('app-4', {
      namespace: 'plain',
      ips: ['10.244.2.10'],
      labels: { [USE]: 'pod-wp', [USE_NS]: 'pods' },
    }),
  ],
  services: [
    snapService('web', { vips: ['10.96.0.10'] }),
    // The waypoint's own Service (rendered with the gateway-name label) in a namespace that uses it.
    snapService('waypoint', {
      vips: ['10.96.0.99'],
      labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' },
    }),
    snapService('web-own', { vips: ['10.96.0.11'], labels: { [USE]: 'other-wp' } }),
    snapService('web-direct', { vips: ['10.96.0.12'], labels: { [USE]: 'none' } }),
    snapService('web-shared', { vips: ['10.96.0.13'], labels: { [USE]: 'shared', [USE_NS]: 'infra' } }),
    snapService('web-shared-no-ns', { vips: ['10.96.0.14'], labels: { [USE]: 'shared' } }),
    snapService('web-pods', { vips: ['10.96.0.15'], labels: { [USE]: 'pod-wp', [USE_NS]: 'pods' } }),
    snapService('web-off', { vips: ['10.96.0.16'], labels: { [USE]: 'off-wp' } }),
    snapService('web-bad-for', { vips: ['10.96.0.17'], labels: { [USE]: 'bad-for' } }),
    snapService('web-ingress', { vips: ['10.96.0.18'], labels: { [USE]: 'ingress' } }),
    snapService('web-empty-label', { vips: ['10.96.0.19'], labels: { [USE]: '' } }),
    snapService('db', { namespace: 'plain', vips: ['10.96.1.10'] }),
    snapService('db-own', {
      namespace: 'plain',
      vips: ['10.96.1.11'],
      labels: { [USE]: 'shared', [USE_NS]: 'infra' },
    }),
    snapService('api', { namespace: 'tenant', vips: ['10.96.2.10'] }),
    snapService('api-own-ns', {
      namespace: 'tenant',
      vips: ['10.96.2.11'],
      labels: { [USE]: 'other-wp', [USE_NS]: 'shop' },
    }),
    snapService('app', { namespace: 'pods', vips: ['10.96.3.10'] }),
    snapService('app-all', { namespace: 'pods', vips: ['10.96.3.11'], labels: { [USE]: 'all-wp' } }),
    snapService('lost', { namespace: 'ghost', vips: ['10.96.4.10'] }),
    snapService('quiet', { namespace: 'optout', vips: ['10.96.5.10'] }),
    snapService('quiet-own', {
      namespace: 'optout',
      vips: ['10.96.5.11'],
      labels: { [USE]: 'shared', [USE_NS]: 'infra' },
    }),
  ],
});

const view = viewOf(cluster, 'cluster.local');
const ref = (w: { namespace: string; name: string } | undefined): string | undefined =>
  w === undefined ? undefined : `${w.namespace}/${w.name}`;
const serviceWaypoint = (v: MeshView, ns: string, name: string) =>
  ref(v.services.find((s) => s.namespace === ns && s.name === name)!.waypoint);
const podWaypoint = (v: MeshView, ns: string, name: string) =>
  ref(v.workloads.find((w) => w.namespace === ns && w.name === name)!.waypoint);

describe('which waypoint traffic to a Service goes through', () => {
  test.each<{ what: string; service: string; namespace?: string; waypoint: string | undefined }>([
    { what: 'its namespace uses a waypoint', service: 'web', waypoint: 'shop/waypoint' },
    {
      what: "the waypoint's own Service never goes through a waypoint (it would send the waypoint its own traffic)",
      service: 'waypoint',
      waypoint: undefined,
    },
    { what: "its own label wins over its namespace's", service: 'web-own', waypoint: 'shop/other-wp' },
    {
      what: '`none` on the Service opts it out of its namespace waypoint',
      service: 'web-direct',
      waypoint: undefined,
    },
    {
      what: 'a waypoint in another namespace, named with use-waypoint-namespace',
      service: 'web-shared',
      waypoint: 'infra/shared',
    },
    {
      what: 'without use-waypoint-namespace the waypoint is looked for in the Service namespace (missing: none)',
      service: 'web-shared-no-ns',
      waypoint: undefined,
    },
    {
      what: 'a waypoint for workloads only does not take Service traffic',
      service: 'web-pods',
      waypoint: undefined,
    },
    { what: 'a waypoint for no traffic binds nothing', service: 'web-off', waypoint: undefined },
    {
      what: 'a waypoint with an unknown waypoint-for takes nothing',
      service: 'web-bad-for',
      waypoint: undefined,
    },
    { what: 'a Gateway of another class is not a waypoint', service: 'web-ingress', waypoint: undefined },
    {
      what: "an empty label is no label: the namespace's waypoint",
      service: 'web-empty-label',
      waypoint: 'shop/waypoint',
    },
    { what: 'no label anywhere', service: 'db', namespace: 'plain', waypoint: undefined },
    {
      what: 'its own label in a namespace without one',
      service: 'db-own',
      namespace: 'plain',
      waypoint: 'infra/shared',
    },
    {
      what: "its namespace's label with use-waypoint-namespace",
      service: 'api',
      namespace: 'tenant',
      waypoint: 'infra/shared',
    },
    {
      what: "its own label with its own namespace label, over the namespace's",
      service: 'api-own-ns',
      namespace: 'tenant',
      waypoint: 'shop/other-wp',
    },
    {
      what: "its namespace's waypoint takes workload traffic only: not bound",
      service: 'app',
      namespace: 'pods',
      waypoint: undefined,
    },
    {
      what: 'a waypoint for all traffic takes Service traffic',
      service: 'app-all',
      namespace: 'pods',
      waypoint: 'pods/all-wp',
    },
    {
      what: "its namespace's waypoint does not exist: not bound",
      service: 'lost',
      namespace: 'ghost',
      waypoint: undefined,
    },
    {
      what: 'a namespace labelled `none` binds nothing',
      service: 'quiet',
      namespace: 'optout',
      waypoint: undefined,
    },
    {
      what: 'in a namespace labelled `none`, the Service may still ask for one',
      service: 'quiet-own',
      namespace: 'optout',
      waypoint: 'infra/shared',
    },
  ])('$what', ({ service, namespace = 'shop', waypoint }) => {
    expect(serviceWaypoint(view, namespace, service)).toBe(waypoint);
  });
});

describe('which waypoint traffic addressed to a pod goes through', () => {
  test.each<{ what: string; pod: string; namespace: string; waypoint: string | undefined }>([
    {
      what: "its namespace's waypoint takes workload traffic",
      pod: 'app-1',
      namespace: 'pods',
      waypoint: 'pods/pod-wp',
    },
    {
      what: 'its own label, a waypoint for all traffic',
      pod: 'app-2',
      namespace: 'pods',
      waypoint: 'pods/all-wp',
    },
    { what: '`none` on the pod opts it out', pod: 'app-3', namespace: 'pods', waypoint: undefined },
    {
      what: 'a workload waypoint of another namespace',
      pod: 'app-4',
      namespace: 'plain',
      waypoint: 'pods/pod-wp',
    },
    {
      what: "its namespace's waypoint takes Service traffic only: pods are not bound",
      pod: 'web-1',
      namespace: 'shop',
      waypoint: undefined,
    },
    {
      what: 'its own label names a Service waypoint: not bound',
      pod: 'web-2',
      namespace: 'shop',
      waypoint: undefined,
    },
  ])('$what', ({ pod, namespace, waypoint }) => {
    expect(podWaypoint(view, namespace, pod)).toBe(waypoint);
  });
});

describe('view.waypoints', () => {
  test('lists each waypoint Gateway with what it takes, its identity and its Service', () => {
    expect(view.waypoints).toEqual([
      {
        namespace: 'shop',
        name: 'waypoint',
        for: 'service',
        identity: 'spiffe://cluster.local/ns/shop/sa/waypoint',
        service: 'shop/waypoint',
      },
      {
        namespace: 'shop',
        name: 'other-wp',
        for: 'service',
        identity: 'spiffe://cluster.local/ns/shop/sa/other-wp',
        service: 'shop/other-wp',
      },
      {
        namespace: 'infra',
        name: 'shared',
        for: 'service',
        identity: 'spiffe://cluster.local/ns/infra/sa/shared',
        service: 'infra/shared',
      },
      {
        namespace: 'pods',
        name: 'pod-wp',
        for: 'workload',
        identity: 'spiffe://cluster.local/ns/pods/sa/pod-wp',
        service: 'pods/pod-wp',
      },
      {
        namespace: 'pods',
        name: 'all-wp',
        for: 'all',
        identity: 'spiffe://cluster.local/ns/pods/sa/all-wp',
        service: 'pods/all-wp',
      },
      {
        namespace: 'shop',
        name: 'off-wp',
        for: 'none',
        identity: 'spiffe://cluster.local/ns/shop/sa/off-wp',
        service: 'shop/off-wp',
      },
      {
        namespace: 'shop',
        name: 'bad-for',
        for: 'none',
        identity: 'spiffe://cluster.local/ns/shop/sa/bad-for',
        service: 'shop/bad-for',
      },
    ]);
  });

  test("the identity is in the view's trust domain", () => {
    const other = viewOf(snapshot({ gateways: [snapGateway('waypoint')] }), 'mesh.example.org');
    expect(other.waypoints.map((w) => w.identity)).toEqual(['spiffe://mesh.example.org/ns/shop/sa/waypoint']);
  });

  test('without waypoint Gateways nothing is bound, whatever the labels ask', () => {
    const bare = viewOf(
      snapshot({
        namespaces: [{ name: 'shop', labels: { [USE]: 'waypoint' } }],
        pods: [snapPod('web-1', { labels: { [USE]: 'waypoint' } })],
        services: [snapService('web', { labels: { [USE]: 'waypoint' } })],
      }),
      'cluster.local',
    );
    expect(bare.waypoints).toEqual([]);
    expect(bare.services.map((s) => s.waypoint)).toEqual([undefined]);
    expect(bare.workloads.map((w) => w.waypoint)).toEqual([undefined]);
  });
});
