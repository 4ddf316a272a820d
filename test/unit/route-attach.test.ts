import { describe, expect, test } from 'vitest';
import {
  type AttachedRoutes,
  attachedRoutes,
  type RouteTarget,
  routeParentsFor,
} from '../../src/gateway-api/route-attach.js';
import type { GrpcRoute, HttpRoute, MeshRoute, ParentRef } from '../../src/gateway-api/types.js';

const MESH = 'gateway-conformance-mesh';
const CONSUMER = 'gateway-conformance-mesh-consumer';

/** A parentRef to a core Service (the GAMMA attachment); `over` changes group, kind, port... */
const svc = (name: string, over: Partial<ParentRef> = {}): ParentRef => ({
  group: '',
  kind: 'Service',
  name,
  ...over,
});

const body = { labels: {}, hostnames: [] as string[] };

function http(
  namespace: string,
  name: string,
  parentRefs: ParentRef[],
  over: Partial<HttpRoute> = {},
): MeshRoute {
  const route: HttpRoute = {
    namespace,
    name,
    ...body,
    parentRefs,
    rules: [
      {
        matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] }],
        filters: [],
        backendRefs: [],
      },
    ],
    ...over,
  };
  return { kind: 'HTTPRoute', route };
}

function grpc(namespace: string, name: string, parentRefs: ParentRef[]): MeshRoute {
  const route: GrpcRoute = {
    namespace,
    name,
    ...body,
    parentRefs,
    rules: [{ matches: [], filters: [], backendRefs: [] }],
  };
  return { kind: 'GRPCRoute', route };
}

const to = (name: string, port = 80, over: Partial<RouteTarget> = {}): RouteTarget => ({
  namespace: MESH,
  name,
  port,
  ...over,
});

/** What decides the request: which routes (by namespace/name), and whether they are consumer routes. */
function shown(a: AttachedRoutes): { http: string[]; grpc: string[]; consumer: boolean } {
  return {
    http: a.http.map((r) => `${r.namespace}/${r.name}`),
    grpc: a.grpc.map((r) => `${r.namespace}/${r.name}`),
    consumer: a.consumer,
  };
}

const producerRoute = http(MESH, 'producer', [svc('echo')]);
const consumerRoute = http(CONSUMER, 'mesh-echo-add-header', [svc('echo', { namespace: MESH })]);

