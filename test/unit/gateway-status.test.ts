import { describe, expect, test } from 'vitest';
import {
  CONTROLLER_NAME,
  type Condition,
  formatConditions,
  type GatewayFacts,
  gatewayStatus,
  type KubeCondition,
  ownsParent,
  type RouteFacts,
  rejectedGatewayStatus,
  rejectedRouteStatus,
  routeStatus,
  toKubeConditions,
} from '../../src/gateway-api/status.js';
import type {
  BackendRef,
  Gateway,
  GrpcRoute,
  HttpFilter,
  HttpRoute,
  Listener,
  MeshRoute,
  ParentRef,
} from '../../src/gateway-api/types.js';

/** `Type=Status Reason: message` for each condition: what `kubectl describe` shows, in one line each. */
const show = (cs: readonly Condition[]): string[] =>
  cs.map((c) => `${c.type}=${c.status} ${c.reason}: ${c.message}`);

// ---------------------------------------------------------------------------------------------
// Gateways

const MESH: Listener = { name: 'mesh', port: 15008, protocol: 'HBONE', allowedRoutes: { from: 'Same' } };

function waypoint(over: Partial<Gateway> = {}): Gateway {
  return {
    namespace: 'shop',
    name: 'waypoint',
    labels: {},
    gatewayClassName: 'ambit-waypoint',
    listeners: [MESH],
    addresses: [],
    ...over,
  };
}

const READY: GatewayFacts = { readyReplicas: 1, replicas: 1, address: '10.96.0.20', problems: [] };

