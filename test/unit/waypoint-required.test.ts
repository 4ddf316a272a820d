import { describe, expect, test } from 'vitest';
import type { Labels } from '../../src/config/kube-types.js';
import { decideInbound } from '../../src/mesh/inbound.js';
import { MeshIndex } from '../../src/mesh/mesh-index.js';
import {
  decideWaypointRequired,
  type InboundPeer,
  type RequiredWaypoint,
  requiredWaypoints,
} from '../../src/mesh/waypoint-required.js';
import { requiredWaypointOf } from '../../src/mesh/waypoints.js';
import { EMPTY_POLICIES } from '../../src/policy/active.js';
import {
  AMBIENT_NS,
  snapEndpoint,
  snapGateway,
  snapPod,
  snapService,
  snapshot,
  viewOf,
} from './cluster-fixtures.js';

const TD = 'cluster.local';
const WAYPOINT = `spiffe://${TD}/ns/shop/sa/waypoint`;
const OTHER_WP = `spiffe://${TD}/ns/shop/sa/edge`;
const CLIENT = `spiffe://${TD}/ns/shop/sa/client`;

const wp: RequiredWaypoint = { waypoint: 'shop/waypoint', identity: WAYPOINT, services: ['shop/web'] };
const missing: RequiredWaypoint = { waypoint: 'shop/gone', services: ['shop/web'] };
const edge: RequiredWaypoint = {
  waypoint: 'shop/edge',
  identity: OTHER_WP,
  services: ['shop/admin', 'shop/api'],
};

describe('decideWaypointRequired: only the waypoint (and the node) may reach a pod that requires it', () => {
  test.each<{
    what: string;
    required: RequiredWaypoint[];
    peer: InboundPeer;
    allowed: boolean;
    reason?: string | RegExp;
  }>([
    { what: 'nothing required', required: [], peer: { kind: 'hbone', identity: CLIENT }, allowed: true },
    {
      what: 'from the waypoint',
      required: [wp],
      peer: { kind: 'hbone', identity: WAYPOINT },
      allowed: true,
      reason: 'from waypoint shop/waypoint, which Service shop/web requires (ambit.dev/waypoint-required)',
    },
    {
      what: 'a client dialling the pod directly',
      required: [wp],
      peer: { kind: 'hbone', identity: CLIENT },
      allowed: false,
      reason: `refused: shop/web-1 takes mesh traffic only through waypoint shop/waypoint required by Service shop/web (ambit.dev/waypoint-required), not from ${CLIENT}; send it to the Service instead`,
    },
    {
      what: 'a waypoint that is not the required one',
      required: [wp],
      peer: { kind: 'hbone', identity: OTHER_WP },
      allowed: false,
      reason: /only through waypoint shop\/waypoint .* not from spiffe:\/\/cluster.local\/ns\/shop\/sa\/edge/,
    },
    {
      what: 'two Services, two waypoints: either one',
      required: [edge, wp],
      peer: { kind: 'hbone', identity: OTHER_WP },
      allowed: true,
      reason:
        'from waypoint shop/edge, which Service shop/admin, Service shop/api requires (ambit.dev/waypoint-required)',
    },
    {
      what: 'a required waypoint that does not exist lets nothing in (fail closed)',
      required: [missing],
      peer: { kind: 'hbone', identity: WAYPOINT },
      allowed: false,
      reason: /shop\/gone \(which does not exist, so nothing may reach it\) required by Service shop\/web/,
    },
    {
      what: 'plaintext from outside the mesh',
      required: [wp],
      peer: { kind: 'plaintext', fromNode: false },
      allowed: false,
      reason: /not from plaintext with no identity/,
    },
    {
      what: "plaintext from the node itself (the kubelet's probes)",
      required: [wp],
      peer: { kind: 'plaintext', fromNode: true },
      allowed: true,
      reason: /from the node itself \(health checks\)/,
    },
  ])('$what', ({ required, peer, allowed, reason }) => {
    const d = decideWaypointRequired('shop/web-1', required, peer);
    expect(d.allowed).toBe(allowed);
    if (reason === undefined) expect(d.reason).toBeUndefined();
    else if (typeof reason === 'string') expect(d.reason).toBe(reason);
    else expect(d.reason).toMatch(reason);
  });
});