describe('attachedRoutes: which routes decide a request to a Service port', () => {
  test.each<{
    what: string;
    routes: MeshRoute[];
    target: RouteTarget;
    client?: string;
    expected: { http?: string[]; grpc?: string[]; consumer?: boolean };
  }>([
    {
      what: 'no route names the Service: nothing attached, the request goes through as it is',
      routes: [http(MESH, 'other', [svc('echo-v2')])],
      target: to('echo'),
      client: MESH,
      expected: {},
    },
    {
      what: 'MeshPorts "Explicit port set, send to that port": parentRef port 80 applies on 80',
      routes: [http(MESH, 'mesh-split-v1', [svc('echo-v1', { port: 80 })])],
      target: to('echo-v1', 80),
      client: MESH,
      expected: { http: [`${MESH}/mesh-split-v1`] },
    },
    {
      what: 'MeshPorts "Explicit port, send to an excluded port": not on 8080',
      routes: [http(MESH, 'mesh-split-v1', [svc('echo-v1', { port: 80 })])],
      target: to('echo-v1', 8080),
      client: MESH,
      expected: {},
    },
    {
      what: 'MeshPorts "No port set": applies on port 80',
      routes: [http(MESH, 'mesh-split-v2', [svc('echo-v2')])],
      target: to('echo-v2', 80),
      client: MESH,
      expected: { http: [`${MESH}/mesh-split-v2`] },
    },
    {
      what: 'MeshPorts "No port set": applies on port 8080 too',
      routes: [http(MESH, 'mesh-split-v2', [svc('echo-v2')])],
      target: to('echo-v2', 8080),
      client: MESH,
      expected: { http: [`${MESH}/mesh-split-v2`] },
    },
    {
      what: 'a producer route applies to clients of every namespace',
      routes: [producerRoute],
      target: to('echo'),
      client: 'elsewhere',
      expected: { http: [`${MESH}/producer`] },
    },
    {
      what: 'a producer route applies to a client whose namespace is unknown',
      routes: [producerRoute],
      target: to('echo'),
      expected: { http: [`${MESH}/producer`] },
    },
    {
      what: 'the parentRef namespace defaults to the route namespace: same name elsewhere does not attach',
      routes: [http('other-ns', 'r', [svc('echo')])],
      target: to('echo'),
      client: 'other-ns',
      expected: {},
    },
    {
      what: 'an explicit parentRef namespace equal to the route namespace is a producer route',
      routes: [http(MESH, 'r', [svc('echo', { namespace: MESH })])],
      target: to('echo'),
      client: 'elsewhere',
      expected: { http: [`${MESH}/r`] },
    },
    {
      what: 'a Gateway parent of the same name is not a Service attachment',
      routes: [http(MESH, 'r', [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'echo' }])],
      target: to('echo'),
      client: MESH,
      expected: {},
    },
    {
      what: 'kind Service in another group is not a core Service',
      routes: [http(MESH, 'r', [svc('echo', { group: 'gateway.networking.k8s.io' })])],
      target: to('echo'),
      client: MESH,
      expected: {},
    },
    {
      what: 'hostnames are ignored for Service parents (GEP-1294): a route naming other hosts still applies',
      routes: [http(MESH, 'r', [svc('echo')], { hostnames: ['example.com'] })],
      target: to('echo'),
      client: MESH,
      expected: { http: [`${MESH}/r`] },
    },
    {
      what: 'MeshConsumerRoute: a request from the consumer route namespace gets the consumer route',
      routes: [consumerRoute],
      target: to('echo'),
      client: CONSUMER,
      expected: { http: [`${CONSUMER}/mesh-echo-add-header`], consumer: true },
    },
    {
      what: 'MeshConsumerRoute: a request from another namespace does not',
      routes: [consumerRoute],
      target: to('echo'),
      client: MESH,
      expected: {},
    },
    {
      what: 'consumer routes replace the producer routes for their namespace clients (GEP-1294)',
      routes: [producerRoute, consumerRoute],
      target: to('echo'),
      client: CONSUMER,
      expected: { http: [`${CONSUMER}/mesh-echo-add-header`], consumer: true },
    },
    {
      what: 'clients of other namespaces keep the producer routes beside a consumer route',
      routes: [producerRoute, consumerRoute],
      target: to('echo'),
      client: 'third',
      expected: { http: [`${MESH}/producer`] },
    },
    {
      what: 'a client of unknown namespace gets no consumer route',
      routes: [producerRoute, consumerRoute],
      target: to('echo'),
      expected: { http: [`${MESH}/producer`] },
    },
    {
      what: 'a consumer route for port 80 only leaves the producer routes on 8080',
      routes: [producerRoute, http(CONSUMER, 'c80', [svc('echo', { namespace: MESH, port: 80 })])],
      target: to('echo', 8080),
      client: CONSUMER,
      expected: { http: [`${MESH}/producer`] },
    },
    {
      what: 'several routes of one group all apply (merged by the match table)',
      routes: [http(MESH, 'a', [svc('echo')]), http(MESH, 'b', [svc('echo', { port: 80 })])],
      target: to('echo'),
      client: MESH,
      expected: { http: [`${MESH}/a`, `${MESH}/b`] },
    },
    {
      what: 'a route with two parentRefs selecting the port is listed once',
      routes: [http(MESH, 'r', [svc('echo'), svc('echo', { port: 80 })])],
      target: to('echo'),
      client: MESH,
      expected: { http: [`${MESH}/r`] },
    },
    {
      what: 'a route attached to two Services applies to the second too',
      routes: [http(MESH, 'r', [svc('echo-v1'), svc('echo-v2')])],
      target: to('echo-v2'),
      client: MESH,
      expected: { http: [`${MESH}/r`] },
    },
    {
      what: 'GRPCRoute and HTTPRoute on one Service port: only the GRPCRoute applies (GEP-1294 Route types)',
      routes: [http(MESH, 'h', [svc('echo')]), grpc(MESH, 'g', [svc('echo', { port: 80 })])],
      target: to('echo'),
      client: MESH,
      expected: { grpc: [`${MESH}/g`] },
    },
    {
      what: 'the HTTPRoute keeps the ports the GRPCRoute does not attach to',
      routes: [http(MESH, 'h', [svc('echo')]), grpc(MESH, 'g', [svc('echo', { port: 7070 })])],
      target: to('echo', 80),
      client: MESH,
      expected: { http: [`${MESH}/h`] },
    },
    {
      what: 'a consumer HTTPRoute replaces producer GRPCRoutes for its clients',
      routes: [grpc(MESH, 'g', [svc('echo')]), http(CONSUMER, 'c', [svc('echo', { namespace: MESH })])],
      target: to('echo'),
      client: CONSUMER,
      expected: { http: [`${CONSUMER}/c`], consumer: true },
    },
    {
      what: 'sectionName selects the Service port by name',
      routes: [http(MESH, 'r', [svc('echo', { sectionName: 'http' })])],
      target: to('echo', 80, { portName: 'http' }),
      client: MESH,
      expected: { http: [`${MESH}/r`] },
    },
    {
      what: 'sectionName naming another port does not attach',
      routes: [http(MESH, 'r', [svc('echo', { sectionName: 'grpc' })])],
      target: to('echo', 80, { portName: 'http' }),
      client: MESH,
      expected: {},
    },
    {
      what: 'sectionName never selects an unnamed port',
      routes: [http(MESH, 'r', [svc('echo', { sectionName: 'http' })])],
      target: to('echo', 80),
      client: MESH,
      expected: {},
    },
    {
      what: 'sectionName and port must both match',
      routes: [http(MESH, 'r', [svc('echo', { sectionName: 'http', port: 8080 })])],
      target: to('echo', 80, { portName: 'http' }),
      client: MESH,
      expected: {},
    },
  ])('$what', ({ routes, target, client, expected }) => {
    expect(shown(attachedRoutes(routes, target, client))).toEqual({
      http: expected.http ?? [],
      grpc: expected.grpc ?? [],
      consumer: expected.consumer ?? false,
    });
  });

  test('takes any iterable of routes (a live map of the config)', () => {
    const byKey = new Map([['p', producerRoute]]);
    expect(shown(attachedRoutes(byKey.values(), to('echo'), MESH)).http).toEqual([`${MESH}/producer`]);
  });
});