describe('gatewayStatus: Accepted and Programmed of a waypoint', () => {
  test.each<[string, Partial<Gateway>, GatewayFacts, string[]]>([
    [
      'a ready waypoint with an address',
      {},
      READY,
      [
        'Accepted=True Accepted: Resource accepted',
        'Programmed=True Programmed: 1/1 waypoint pods ready; address 10.96.0.20',
      ],
    ],
    [
      'no pod ready yet',
      {},
      { ...READY, readyReplicas: 0 },
      ['Accepted=True Accepted: Resource accepted', 'Programmed=False Pending: 0/1 waypoint pods ready'],
    ],
    [
      'no pod ready and no address',
      {},
      { readyReplicas: 0, replicas: 1, problems: [] },
      [
        'Accepted=True Accepted: Resource accepted',
        'Programmed=False Pending: 0/1 waypoint pods ready; Service shop/waypoint has no cluster IP yet',
      ],
    ],
    [
      'a ready pod but no address',
      {},
      { readyReplicas: 2, replicas: 3, problems: [] },
      [
        'Accepted=True Accepted: Resource accepted',
        'Programmed=False AddressNotAssigned: Service shop/waypoint has no cluster IP yet',
      ],
    ],
    [
      'an address the Service did not get',
      { addresses: [{ type: 'IPAddress', value: '10.96.0.50' }] },
      READY,
      [
        'Accepted=True Accepted: Resource accepted',
        "Programmed=False AddressNotUsable: spec.addresses asks for 10.96.0.50 but Service shop/waypoint has 10.96.0.20; a Service's cluster IP cannot change: delete the Service to have it re-created with the new address",
      ],
    ],
    [
      'the address asked for',
      { addresses: [{ type: 'IPAddress', value: '10.96.0.20' }] },
      READY,
      [
        'Accepted=True Accepted: Resource accepted',
        'Programmed=True Programmed: 1/1 waypoint pods ready; address 10.96.0.20',
      ],
    ],
    [
      'render problems: still accepted, and said',
      {},
      {
        ...READY,
        problems: [
          'annotation ambit.dev/replicas="x" is not a whole number from 1 to 100; 1 replica is used',
        ],
      },
      [
        'Accepted=True Accepted: Resource accepted; annotation ambit.dev/replicas="x" is not a whole number from 1 to 100; 1 replica is used',
        'Programmed=True Programmed: 1/1 waypoint pods ready; address 10.96.0.20',
      ],
    ],
    [
      'an extra HTTP listener: accepted, the listener ignored (ListenersNotValid, as the spec allows)',
      { listeners: [MESH, { ...MESH, name: 'http', port: 80, protocol: 'HTTP' }] },
      READY,
      [
        'Accepted=True ListenersNotValid: listener http is ignored: protocol HTTP is not served by a waypoint, which takes only HBONE on port 15008',
        'Programmed=True Programmed: 1/1 waypoint pods ready; address 10.96.0.20',
      ],
    ],
    [
      'HBONE on another port: not accepted',
      { listeners: [{ ...MESH, port: 15009 }] },
      { readyReplicas: 0, replicas: 0, problems: [] },
      [
        'Accepted=False ListenersNotValid: a waypoint needs a listener {name: mesh, port: 15008, protocol: HBONE}; listener mesh: port 15009: a waypoint serves HBONE on port 15008 only',
        'Programmed=False Invalid: the Gateway is not accepted',
      ],
    ],
    [
      'only an HTTP listener: not accepted',
      { listeners: [{ ...MESH, name: 'http', port: 80, protocol: 'HTTP' }] },
      { readyReplicas: 0, replicas: 0, problems: [] },
      [
        'Accepted=False ListenersNotValid: a waypoint needs a listener {name: mesh, port: 15008, protocol: HBONE}; listener http: protocol HTTP is not served by a waypoint, which takes only HBONE on port 15008',
        'Programmed=False Invalid: the Gateway is not accepted',
      ],
    ],
    [
      'an address of type Hostname: not accepted (UnsupportedAddress)',
      { addresses: [{ type: 'Hostname', value: 'wp.example' }] },
      { readyReplicas: 0, replicas: 0, problems: [] },
      [
        "Accepted=False UnsupportedAddress: spec.addresses[0]: type Hostname: a waypoint takes only addresses of type IPAddress (its Service's cluster IP)",
        'Programmed=False Invalid: the Gateway is not accepted',
      ],
    ],
    [
      'a name that cannot name a Service: not accepted, the render problem said once',
      { name: '9wp' },
      {
        readyReplicas: 0,
        replicas: 0,
        problems: [
          'Gateway name "9wp" cannot name the waypoint\'s Service (at most 63 lowercase letters, digits and "-", starting with a letter); rename the Gateway',
        ],
      },
      [
        'Accepted=False Invalid: Gateway name "9wp" cannot name the waypoint\'s Service (at most 63 lowercase letters, digits and "-", starting with a letter); rename the Gateway',
        'Programmed=False Invalid: the Gateway is not accepted',
      ],
    ],
  ])('%s', (_, over, facts, want) => {
    expect(show(gatewayStatus(waypoint(over), facts).conditions)).toEqual(want);
  });

  test('the address is the Service VIP, once there is one', () => {
    expect(gatewayStatus(waypoint(), READY).addresses).toEqual([{ type: 'IPAddress', value: '10.96.0.20' }]);
    expect(gatewayStatus(waypoint(), { ...READY, address: undefined }).addresses).toEqual([]);
  });
});