describe('requiredWaypointOf: the label on the Service or its namespace', () => {
  const use = { 'ambit.dev/use-waypoint': 'waypoint' };
  const req = (v: string) => ({ 'ambit.dev/waypoint-required': v });
  test.each<{ what: string; svc: Labels; ns: Labels | undefined; want?: string }>([
    { what: 'no label', svc: use, ns: {}, want: undefined },
    { what: 'on the Service', svc: { ...use, ...req('true') }, ns: {}, want: 'shop/waypoint' },
    {
      what: 'on the namespace, with its waypoint',
      svc: {},
      ns: { ...use, ...req('true') },
      want: 'shop/waypoint',
    },
    { what: 'the Service opts out of its namespace’s', svc: req('false'), ns: { ...use, ...req('true') } },
    { what: 'a typo counts as true', svc: { ...use, ...req('yes') }, ns: {}, want: 'shop/waypoint' },
    { what: 'required, but no waypoint asked for', svc: req('true'), ns: {}, want: undefined },
    {
      what: 'the Service opts out of the waypoint',
      svc: { 'ambit.dev/use-waypoint': 'none' },
      ns: { ...use, ...req('true') },
    },
    {
      what: 'a waypoint in another namespace',
      svc: { ...use, 'ambit.dev/use-waypoint-namespace': 'infra', ...req('true') },
      ns: {},
      want: 'infra/waypoint',
    },
    {
      what: "the waypoint's own Service never requires itself",
      svc: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' },
      ns: { ...use, ...req('true') },
    },
  ])('$what', ({ svc, ns, want }) => {
    const r = requiredWaypointOf({ namespace: 'shop', labels: svc }, ns);
    expect(r === undefined ? undefined : `${r.namespace}/${r.name}`).toBe(want);
  });

  test('requiredWaypoints groups Services by waypoint, with its identity, sorted', () => {
    const ids: Record<string, string> = { 'shop/waypoint': WAYPOINT };
    expect(
      requiredWaypoints(
        [
          { namespace: 'shop', name: 'web', requiredWaypoint: { namespace: 'shop', name: 'waypoint' } },
          { namespace: 'shop', name: 'free' },
          { namespace: 'shop', name: 'gone', requiredWaypoint: { namespace: 'shop', name: 'gone' } },
          { namespace: 'shop', name: 'api', requiredWaypoint: { namespace: 'shop', name: 'waypoint' } },
        ],
        (ref) => ids[`${ref.namespace}/${ref.name}`],
      ),
    ).toEqual([
      { waypoint: 'shop/gone', services: ['shop/gone'] },
      { waypoint: 'shop/waypoint', identity: WAYPOINT, services: ['shop/api', 'shop/web'] },
    ]);
  });
});

describe('decideInbound with a required waypoint (the node proxy and explain)', () => {
  const mesh = new MeshIndex(
    viewOf(
      snapshot({
        namespaces: [
          {
            name: 'shop',
            labels: {
              ...AMBIENT_NS,
              'ambit.dev/use-waypoint': 'waypoint',
              'ambit.dev/waypoint-required': 'true',
            },
          },
        ],
        nodes: [{ name: 'node-0', ip4: '172.18.0.2' }],
        pods: [
          snapPod('web', { ips: ['10.244.0.5'], serviceAccount: 'web', labels: { app: 'web' } }),
          snapPod('lone', { ips: ['10.244.0.7'], serviceAccount: 'lone', labels: { app: 'lone' } }),
        ],
        services: [snapService('web', { endpoints: [snapEndpoint('web', { ips: ['10.244.0.5'] })] })],
        gateways: [snapGateway('waypoint')],
      }),
      TD,
    ),
  );
  const WEB = `spiffe://${TD}/ns/shop/sa/web`;
  const req = (via: Parameters<typeof decideInbound>[2]['via'], ip = '10.244.0.5', src = '10.244.0.9') =>
    decideInbound(mesh, EMPTY_POLICIES, {
      node: 'node-0',
      via,
      source: { ip: src, port: 40000 },
      target: { ip, port: 8080 },
    });

  test.each<{ what: string; d: ReturnType<typeof decideInbound>; allowed: boolean; reason: RegExp }>([
    {
      what: 'HBONE from the waypoint',
      d: req({ kind: 'hbone', peer: WAYPOINT, serverIdentity: WEB }),
      allowed: true,
      reason: /^allowed: no policy applies$/,
    },
    {
      what: 'HBONE from a client, straight to the pod',
      d: req({ kind: 'hbone', peer: CLIENT, serverIdentity: WEB }),
      allowed: false,
      reason:
        /^refused: shop\/web takes mesh traffic only through waypoint shop\/waypoint required by Service shop\/web/,
    },
    {
      what: 'plaintext from another address',
      d: req({ kind: 'plaintext' }),
      allowed: false,
      reason: /not from plaintext with no identity/,
    },
    {
      what: 'plaintext from the node (kubelet probe)',
      d: req({ kind: 'plaintext' }, '10.244.0.5', '172.18.0.2'),
      allowed: true,
      reason: /^allowed: no policy applies$/,
    },
    {
      what: 'a pod that no Service requiring the waypoint selects is not affected',
      d: req({ kind: 'hbone', peer: CLIENT, serverIdentity: `spiffe://${TD}/ns/shop/sa/lone` }, '10.244.0.7'),
      allowed: true,
      reason: /^allowed: no policy applies$/,
    },
  ])('$what', ({ d, allowed, reason }) => {
    expect(d.allowed).toBe(allowed);
    expect(d.allowed ? d.authz.reason : d.reason).toMatch(reason);
    if (!d.allowed) {
      expect(d.outcome).toBe('denied');
      expect(d.waypoint).toBe(d.reason);
    }
  });

  test('the allowed decision says which waypoint let it in', () => {
    const d = req({ kind: 'hbone', peer: WAYPOINT, serverIdentity: WEB });
    expect(d.allowed && d.waypoint).toMatch(/^from waypoint shop\/waypoint/);
  });
});