describe('routeParentsFor: the parentRefs of a route that name a Service (for its status)', () => {
  test.each<{ what: string; parentRefs: ParentRef[]; expected: ParentRef[] }>([
    { what: 'one ref without port', parentRefs: [svc('echo')], expected: [svc('echo')] },
    {
      what: 'refs to different ports are all kept',
      parentRefs: [svc('echo', { port: 80 }), svc('echo', { port: 8080 })],
      expected: [svc('echo', { port: 80 }), svc('echo', { port: 8080 })],
    },
    {
      what: 'other Services, Gateways and other namespaces are left out',
      parentRefs: [
        svc('echo-v2'),
        { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'echo' },
        svc('echo', { namespace: 'elsewhere' }),
        svc('echo', { namespace: MESH }),
      ],
      expected: [svc('echo', { namespace: MESH })],
    },
  ])('$what', ({ parentRefs, expected }) => {
    const r = http(MESH, 'r', parentRefs).route;
    expect(routeParentsFor(r, { namespace: MESH, name: 'echo' })).toEqual(expected);
  });

  test('a consumer route names the Service through its explicit namespace', () => {
    expect(routeParentsFor(consumerRoute.route, { namespace: MESH, name: 'echo' })).toEqual([
      svc('echo', { namespace: MESH }),
    ]);
  });
});