describe('gatewayStatus: listeners', () => {
  test('the mesh listener: accepted, programmed with the Gateway, and no route attaches to it', () => {
    const [mesh] = gatewayStatus(waypoint(), READY).listeners;
    expect(mesh).toEqual({
      name: 'mesh',
      // Routes attach to the Services a waypoint serves, not to its listener (as istiod reports it).
      supportedKinds: [],
      attachedRoutes: 0,
      conditions: [
        { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Listener accepted' },
        { type: 'Programmed', status: 'True', reason: 'Programmed', message: 'Listener programmed' },
        { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'No references' },
      ],
    });
  });

  test.each<[string, Listener, string[]]>([
    [
      'HTTP',
      { ...MESH, name: 'http', port: 80, protocol: 'HTTP' },
      [
        'Accepted=False UnsupportedProtocol: protocol HTTP is not served by a waypoint, which takes only HBONE on port 15008',
        'Programmed=False Invalid: protocol HTTP is not served by a waypoint, which takes only HBONE on port 15008',
        'ResolvedRefs=True ResolvedRefs: No references',
      ],
    ],
    [
      'HBONE on 15009',
      { ...MESH, name: 'alt', port: 15009 },
      [
        'Accepted=False PortUnavailable: port 15009: a waypoint serves HBONE on port 15008 only',
        'Programmed=False Invalid: port 15009: a waypoint serves HBONE on port 15008 only',
        'ResolvedRefs=True ResolvedRefs: No references',
      ],
    ],
  ])('an ignored %s listener', (_, l, want) => {
    const status = gatewayStatus(waypoint({ listeners: [MESH, l] }), READY);
    expect(status.listeners.map((s) => s.name)).toEqual(['mesh', l.name]);
    expect(show(status.listeners[1]!.conditions)).toEqual(want);
  });

  test('the mesh listener is Pending while the Gateway is', () => {
    const [mesh] = gatewayStatus(waypoint(), { ...READY, readyReplicas: 0 }).listeners;
    expect(show(mesh!.conditions)[1]).toBe('Programmed=False Pending: 0/1 waypoint pods ready');
  });
});

test('rejectedGatewayStatus: a Gateway that could not be read', () => {
  const s = rejectedGatewayStatus(
    'gw.yaml:9 spec.listeners: a waypoint (class ambit-waypoint) needs a listener',
  );
  expect(show(s.conditions)).toEqual([
    'Accepted=False Invalid: gw.yaml:9 spec.listeners: a waypoint (class ambit-waypoint) needs a listener',
    'Programmed=False Invalid: the Gateway is not accepted',
  ]);
  expect(s).toMatchObject({ addresses: [], listeners: [] });
});

// ---------------------------------------------------------------------------------------------
// Routes

const svc = (name: string, port?: number, namespace?: string): ParentRef => ({
  group: '',
  kind: 'Service',
  name,
  ...(namespace === undefined ? {} : { namespace }),
  ...(port === undefined ? {} : { port }),
});

const backend = (name: string, port: number, over: Partial<BackendRef> = {}): BackendRef => ({
  group: '',
  kind: 'Service',
  name,
  port,
  weight: 1,
  filters: [],
  ...over,
});

function http(
  parentRefs: ParentRef[],
  backendRefs: BackendRef[] = [backend('web', 80)],
  o: { namespace?: string; filters?: HttpFilter[]; name?: string } = {},
): MeshRoute {
  const route: HttpRoute = {
    namespace: o.namespace ?? 'shop',
    name: o.name ?? 'r',
    labels: {},
    parentRefs,
    hostnames: [],
    rules: [
      {
        matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] }],
        filters: o.filters ?? [],
        backendRefs,
      },
    ],
  };
  return { kind: 'HTTPRoute', route };
}

function grpc(parentRefs: ParentRef[], name = 'g', namespace = 'shop'): MeshRoute {
  const route: GrpcRoute = {
    namespace,
    name,
    labels: {},
    parentRefs,
    hostnames: [],
    rules: [{ matches: [], filters: [], backendRefs: [{ ...backend('api', 9090), filters: [] }] }],
  };
  return { kind: 'GRPCRoute', route };
}

const SERVICES: Record<string, RouteFacts extends { service(...a: never[]): infer R } ? R : never> = {
  'shop/web': { ports: [{ port: 80, name: 'http' }, 8080] },
  'shop/api': { ports: [{ port: 9090, name: 'grpc' }] },
  'shop/empty': { ports: [] },
  'other/db': { ports: [5432] },
};

const WAYPOINTS: Record<string, ReturnType<RouteFacts['waypointOf']>> = {
  'shop/web': { namespace: 'shop', name: 'waypoint' },
  'shop/api': { namespace: 'shop', name: 'waypoint' },
  'shop/empty': { problem: 'waypoint shop/missing does not exist' },
};

const GATEWAYS: Record<string, Gateway> = {
  'shop/waypoint': waypoint(),
  'shop/ingress': waypoint({ name: 'ingress', gatewayClassName: 'istio' }),
};

function facts(over: Partial<RouteFacts> = {}): RouteFacts {
  return {
    service: (ns, name) => SERVICES[`${ns}/${name}`],
    waypointOf: (ns, name) => WAYPOINTS[`${ns}/${name}`],
    gateway: (ns, name) => GATEWAYS[`${ns}/${name}`],
    ...over,
  };
}

const ALL_RESOLVED = 'ResolvedRefs=True ResolvedRefs: All references resolved';
const SERVED = (service: string) =>
  `ResolvedWaypoints=True ResolvedWaypoints: Service ${service} is served by waypoint shop/waypoint`;

