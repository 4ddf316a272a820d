import { describe, expect, test } from 'vitest';
import { RoundRobin } from '../../src/mesh/load-balancer.js';
import { MeshIndex } from '../../src/mesh/mesh-index.js';
import {
  type OutboundRoute,
  type Picker,
  routeOutbound,
  type Target,
  transportFor,
} from '../../src/mesh/route.js';
import { outcomeInfo } from '../../src/telemetry/outcomes.js';

import { snapEndpoint, snapGateway, snapPod, snapService, snapshot, viewOf } from './cluster-fixtures.js';

const index = new MeshIndex(
  viewOf(
    snapshot({
      pods: [
        snapPod('web-a', { ips: ['10.244.0.2', 'fd00:10:244::2'] }),
        snapPod('web-b', { ips: ['10.244.0.3', 'fd00:10:244::3'] }),
        snapPod('web-c', { ips: ['10.244.0.4', 'fd00:10:244::4'] }),
        snapPod('client', { ips: ['10.244.0.9', 'fd00:10:244::9'] }),
      ],
      services: [
        snapService('web', {
          vips: ['10.96.0.10', 'fd00:10:96::a'],
          ports: [
            { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
            { name: 'admin', port: 9000, targetPort: 9901, protocol: 'TCP' },
            { name: 'dns', port: 53, targetPort: 53, protocol: 'UDP' },
          ],
          endpoints: [
            snapEndpoint('web-a', { ready: false, ports: { http: 8080, admin: 9901, dns: 53 } }),
            snapEndpoint('web-b', { ports: { admin: 9901, dns: 53 } }),
            snapEndpoint('web-c', { ports: { http: 3000, admin: 9901, dns: 53 } }),
          ],
        }),
        snapService('plain', {
          vips: ['10.96.0.20'],
          ports: [{ port: 8080, targetPort: 80, protocol: 'TCP' }],
          endpoints: [snapEndpoint('web-b', { ports: { '8080': 80 } })],
        }),
        snapService('down', {
          vips: ['10.96.0.30', 'fd00:10:96::1e'],
          endpoints: [snapEndpoint('web-a', { ready: false, ports: { '80': 8080 } })],
        }),
        snapService('empty', { vips: ['10.96.0.40'] }),
        snapService('ghost', {
          vips: ['10.96.0.50'],
          endpoints: [snapEndpoint('gone', { ports: { '80': 8080 } })],
        }),
      ],
    }),
    'cluster.local',
  ),
);

/** Deterministic: always the first candidate. */
const first: Picker = (_key, candidates) => candidates[0];

/** What a user of the route sees: where the bytes go, or why they do not. */
function outcome(r: OutboundRoute): Record<string, unknown> {
  switch (r.kind) {
    case 'service':
      return { kind: r.kind, service: r.service.name, endpoint: r.endpoint.name, target: r.target };
    case 'workload':
      return { kind: r.kind, workload: r.workload.name, target: r.target };
    case 'passthrough':
      return { kind: r.kind, target: r.target };
    case 'refuse':
      return { kind: r.kind, flag: outcomeInfo(r.outcome).flag, reason: r.reason, service: r.service?.name };
    case 'waypoint':
      return { kind: r.kind, waypoint: r.waypoint.name, pod: r.pod.name, target: r.target };
  }
}

describe('routeOutbound', () => {
  test.each<{ what: string; dst: Target; expected: Record<string, unknown> }>([
    {
      what: 'IPv4 VIP, named target port: first ready endpoint with the port, its IPv4',
      dst: { ip: '10.96.0.10', port: 80 },
      expected: {
        kind: 'service',
        service: 'web',
        endpoint: 'web-c',
        target: { ip: '10.244.0.4', port: 3000 },
      },
    },
    {
      what: 'IPv6 VIP: the endpoint IPv6 address',
      dst: { ip: 'fd00:10:96::a', port: 80 },
      expected: {
        kind: 'service',
        service: 'web',
        endpoint: 'web-c',
        target: { ip: 'fd00:10:244::4', port: 3000 },
      },
    },
    {
      what: 'IPv6 VIP in another spelling',
      dst: { ip: 'FD00:10:96:0:0:0:0:A', port: 80 },
      expected: {
        kind: 'service',
        service: 'web',
        endpoint: 'web-c',
        target: { ip: 'fd00:10:244::4', port: 3000 },
      },
    },
    {
      what: 'IPv4-mapped VIP is IPv4',
      dst: { ip: '::ffff:10.96.0.10', port: 80 },
      expected: {
        kind: 'service',
        service: 'web',
        endpoint: 'web-c',
        target: { ip: '10.244.0.4', port: 3000 },
      },
    },
    {
      what: 'second port of the Service, numbered target port',
      dst: { ip: '10.96.0.10', port: 9000 },
      expected: {
        kind: 'service',
        service: 'web',
        endpoint: 'web-b',
        target: { ip: '10.244.0.3', port: 9901 },
      },
    },
    {
      what: 'unnamed Service port is keyed by its number',
      dst: { ip: '10.96.0.20', port: 8080 },
      expected: {
        kind: 'service',
        service: 'plain',
        endpoint: 'web-b',
        target: { ip: '10.244.0.3', port: 80 },
      },
    },
    {
      what: 'VIP port the Service does not have',
      dst: { ip: '10.96.0.10', port: 443 },
      expected: {
        kind: 'refuse',
        flag: 'NR',
        reason: 'service web.shop.svc.cluster.local has no TCP port 443',
        service: 'web',
      },
    },
    {
      what: 'UDP-only Service port is not a TCP route',
      dst: { ip: '10.96.0.10', port: 53 },
      expected: {
        kind: 'refuse',
        flag: 'NR',
        reason: 'service web.shop.svc.cluster.local has no TCP port 53',
        service: 'web',
      },
    },
    {
      what: 'only not-ready endpoints',
      dst: { ip: '10.96.0.30', port: 80 },
      expected: {
        kind: 'refuse',
        flag: 'UH',
        reason: 'service down.shop.svc.cluster.local has no ready endpoint for port 80',
        service: 'down',
      },
    },
    {
      what: 'only not-ready endpoints, IPv6 VIP',
      dst: { ip: 'fd00:10:96::1e', port: 80 },
      expected: {
        kind: 'refuse',
        flag: 'UH',
        reason: 'service down.shop.svc.cluster.local has no ready endpoint for port 80',
        service: 'down',
      },
    },
    {
      what: 'no endpoints at all',
      dst: { ip: '10.96.0.40', port: 80 },
      expected: {
        kind: 'refuse',
        flag: 'UH',
        reason: 'service empty.shop.svc.cluster.local has no ready endpoint for port 80',
        service: 'empty',
      },
    },
    {
      what: 'endpoints of pods that are not workloads',
      dst: { ip: '10.96.0.50', port: 80 },
      expected: {
        kind: 'refuse',
        flag: 'UH',
        reason: 'service ghost.shop.svc.cluster.local has no ready endpoint for port 80',
        service: 'ghost',
      },
    },
    {
      what: 'pod IPv4 address: that pod, port unchanged',
      dst: { ip: '10.244.0.2', port: 8080 },
      expected: { kind: 'workload', workload: 'web-a', target: { ip: '10.244.0.2', port: 8080 } },
    },
    {
      what: 'pod IPv6 address',
      dst: { ip: 'fd00:10:244::9', port: 5000 },
      expected: { kind: 'workload', workload: 'client', target: { ip: 'fd00:10:244::9', port: 5000 } },
    },
    {
      what: 'unknown IPv4 address: straight through',
      dst: { ip: '93.184.216.34', port: 443 },
      expected: { kind: 'passthrough', target: { ip: '93.184.216.34', port: 443 } },
    },
    {
      what: 'unknown IPv6 address: straight through',
      dst: { ip: '2001:db8::1', port: 443 },
      expected: { kind: 'passthrough', target: { ip: '2001:db8::1', port: 443 } },
    },
    {
      what: 'node address is outside the mesh',
      dst: { ip: '172.18.0.2', port: 10250 },
      expected: { kind: 'passthrough', target: { ip: '172.18.0.2', port: 10250 } },
    },
  ])('$what', ({ dst, expected }) => {
    expect(outcome(routeOutbound(index, dst, first))).toEqual(expected);
  });

  test('the picker sees one key per service port and only the usable endpoints', () => {
    const seen: [string, string[]][] = [];
    const spy: Picker = (key, candidates) => {
      seen.push([key, candidates.map((w) => w.name)]);
      return candidates.at(-1);
    };
    const http = routeOutbound(index, { ip: '10.96.0.10', port: 80 }, spy);
    const admin = routeOutbound(index, { ip: 'fd00:10:96::a', port: 9000 }, spy);
    expect(seen).toEqual([
      ['shop/web:80', ['web-c']],
      ['shop/web:9000', ['web-b', 'web-c']],
    ]);
    expect(outcome(http)).toMatchObject({ endpoint: 'web-c', target: { ip: '10.244.0.4', port: 3000 } });
    expect(outcome(admin)).toMatchObject({ endpoint: 'web-c', target: { ip: 'fd00:10:244::4', port: 9901 } });
  });

  test('a picker that chooses nothing is no healthy upstream', () => {
    const none: Picker = () => undefined;
    expect(outcome(routeOutbound(index, { ip: '10.96.0.10', port: 80 }, none))).toMatchObject({
      kind: 'refuse',
      flag: 'UH',
    });
  });
});

describe('RoundRobin', () => {
  test.each<{ what: string; picks: [string, string[]][]; expected: (string | undefined)[] }>([
    {
      what: 'rotates through the list and wraps',
      picks: [
        ['s', ['a', 'b', 'c']],
        ['s', ['a', 'b', 'c']],
        ['s', ['a', 'b', 'c']],
        ['s', ['a', 'b', 'c']],
      ],
      expected: ['a', 'b', 'c', 'a'],
    },
    {
      what: 'keys have their own counters',
      picks: [
        ['s', ['a', 'b']],
        ['t', ['x', 'y']],
        ['s', ['a', 'b']],
        ['t', ['x', 'y']],
        ['t', ['x', 'y']],
      ],
      expected: ['a', 'x', 'b', 'y', 'x'],
    },
    {
      what: 'a list that shrinks between picks keeps rotating',
      picks: [
        ['s', ['a', 'b', 'c']],
        ['s', ['a', 'b', 'c']],
        ['s', ['a', 'c']],
        ['s', ['a', 'c']],
        ['s', ['a', 'c']],
      ],
      expected: ['a', 'b', 'a', 'c', 'a'],
    },
    {
      what: 'a list that grows between picks reaches the new entry',
      picks: [
        ['s', ['a']],
        ['s', ['a', 'b']],
        ['s', ['a', 'b']],
      ],
      expected: ['a', 'b', 'a'],
    },
    {
      what: 'a single candidate is always picked',
      picks: [
        ['s', ['a']],
        ['s', ['a']],
        ['s', ['a']],
      ],
      expected: ['a', 'a', 'a'],
    },
    {
      what: 'an empty list picks nothing and does not advance',
      picks: [
        ['s', []],
        ['s', ['a', 'b']],
        ['s', []],
        ['s', ['a', 'b']],
      ],
      expected: [undefined, 'a', undefined, 'b'],
    },
  ])('$what', ({ picks, expected }) => {
    const rr = new RoundRobin();
    expect(picks.map(([key, list]) => rr.pick(key, list))).toEqual(expected);
  });
});

describe('routeOutbound through waypoints', () => {
  const ambient = { 'ambit.dev/dataplane-mode': 'ambient' };
  const wpPod = (name: string, gateway: string, namespace: string, ips: string[], ready = true) =>
    snapPod(name, {
      namespace,
      ips,
      ready,
      serviceAccount: gateway,
      labels: { 'gateway.networking.k8s.io/gateway-name': gateway, 'ambit.dev/dataplane-mode': 'none' },
    });
  const wpService = (gateway: string, namespace: string, vip: string, pods: string[], ready = true) =>
    snapService(gateway, {
      namespace,
      vips: [vip],
      ports: [{ name: 'mesh', port: 15008, targetPort: 15008, protocol: 'TCP' }],
      endpoints: pods.map((p) => snapEndpoint(p, { ready, ports: { mesh: 15008 } })),
    });
  const app = (name: string, namespace: string, ips: string[], labels = {}) =>
    snapPod(name, { namespace, ips, labels, serviceAccount: name });
  const svc = (name: string, namespace: string, vips: string[], pod: string, labels = {}) =>
    snapService(name, {
      namespace,
      vips,
      labels,
      ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
      endpoints: [snapEndpoint(pod, { ports: { http: 8080 } })],
    });
  const wi = new MeshIndex(
    viewOf(
      snapshot({
        namespaces: [
          { name: 'shop', labels: { ...ambient, 'ambit.dev/use-waypoint': 'waypoint' } },
          { name: 'all', labels: { ...ambient, 'ambit.dev/use-waypoint': 'every' } },
          { name: 'infra', labels: {} },
          { name: 'plain', labels: ambient },
        ],
        gateways: [
          snapGateway('waypoint'),
          snapGateway('every', { namespace: 'all', labels: { 'ambit.dev/waypoint-for': 'all' } }),
          snapGateway('shared', { namespace: 'infra' }),
          snapGateway('pods-only', { labels: { 'ambit.dev/waypoint-for': 'workload' } }),
          snapGateway('idle', { namespace: 'plain' }),
        ],
        pods: [
          app('web', 'shop', ['10.244.0.10', 'fd00:10:244::10']),
          app('client', 'shop', ['10.244.0.11']),
          app('api', 'all', ['10.244.0.12']),
          app('outsider', 'infra', ['10.244.0.13']),
          app('db', 'plain', ['10.244.0.14']),
          wpPod('waypoint-1', 'waypoint', 'shop', ['10.244.0.20', 'fd00:10:244::20']),
          wpPod('every-1', 'every', 'all', ['10.244.0.21']),
          wpPod('shared-1', 'shared', 'infra', ['10.244.0.22']),
          wpPod('idle-1', 'idle', 'plain', ['10.244.0.23'], false),
        ],
        services: [
          svc('web', 'shop', ['10.96.1.10', 'fd00:10:96::110'], 'web'),
          svc('web-direct', 'shop', ['10.96.1.11'], 'web', { 'ambit.dev/use-waypoint': 'none' }),
          svc('web-shared', 'shop', ['10.96.1.12'], 'web', {
            'ambit.dev/use-waypoint': 'shared',
            'ambit.dev/use-waypoint-namespace': 'infra',
          }),
          svc('web-pods-only', 'shop', ['10.96.1.13'], 'web', { 'ambit.dev/use-waypoint': 'pods-only' }),
          svc('web-missing', 'shop', ['10.96.1.14'], 'web', { 'ambit.dev/use-waypoint': 'nope' }),
          svc('api', 'all', ['10.96.1.20'], 'api'),
          svc('db', 'plain', ['10.96.1.30'], 'db', { 'ambit.dev/use-waypoint': 'idle' }),
          wpService('waypoint', 'shop', '10.96.1.100', ['waypoint-1']),
          wpService('every', 'all', '10.96.1.101', ['every-1']),
          wpService('shared', 'infra', '10.96.1.102', ['shared-1']),
          wpService('idle', 'plain', '10.96.1.103', ['idle-1'], false),
        ],
      }),
      'cluster.local',
    ),
  );
  const pod = (name: string) => wi.view.workloads.find((w) => w.name === name)!;
  const seen = (r: OutboundRoute) =>
    r.kind === 'waypoint'
      ? {
          kind: r.kind,
          waypoint: `${r.waypoint.namespace}/${r.waypoint.name}`,
          pod: r.pod.name,
          target: r.target,
          authority: r.authority,
        }
      : outcome(r);

  test.each<{ what: string; from?: string; dst: Target; expected: Record<string, unknown> }>([
    {
      what: 'a Service in a namespace that uses a waypoint: HBONE to the waypoint pod, asking for the VIP',
      from: 'client',
      dst: { ip: '10.96.1.10', port: 80 },
      expected: {
        kind: 'waypoint',
        waypoint: 'shop/waypoint',
        pod: 'waypoint-1',
        target: { ip: '10.244.0.20', port: 15008 },
        authority: { ip: '10.96.1.10', port: 80 },
      },
    },
    {
      what: "an IPv6 VIP goes to the waypoint pod's IPv6 address",
      from: 'client',
      dst: { ip: 'fd00:10:96::110', port: 80 },
      expected: {
        kind: 'waypoint',
        waypoint: 'shop/waypoint',
        pod: 'waypoint-1',
        target: { ip: 'fd00:10:244::20', port: 15008 },
        authority: { ip: 'fd00:10:96::110', port: 80 },
      },
    },
    {
      what: "a Service's own use-waypoint=none opts it out of its namespace's waypoint",
      from: 'client',
      dst: { ip: '10.96.1.11', port: 80 },
      expected: {
        kind: 'service',
        service: 'web-direct',
        endpoint: 'web',
        target: { ip: '10.244.0.10', port: 8080 },
      },
    },
    {
      what: "a Service's own label wins, and use-waypoint-namespace names another namespace's waypoint",
      from: 'client',
      dst: { ip: '10.96.1.12', port: 80 },
      expected: {
        kind: 'waypoint',
        waypoint: 'infra/shared',
        pod: 'shared-1',
        target: { ip: '10.244.0.22', port: 15008 },
        authority: { ip: '10.96.1.12', port: 80 },
      },
    },
    {
      what: 'a waypoint for workload traffic only does not take Service traffic: direct',
      from: 'client',
      dst: { ip: '10.96.1.13', port: 80 },
      expected: {
        kind: 'service',
        service: 'web-pods-only',
        endpoint: 'web',
        target: { ip: '10.244.0.10', port: 8080 },
      },
    },
    {
      what: 'a waypoint that does not exist binds nothing: direct',
      from: 'client',
      dst: { ip: '10.96.1.14', port: 80 },
      expected: {
        kind: 'service',
        service: 'web-missing',
        endpoint: 'web',
        target: { ip: '10.244.0.10', port: 8080 },
      },
    },
    {
      what: 'a waypoint with no ready pod: refused as no healthy upstream',
      from: 'db',
      dst: { ip: '10.96.1.30', port: 80 },
      expected: { kind: 'refuse', flag: 'UH', reason: 'waypoint plain/idle has no ready pod', service: 'db' },
    },
    {
      what: 'a VIP port the Service lacks is no route, waypoint or not',
      from: 'client',
      dst: { ip: '10.96.1.10', port: 81 },
      expected: {
        kind: 'refuse',
        flag: 'NR',
        reason: 'service web.shop.svc.cluster.local has no TCP port 81',
        service: 'web',
      },
    },
    {
      what: 'a pod address with a Service-only waypoint: straight to the pod',
      from: 'client',
      dst: { ip: '10.244.0.10', port: 8080 },
      expected: { kind: 'workload', workload: 'web', target: { ip: '10.244.0.10', port: 8080 } },
    },
    {
      what: 'a pod address whose namespace uses a waypoint for all traffic: the waypoint, asking for the pod',
      from: 'client',
      dst: { ip: '10.244.0.12', port: 8080 },
      expected: {
        kind: 'waypoint',
        waypoint: 'all/every',
        pod: 'every-1',
        target: { ip: '10.244.0.21', port: 15008 },
        authority: { ip: '10.244.0.12', port: 8080 },
      },
    },
    {
      what: "the waypoint's own connection to its Service is never sent to a waypoint again",
      from: 'waypoint-1',
      dst: { ip: '10.96.1.10', port: 80 },
      expected: {
        kind: 'service',
        service: 'web',
        endpoint: 'web',
        target: { ip: '10.244.0.10', port: 8080 },
      },
    },
    {
      what: 'a pod outside the mesh is not captured, so it never goes through a waypoint',
      from: 'outsider',
      dst: { ip: '10.96.1.10', port: 80 },
      expected: {
        kind: 'service',
        service: 'web',
        endpoint: 'web',
        target: { ip: '10.244.0.10', port: 8080 },
      },
    },
  ])('$what', ({ from, dst, expected }) => {
    expect(seen(routeOutbound(wi, dst, first, from === undefined ? undefined : pod(from)))).toEqual(expected);
  });

  test('HBONE to a waypoint pod goes to its own address and port and must prove the waypoint identity', () => {
    const r = routeOutbound(wi, { ip: '10.96.1.10', port: 80 }, first, pod('client'));
    expect(transportFor(wi, r)).toEqual({
      kind: 'hbone',
      nodeIp: '10.244.0.20',
      port: 15008,
      dstIdentity: 'spiffe://cluster.local/ns/shop/sa/waypoint',
    });
  });
});