describe('routeStatus: Accepted, for a Service parent', () => {
  test.each<[string, MeshRoute, string[]]>([
    [
      'the Service and its port exist',
      http([svc('web', 80)]),
      [
        'Accepted=True Accepted: attached to Service shop/web port 80 (http)',
        ALL_RESOLVED,
        SERVED('shop/web'),
      ],
    ],
    [
      'every port of the Service',
      http([svc('web')]),
      ['Accepted=True Accepted: attached to Service shop/web', ALL_RESOLVED, SERVED('shop/web')],
    ],
    [
      'the Service does not exist',
      http([svc('nope', 80)]),
      [
        'Accepted=False NoMatchingParent: Service shop/nope does not exist',
        ALL_RESOLVED,
        'ResolvedWaypoints=False NoMatchingParent: Service shop/nope does not exist',
      ],
    ],
    [
      'the Service has no such port',
      http([svc('web', 81)]),
      [
        'Accepted=False NoMatchingParent: Service shop/web has no port 81 (it has 80 (http), 8080)',
        ALL_RESOLVED,
        SERVED('shop/web'),
      ],
    ],
    [
      'sectionName names a port of the Service',
      http([{ ...svc('web'), sectionName: 'http' }]),
      [
        'Accepted=True Accepted: attached to Service shop/web port 80 (http)',
        ALL_RESOLVED,
        SERVED('shop/web'),
      ],
    ],
    [
      'sectionName names no port',
      http([{ ...svc('web'), sectionName: 'admin' }]),
      [
        'Accepted=False NoMatchingParent: Service shop/web has no port named admin (it has 80 (http), 8080)',
        ALL_RESOLVED,
        SERVED('shop/web'),
      ],
    ],
    [
      'a Service with no ports',
      http([svc('empty')]),
      [
        'Accepted=False NoMatchingParent: Service shop/empty has no ports (it has none)',
        ALL_RESOLVED,
        'ResolvedWaypoints=False WaypointNotUsable: waypoint shop/missing does not exist; the route has no effect until a waypoint serves Service shop/empty',
      ],
    ],
    [
      'a consumer route (another namespace) to the Service',
      http([svc('web', 80, 'shop')], [backend('web', 80, { namespace: 'shop' })], { namespace: 'other' }),
      [
        'Accepted=True Accepted: attached to Service shop/web port 80 (http)',
        'ResolvedRefs=False RefNotPermitted: spec.rules[0].backendRefs[0]: Service shop/web is in another namespace, and no ReferenceGrant in shop allows HTTPRoutes from other to refer to it',
        SERVED('shop/web'),
      ],
    ],
  ])('%s', (_, route, want) => {
    const { parents } = routeStatus(route, facts());
    expect(parents).toHaveLength(1);
    expect(parents[0]!.controllerName).toBe(CONTROLLER_NAME);
    expect(parents[0]!.parentRef).toEqual(route.route.parentRefs[0]);
    expect(show(parents[0]!.conditions)).toEqual(want);
  });
});

describe('routeStatus: ResolvedWaypoints (no waypoint: still accepted, and said why it has no effect)', () => {
  test.each<[string, ReturnType<RouteFacts['waypointOf']>, string]>([
    ['served by a waypoint', { namespace: 'shop', name: 'waypoint' }, SERVED('shop/web')],
    [
      'no use-waypoint label',
      undefined,
      'ResolvedWaypoints=False MissingUseWaypointLabel: no waypoint serves Service shop/web (label ambit.dev/use-waypoint on the Service or its namespace); the route has no effect until one does',
    ],
    [
      'the waypoint asked for takes workload traffic only',
      { problem: 'waypoint shop/pods takes workload traffic only, not Service traffic' },
      'ResolvedWaypoints=False WaypointNotUsable: waypoint shop/pods takes workload traffic only, not Service traffic; the route has no effect until a waypoint serves Service shop/web',
    ],
  ])('%s', (_, bound, want) => {
    const [p] = routeStatus(http([svc('web', 80)]), facts({ waypointOf: () => bound })).parents;
    expect(show(p!.conditions)).toEqual([
      'Accepted=True Accepted: attached to Service shop/web port 80 (http)',
      ALL_RESOLVED,
      want,
    ]);
  });
});

describe('routeStatus: ResolvedRefs (a bad backend never un-accepts the route)', () => {
  const mirror = (name: string, port: number, namespace?: string): HttpFilter => ({
    type: 'RequestMirror',
    mirror: {
      backendRef: {
        group: '',
        kind: 'Service',
        name,
        port,
        ...(namespace === undefined ? {} : { namespace }),
      },
      fraction: 1,
    },
  });
  test.each<[string, BackendRef[], HttpFilter[], Partial<RouteFacts>, string]>([
    ['all resolve', [backend('web', 80), backend('web', 8080, { weight: 9 })], [], {}, ALL_RESOLVED],
    [
      'a Service that does not exist (requests for it get 500)',
      [backend('web', 80), backend('gone', 80)],
      [],
      {},
      'ResolvedRefs=False BackendNotFound: spec.rules[0].backendRefs[1]: Service shop/gone does not exist',
    ],
    [
      'a missing Service at weight 0 is reported too',
      [backend('web', 80), backend('gone', 80, { weight: 0 })],
      [],
      {},
      'ResolvedRefs=False BackendNotFound: spec.rules[0].backendRefs[1]: Service shop/gone does not exist (weight 0: it gets no traffic)',
    ],
    [
      'a port the Service does not have',
      [backend('web', 9999)],
      [],
      {},
      'ResolvedRefs=False BackendNotFound: spec.rules[0].backendRefs[0]: Service shop/web has no port 9999 (it has 80 (http), 8080)',
    ],
    [
      'another namespace without a ReferenceGrant',
      [backend('db', 5432, { namespace: 'other' })],
      [],
      {},
      'ResolvedRefs=False RefNotPermitted: spec.rules[0].backendRefs[0]: Service other/db is in another namespace, and no ReferenceGrant in other allows HTTPRoutes from shop to refer to it',
    ],
    [
      'another namespace that a ReferenceGrant allows',
      [backend('db', 5432, { namespace: 'other' })],
      [],
      {
        referenceAllowed: (r) =>
          r.kind === 'HTTPRoute' && r.from === 'shop' && r.to === 'other' && r.name === 'db',
      },
      ALL_RESOLVED,
    ],
    [
      'a kind that is not a Service',
      [backend('web', 80), backend('bucket', 80, { group: 'storage.example.com', kind: 'Bucket' })],
      [],
      {},
      'ResolvedRefs=False InvalidKind: spec.rules[0].backendRefs[1]: kind Bucket.storage.example.com is not supported; a backend is a Service',
    ],
    [
      'a core kind that is not a Service',
      [backend('cfg', 80, { kind: 'ConfigMap' })],
      [],
      {},
      'ResolvedRefs=False InvalidKind: spec.rules[0].backendRefs[0]: kind ConfigMap is not supported; a backend is a Service',
    ],
    [
      'a mirror of the rule',
      [backend('web', 80)],
      [mirror('shadow', 80)],
      {},
      'ResolvedRefs=False BackendNotFound: spec.rules[0].filters[0].requestMirror.backendRef: Service shop/shadow does not exist',
    ],
    [
      'a mirror of a backendRef',
      [backend('web', 80, { filters: [mirror('db', 5432, 'other')] })],
      [],
      {},
      'ResolvedRefs=False RefNotPermitted: spec.rules[0].backendRefs[0].filters[0].requestMirror.backendRef: Service other/db is in another namespace, and no ReferenceGrant in other allows HTTPRoutes from shop to refer to it',
    ],
    [
      'several: the first reason, every message',
      [backend('gone', 80), backend('bucket', 80, { group: 'x.io', kind: 'Bucket' })],
      [],
      {},
      'ResolvedRefs=False BackendNotFound: spec.rules[0].backendRefs[0]: Service shop/gone does not exist; spec.rules[0].backendRefs[1]: kind Bucket.x.io is not supported; a backend is a Service',
    ],
  ])('%s', (_, backendRefs, filters, over, want) => {
    const [p] = routeStatus(http([svc('web', 80)], backendRefs, { filters }), facts(over)).parents;
    expect(show(p!.conditions)).toEqual([
      'Accepted=True Accepted: attached to Service shop/web port 80 (http)',
      want,
      SERVED('shop/web'),
    ]);
  });

  test('a GRPCRoute is checked the same way', () => {
    const [p] = routeStatus(
      grpc([svc('api')]),
      facts({ service: (ns, n) => (n === 'api' ? SERVICES[`${ns}/${n}`] : undefined) }),
    ).parents;
    expect(show(p!.conditions)).toEqual([
      'Accepted=True Accepted: attached to Service shop/api',
      ALL_RESOLVED,
      SERVED('shop/api'),
    ]);
  });
});

describe('routeStatus: which parents Ambit reports on', () => {
  test.each<[string, ParentRef, string[] | undefined]>([
    [
      'a waypoint Gateway: not accepted, routes attach to its Services',
      { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' },
      [
        'Accepted=False NotAllowedByListeners: Gateway shop/waypoint is a waypoint: routes attach to the Services it serves (parentRefs: [{group: "", kind: Service, name: <service>}]), not to the waypoint',
        ALL_RESOLVED,
      ],
    ],
    [
      "another class's Gateway: its controller's to report",
      { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'ingress' },
      undefined,
    ],
    [
      'a Gateway that does not exist',
      { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gone' },
      undefined,
    ],
    ['an unknown kind', { group: 'example.com', kind: 'Mesh', name: 'ambit' }, undefined],
  ])('%s', (_, ref, want) => {
    const { parents } = routeStatus(http([ref]), facts());
    if (want === undefined) expect(parents).toEqual([]);
    else expect(parents.map((p) => show(p.conditions))).toEqual([want]);
    expect(ownsParent(ref, 'shop', facts())).toBe(want !== undefined);
  });

  test('one entry per parentRef, in spec order, the same ref once', () => {
    const refs = [svc('web', 8080), svc('api'), svc('web', 8080)];
    const { parents } = routeStatus(http(refs), facts());
    expect(parents.map((p) => p.parentRef)).toEqual([svc('web', 8080), svc('api')]);
  });

  test('without a Gateway lookup, only Service parents are reported', () => {
    const refs: ParentRef[] = [
      { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' },
      svc('web'),
    ];
    const { parents } = routeStatus(http(refs), facts({ gateway: undefined }));
    expect(parents.map((p) => p.parentRef)).toEqual([svc('web')]);
  });
});

describe('routeStatus: GRPCRoute before HTTPRoute on the same Service port (GEP-1294)', () => {
  test.each<[string, ParentRef, MeshRoute[], string]>([
    [
      'a GRPCRoute of the namespace takes every port the HTTPRoute attaches to',
      svc('api'),
      [grpc([svc('api', 9090)])],
      'Accepted=False Conflicted: GRPCRoute shop/g attaches to Service shop/api too, and a GRPCRoute takes precedence over an HTTPRoute on the same port (GEP-1294)',
    ],
    [
      'a GRPCRoute on one of two ports',
      svc('web'),
      [grpc([svc('web', 8080)])],
      'Accepted=True Accepted: attached to Service shop/web; not on port 8080, where GRPCRoute shop/g takes precedence (GEP-1294)',
    ],
    [
      "another namespace's GRPCRoute is another group's (consumer routes)",
      svc('api'),
      [grpc([svc('api', 9090, 'shop')], 'g', 'other')],
      'Accepted=True Accepted: attached to Service shop/api',
    ],
    [
      'a GRPCRoute on another Service',
      svc('api'),
      [grpc([svc('web')])],
      'Accepted=True Accepted: attached to Service shop/api',
    ],
  ])('%s', (_, parent, others, want) => {
    const route = http([parent], [backend('api', 9090)]);
    const [p] = routeStatus(route, facts({ routes: [route, ...others] })).parents;
    expect(show(p!.conditions)[0]).toBe(want);
  });

  test('a GRPCRoute is never shadowed', () => {
    const route = grpc([svc('api')]);
    const [p] = routeStatus(route, facts({ routes: [route, http([svc('api')])] })).parents;
    expect(show(p!.conditions)[0]).toBe('Accepted=True Accepted: attached to Service shop/api');
  });
});

describe('rejectedRouteStatus: a route that could not be read', () => {
  const REASON = 'routes.yaml:12 spec.rules[0].matches[0].path.value: must start with "/"';
  const GW: ParentRef = { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' };

  test('Accepted False UnsupportedValue, with the parse error, on each Service parent', () => {
    const s = rejectedRouteStatus('HTTPRoute', [svc('web', 80), GW, svc('api')], REASON);
    expect(s.parents.map((p) => p.parentRef)).toEqual([svc('web', 80), svc('api')]);
    for (const p of s.parents) {
      expect(p.controllerName).toBe(CONTROLLER_NAME);
      expect(show(p.conditions)).toEqual([`Accepted=False UnsupportedValue: ${REASON}`]);
    }
  });

  test('with `owns`, a waypoint Gateway parent too', () => {
    const f = facts();
    const s = rejectedRouteStatus('GRPCRoute', [svc('web', 80), GW], REASON, (r) => ownsParent(r, 'shop', f));
    expect(s.parents.map((p) => p.parentRef)).toEqual([svc('web', 80), GW]);
  });

  test('an empty reason names the kind', () => {
    const [p] = rejectedRouteStatus('GRPCRoute', [svc('api')], '').parents;
    expect(p!.conditions[0]!.message).toBe('the GRPCRoute could not be read');
  });
});

// ---------------------------------------------------------------------------------------------
// Presentation and the status writer

const c = (type: string, status: Condition['status'], reason: string, message = ''): Condition => ({
  type,
  status,
  reason,
  message,
});

describe('formatConditions', () => {
  test.each<[Condition[], string]>([
    [[], ''],
    [
      [c('Accepted', 'True', 'Accepted', 'Resource accepted'), c('Programmed', 'True', 'Programmed', 'x')],
      'Accepted=True, Programmed=True',
    ],
    [
      [c('Accepted', 'True', 'Accepted'), c('Programmed', 'False', 'Pending', '0/1 waypoint pods ready')],
      'Accepted=True, Programmed=False (Pending: 0/1 waypoint pods ready)',
    ],
    [
      [c('Accepted', 'True', 'ListenersNotValid', 'listener http is ignored')],
      'Accepted=True (ListenersNotValid: listener http is ignored)',
    ],
    [[c('ResolvedRefs', 'Unknown', 'Pending')], 'ResolvedRefs=Unknown (Pending)'],
  ])('%j -> %s', (conditions, want) => {
    expect(formatConditions(conditions)).toBe(want);
  });

  test('a real status reads as one line', () => {
    const s = gatewayStatus(waypoint(), { ...READY, readyReplicas: 0 });
    expect(formatConditions(s.conditions)).toBe(
      'Accepted=True, Programmed=False (Pending: 0/1 waypoint pods ready)',
    );
  });
});

describe('toKubeConditions: merging into the stored conditions', () => {
  const T0 = '2025-01-01T00:00:00Z';
  const T1 = '2025-01-01T00:05:00Z';
  const stored = (x: Condition, time = T0, generation = 1): KubeCondition => ({
    ...x,
    observedGeneration: generation,
    lastTransitionTime: time,
  });
  const O = { generation: 2, now: T1 };

  test('new conditions get the time now and the generation', () => {
    expect(toKubeConditions([c('Accepted', 'True', 'Accepted', 'ok')], [], O)).toEqual([
      stored(c('Accepted', 'True', 'Accepted', 'ok'), T1, 2),
    ]);
  });

  test.each<[string, Condition, string]>([
    [
      'status unchanged (only the message): the transition time is kept',
      c('Programmed', 'False', 'Pending', '1/2 ready'),
      T0,
    ],
    ['status changed: the transition time is now', c('Programmed', 'True', 'Programmed', '2/2 ready'), T1],
  ])('%s', (_, next, time) => {
    const before = [stored(c('Programmed', 'False', 'Pending', '0/2 ready'))];
    expect(toKubeConditions([next], before, O)).toEqual([stored(next, time, 2)]);
  });

  test("another controller's conditions stay in place; Ambit's own that no longer apply go", () => {
    const foreign = stored(c('example.com/Audited', 'True', 'Audited'));
    const before = [
      stored(c('Accepted', 'True', 'Accepted')),
      foreign,
      stored(c('ResolvedWaypoints', 'True', 'ResolvedWaypoints')),
    ];
    const next = [
      c('Accepted', 'False', 'NoMatchingParent', 'gone'),
      c('ResolvedRefs', 'True', 'ResolvedRefs'),
    ];
    expect(toKubeConditions(next, before, O)).toEqual([
      stored(next[0]!, T1, 2),
      foreign,
      stored(next[1]!, T1, 2),
    ]);
  });
});
