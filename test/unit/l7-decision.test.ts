import { describe, expect, test } from 'vitest';
import type { ServicePort } from '../../src/config/kube-types.js';
import type {
  BackendRef,
  GrpcFilter,
  GrpcRoute,
  GrpcRouteRule,
  HeaderModifier,
  HttpFilter,
  HttpRoute,
  HttpRouteMatch,
  HttpRouteRule,
  MeshRoute,
  ParentRef,
} from '../../src/gateway-api/types.js';
import {
  compilePortRoutes,
  decideL7,
  type L7Decision,
  type L7Request,
  resolveBackend,
  serviceEndpoints,
} from '../../src/mesh/l7-route.js';
import { MeshIndex } from '../../src/mesh/mesh-index.js';
import type { MeshService } from '../../src/mesh/view.js';
import { HTTP_FAILURES } from '../../src/telemetry/http-outcomes.js';
import { snapEndpoint, snapPod, snapService, snapshot, viewOf } from './cluster-fixtures.js';

/** mulberry32: a small seeded PRNG, so that the statistical tests give the same answer every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const http80: ServicePort = { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' };
const admin9000: ServicePort = { name: 'admin', port: 9000, targetPort: 9000, protocol: 'TCP' };
const grpc9090: ServicePort = {
  name: 'grpc',
  port: 9090,
  targetPort: 9090,
  protocol: 'TCP',
  appProtocol: 'grpc',
};
const dns53: ServicePort = { name: 'dns', port: 53, targetPort: 53, protocol: 'UDP' };

const mesh = new MeshIndex(
  viewOf(
    snapshot({
      namespaces: [
        { name: 'shop', labels: {} },
        { name: 'front', labels: {} },
        { name: 'other', labels: {} },
      ],
      pods: [
        snapPod('web-1', { ips: ['10.244.0.2'] }),
        snapPod('web-2', { ips: ['10.244.0.3'], ready: false }),
        snapPod('web-v1-1', { ips: ['10.244.0.4'] }),
        snapPod('web-v2-1', { ips: ['10.244.0.5'] }),
        snapPod('echo-1', { ips: ['10.244.0.6'] }),
        snapPod('echo-v2-1', { ips: ['10.244.0.7'] }),
        snapPod('web-other-1', { namespace: 'other', ips: ['10.244.0.8'] }),
        snapPod('web-canary-1', { namespace: 'front', ips: ['10.244.0.9'] }),
      ],
      services: [
        snapService('web', {
          vips: ['10.96.0.10'],
          ports: [http80, admin9000, dns53],
          endpoints: [
            snapEndpoint('web-1', { ports: { http: 8080, admin: 9000, dns: 53 } }),
            snapEndpoint('web-2', { ready: false, ports: { http: 8080, admin: 9000 } }),
            snapEndpoint('gone', { ports: { http: 8080 } }),
          ],
        }),
        snapService('web-v1', {
          vips: ['10.96.0.11'],
          ports: [http80],
          endpoints: [snapEndpoint('web-v1-1', { ports: { http: 8081 } })],
        }),
        snapService('web-v2', {
          vips: ['10.96.0.12'],
          ports: [http80],
          endpoints: [snapEndpoint('web-v2-1', { ports: { http: 8082 } })],
        }),
        snapService('echo', {
          vips: ['10.96.0.20'],
          ports: [grpc9090],
          endpoints: [snapEndpoint('echo-1', { ports: { grpc: 9090 } })],
        }),
        snapService('echo-v2', {
          vips: ['10.96.0.21'],
          ports: [grpc9090],
          endpoints: [snapEndpoint('echo-v2-1', { ports: { grpc: 9090 } })],
        }),
        snapService('plain', { vips: ['10.96.0.30'], ports: [http80] }),
        snapService('web-other', { namespace: 'other', vips: ['10.96.1.10'], ports: [http80] }),
        snapService('web-canary', {
          namespace: 'front',
          vips: ['10.96.2.10'],
          ports: [http80],
          endpoints: [snapEndpoint('web-canary-1', { ports: { http: 8080 } })],
        }),
      ],
    }),
    'cluster.local',
  ),
);

const svc = (name: string, namespace = 'shop'): MeshService => mesh.service(namespace, name)!;

// ---- Gateway API values as the parsers make them ----

const parent = (name: string, over: Partial<ParentRef> = {}): ParentRef => ({
  group: '',
  kind: 'Service',
  name,
  ...over,
});

const backend = (name: string, weight = 1, over: Partial<BackendRef> = {}): BackendRef => ({
  group: '',
  kind: 'Service',
  name,
  port: 80,
  weight,
  filters: [],
  ...over,
});

const prefix = (value: string): HttpRouteMatch => ({
  path: { type: 'PathPrefix', value },
  headers: [],
  queryParams: [],
});
const exact = (value: string): HttpRouteMatch => ({
  path: { type: 'Exact', value },
  headers: [],
  queryParams: [],
});

const rule = (
  match: HttpRouteMatch,
  backendRefs: BackendRef[],
  over: Partial<Omit<HttpRouteRule, 'matches' | 'backendRefs'>> = {},
): HttpRouteRule => ({ matches: [match], filters: [], backendRefs, ...over });

const httpRoute = (
  namespace: string,
  name: string,
  parentRefs: ParentRef[],
  rules: HttpRouteRule[],
): MeshRoute => {
  const route: HttpRoute = { namespace, name, labels: {}, hostnames: [], parentRefs, rules };
  return { kind: 'HTTPRoute', route };
};

const grpcRoute = (
  namespace: string,
  name: string,
  parentRefs: ParentRef[],
  rules: GrpcRouteRule[],
): MeshRoute => {
  const route: GrpcRoute = { namespace, name, labels: {}, hostnames: [], parentRefs, rules };
  return { kind: 'GRPCRoute', route };
};

const setHeader = (name: string, value: string): HeaderModifier => ({
  set: [{ name, value }],
  add: [],
  remove: [],
});
const addHeader = (name: string, value: string): HeaderModifier => ({
  set: [],
  add: [{ name, value }],
  remove: [],
});
const removeHeader = (name: string): HeaderModifier => ({ set: [], add: [], remove: [name] });
const requestHeaders = (h: HeaderModifier): HttpFilter & GrpcFilter => ({
  type: 'RequestHeaderModifier',
  headers: h,
});
const responseHeaders = (h: HeaderModifier): HttpFilter & GrpcFilter => ({
  type: 'ResponseHeaderModifier',
  headers: h,
});
const mirror = (name: string, fraction = 1): HttpFilter & GrpcFilter => ({
  type: 'RequestMirror',
  mirror: { backendRef: { group: '', kind: 'Service', name, port: 80 }, fraction },
});

/** The producer routes of shop/web port 80: one rule per behaviour, by path. */
const producer = httpRoute(
  'shop',
  'web-routes',
  [parent('web', { port: 80 })],
  [
    rule(prefix('/split'), [backend('web-v1', 90), backend('web-v2', 10)]),
    rule(exact('/old'), [], {
      filters: [
        {
          type: 'RequestRedirect',
          redirect: { path: { type: 'ReplaceFullPath', value: '/new' }, statusCode: 301 },
        },
        responseHeaders(setHeader('x-moved', 'yes')),
      ],
    }),
    rule(prefix('/missing'), [backend('web-v1', 50), backend('ghost', 50)]),
    rule(prefix('/cross'), [backend('web-other', 1, { namespace: 'other' })]),
    rule(
      prefix('/headers'),
      [
        backend('web-v1', 1, {
          filters: [
            requestHeaders(setHeader('x-backend', 'v1')),
            responseHeaders(addHeader('x-served-by', 'v1')),
          ],
        }),
      ],
      {
        filters: [
          requestHeaders(setHeader('x-rule', 'headers')),
          requestHeaders(removeHeader('x-debug')),
          responseHeaders(addHeader('x-rule', 'headers')),
        ],
      },
    ),
    rule(prefix('/rewrite'), [backend('web-v1')], {
      filters: [{ type: 'URLRewrite', rewrite: { path: { type: 'ReplacePrefixMatch', value: '/v2' } } }],
    }),
    rule(prefix('/mirror'), [backend('web-v1', 1, { filters: [mirror('web-other', 1)] })], {
      filters: [mirror('web-v2', 0.5)],
    }),
    rule(prefix('/slow'), [backend('web-v1')], {
      timeouts: { requestMs: 3000, backendRequestMs: 1000 },
      retry: { codes: [503], attempts: 3, backoffMs: 50 },
    }),
    rule(prefix('/no-deadline'), [backend('web-v1')], { timeouts: { requestMs: 0 } }),
    rule(prefix('/zero'), [backend('web-v1', 0), backend('web-v2', 0)]),
    rule(prefix('/empty'), []),
    rule(prefix('/kind'), [backend('web-v1', 1, { group: 'multicluster.x-k8s.io', kind: 'ServiceImport' })]),
    rule(prefix('/no-port'), [backend('web-v1', 1, { port: 81 })]),
    rule(prefix('/udp'), [backend('web', 1, { port: 53 })]),
    rule(prefix('/named'), [backend('web-v2')], { name: 'named-rule' }),
  ],
);

/** A consumer route of namespace front for shop/web: everything to front's own web-canary. */
const consumer = httpRoute(
  'front',
  'web-from-front',
  [parent('web', { namespace: 'shop', port: 80 })],
  [
    rule(prefix('/'), [backend('web-canary')], {
      filters: [requestHeaders(setHeader('x-consumer', 'front'))],
    }),
  ],
);

/**
 * A consumer route of namespace other: /parent goes to the Service it is attached to (the producer's
 * shop/web, which needs no ReferenceGrant), everything else to another Service of the producer's
 * namespace (a cross-namespace backendRef, refused while ReferenceGrant is not read).
 */
const consumerToProducer = httpRoute(
  'other',
  'web-from-other',
  [parent('web', { namespace: 'shop', port: 80 })],
  [
    rule(prefix('/parent'), [backend('web', 1, { namespace: 'shop' })]),
    rule(prefix('/'), [backend('web-v2', 1, { namespace: 'shop' })]),
  ],
);

/** The GRPCRoute of shop/echo: Ping to echo-v2, every other method of echo.Echo to echo. */
const echoGrpc = grpcRoute(
  'shop',
  'echo-grpc',
  [parent('echo')],
  [
    {
      matches: [{ method: { type: 'Exact', service: 'echo.Echo', method: 'Ping' }, headers: [] }],
      filters: [requestHeaders(setHeader('x-grpc-rule', 'ping'))],
      backendRefs: [{ ...backend('echo-v2', 1, { port: 9090 }), filters: [] }],
    },
    {
      matches: [{ method: { type: 'Exact', service: 'echo.Echo' }, headers: [] }],
      filters: [],
      backendRefs: [{ ...backend('echo', 1, { port: 9090 }), filters: [] }],
    },
  ],
);

const ROUTES: readonly MeshRoute[] = [producer, consumer, echoGrpc];

// ---- requests ----

function req(
  target: string,
  over: { method?: string; headers?: Record<string, string>; grpc?: boolean } = {},
): L7Request {
  const [path = '', q] = target.split('?');
  const query = q === undefined ? [] : [...new URLSearchParams(q)];
  const headers = over.headers ?? {};
  return {
    method: over.method ?? (over.grpc ? 'POST' : 'GET'),
    path,
    query,
    header: (name) => headers[name],
    grpc: over.grpc ?? false,
  };
}

/** What the waypoint does with the request, as its user (and `explain`) sees it. */
function shown(d: L7Decision) {
  const rule = (
    r: { kind: string; namespace: string; name: string; rule: number; ruleName?: string } | undefined,
  ) => (r === undefined ? undefined : `${r.kind}/${r.namespace}/${r.name}#${r.ruleName ?? r.rule}`);
  switch (d.kind) {
    case 'forward':
      return {
        kind: d.kind,
        route: rule(d.route),
        backend: `${d.backend.namespace}/${d.backend.name}:${d.backend.port}`,
        requestHeaders: d.requestHeaders,
        responseHeaders: d.responseHeaders,
        rewrite: d.rewrite,
        mirrors: d.mirrors.map((m) => `${m.backendRef.name}@${m.fraction}`),
        timeouts: d.timeouts,
        retry: { ...d.retry, codes: [...d.retry.codes] },
      };
    case 'redirect':
      return {
        kind: d.kind,
        route: rule(d.route),
        redirect: d.redirect,
        match: d.match,
        responseHeaders: d.responseHeaders,
      };
    case 'refuse':
      return {
        kind: d.kind,
        failure: d.failure,
        status: HTTP_FAILURES[d.failure].status,
        route: rule(d.route),
        reason: d.reason,
      };
  }
}

const DEFAULT_RETRY = { retries: 2, codes: [], resets: false, backoffMs: 25, source: 'default' };
const asIs = (backend: string) => ({
  kind: 'forward',
  route: undefined,
  backend,
  requestHeaders: [],
  responseHeaders: [],
  rewrite: undefined,
  mirrors: [],
  timeouts: {},
  retry: DEFAULT_RETRY,
});
const plainForward = (route: string, backend: string) => ({ ...asIs(backend), route });

/** One decision, the way the waypoint makes it: routes compiled for this Service port and client namespace. */
function decide(
  service: string,
  port: ServicePort,
  request: L7Request,
  clientNamespace: string | undefined = 'shop',
  random: () => number = () => 0,
  routes: readonly MeshRoute[] = ROUTES,
): L7Decision {
  const s = svc(service);
  return decideL7(mesh, compilePortRoutes(routes, s, port, clientNamespace), s, port, request, random);
}

const R = 'HTTPRoute/shop/web-routes';

describe('decideL7: what a waypoint does with one request', () => {
  test.each<{
    what: string;
    service: string;
    port: ServicePort;
    request: L7Request;
    /** The client's namespace: shop unless given; null when it is not known. */
    client?: string | null;
    random?: number;
    routes?: readonly MeshRoute[];
    expected: Record<string, unknown>;
  }>([
    {
      what: 'a Service without routes: the Service itself, default retries, no deadline',
      service: 'plain',
      port: http80,
      request: req('/anything'),
      expected: asIs('shop/plain:80'),
    },
    {
      what: 'a port of a routed Service that no route attaches to: the Service itself',
      service: 'web',
      port: admin9000,
      request: req('/split'),
      expected: asIs('shop/web:9000'),
    },
    {
      what: 'routes attached, no rule matches: 404 no-route',
      service: 'web',
      port: http80,
      request: req('/nothing/here'),
      expected: {
        kind: 'refuse',
        failure: 'no-route',
        status: 404,
        route: undefined,
        reason: 'no HTTPRoute rule matches this request',
      },
    },
    {
      what: 'a redirect rule: the redirect with the match it rewrites against, and its response headers',
      service: 'web',
      port: http80,
      request: req('/old'),
      expected: {
        kind: 'redirect',
        route: `${R}#1`,
        redirect: { path: { type: 'ReplaceFullPath', value: '/new' }, statusCode: 301 },
        match: { type: 'Exact', value: '/old' },
        responseHeaders: [setHeader('x-moved', 'yes')],
      },
    },
    {
      what: 'an Exact redirect match does not take a longer path',
      service: 'web',
      port: http80,
      request: req('/old/page'),
      expected: {
        kind: 'refuse',
        failure: 'no-route',
        status: 404,
        route: undefined,
        reason: 'no HTTPRoute rule matches this request',
      },
    },
    {
      what: 'weighted backends: a low draw takes the first',
      service: 'web',
      port: http80,
      request: req('/split'),
      random: 0.1,
      expected: plainForward(`${R}#0`, 'shop/web-v1:80'),
    },
    {
      what: 'weighted backends: a draw in the last tenth takes the 10% backend',
      service: 'web',
      port: http80,
      request: req('/split/deeper'),
      random: 0.95,
      expected: plainForward(`${R}#0`, 'shop/web-v2:80'),
    },
    {
      what: 'a backend that does not exist: 500 for its share',
      service: 'web',
      port: http80,
      request: req('/missing'),
      random: 0.75,
      expected: {
        kind: 'refuse',
        failure: 'no-backend',
        status: 500,
        route: `${R}#2`,
        reason: 'Service shop/ghost does not exist',
      },
    },
    {
      what: 'the existing backend of the same rule still takes its share',
      service: 'web',
      port: http80,
      request: req('/missing'),
      random: 0.25,
      expected: plainForward(`${R}#2`, 'shop/web-v1:80'),
    },
    {
      what: 'a backend in another namespace is refused (no ReferenceGrant is read)',
      service: 'web',
      port: http80,
      request: req('/cross'),
      expected: {
        kind: 'refuse',
        failure: 'no-backend',
        status: 500,
        route: `${R}#3`,
        reason:
          'backend other/web-other is in another namespace and no ReferenceGrant is read (RefNotPermitted)',
      },
    },
    {
      what: "header modifiers: the rule's, then the chosen backendRef's, each in order",
      service: 'web',
      port: http80,
      request: req('/headers'),
      expected: {
        ...plainForward(`${R}#4`, 'shop/web-v1:80'),
        requestHeaders: [
          setHeader('x-rule', 'headers'),
          removeHeader('x-debug'),
          setHeader('x-backend', 'v1'),
        ],
        responseHeaders: [addHeader('x-rule', 'headers'), addHeader('x-served-by', 'v1')],
      },
    },
    {
      what: 'URLRewrite is carried with the match it rewrites against',
      service: 'web',
      port: http80,
      request: req('/rewrite/a/b'),
      expected: {
        ...plainForward(`${R}#5`, 'shop/web-v1:80'),
        rewrite: {
          rewrite: { path: { type: 'ReplacePrefixMatch', value: '/v2' } },
          match: { type: 'PathPrefix', value: '/rewrite' },
        },
      },
    },
    {
      what: "mirrors: the rule's and the backendRef's, with their fractions",
      service: 'web',
      port: http80,
      request: req('/mirror'),
      expected: { ...plainForward(`${R}#6`, 'shop/web-v1:80'), mirrors: ['web-v2@0.5', 'web-other@1'] },
    },
    {
      what: 'timeouts and retry from the rule',
      service: 'web',
      port: http80,
      request: req('/slow'),
      expected: {
        ...plainForward(`${R}#7`, 'shop/web-v1:80'),
        timeouts: { requestMs: 3000, attemptMs: 1000 },
        retry: { retries: 3, codes: [503], resets: true, backoffMs: 50, source: 'route' },
      },
    },
    {
      what: 'a request timeout of 0s means no deadline',
      service: 'web',
      port: http80,
      request: req('/no-deadline'),
      expected: plainForward(`${R}#8`, 'shop/web-v1:80'),
    },
    {
      what: 'every backend weighted 0: 500',
      service: 'web',
      port: http80,
      request: req('/zero'),
      expected: {
        kind: 'refuse',
        failure: 'no-backend',
        status: 500,
        route: `${R}#9`,
        reason: 'every backend of the matched rule has weight 0',
      },
    },
    {
      what: 'a rule without backendRefs: 500',
      service: 'web',
      port: http80,
      request: req('/empty'),
      expected: {
        kind: 'refuse',
        failure: 'no-backend',
        status: 500,
        route: `${R}#10`,
        reason: 'the matched rule has no backendRefs',
      },
    },
    {
      what: 'a backend that is not a Service: 500',
      service: 'web',
      port: http80,
      request: req('/kind'),
      expected: {
        kind: 'refuse',
        failure: 'no-backend',
        status: 500,
        route: `${R}#11`,
        reason: 'backend kind multicluster.x-k8s.io/ServiceImport is not a Service',
      },
    },
    {
      what: 'a backend port the Service does not have: 500',
      service: 'web',
      port: http80,
      request: req('/no-port'),
      expected: {
        kind: 'refuse',
        failure: 'no-backend',
        status: 500,
        route: `${R}#12`,
        reason: 'Service shop/web-v1 has no TCP port 81',
      },
    },
    {
      what: 'a backend port that is UDP only: 500',
      service: 'web',
      port: http80,
      request: req('/udp'),
      expected: {
        kind: 'refuse',
        failure: 'no-backend',
        status: 500,
        route: `${R}#13`,
        reason: 'Service shop/web has no TCP port 53',
      },
    },
    {
      what: 'a named rule is reported by its name',
      service: 'web',
      port: http80,
      request: req('/named'),
      expected: plainForward(`${R}#named-rule`, 'shop/web-v2:80'),
    },
    {
      what: "a consumer route replaces the producer routes for its namespace's clients",
      service: 'web',
      port: http80,
      request: req('/split'),
      client: 'front',
      random: 0.1,
      expected: {
        ...plainForward('HTTPRoute/front/web-from-front#0', 'front/web-canary:80'),
        requestHeaders: [setHeader('x-consumer', 'front')],
      },
    },
    {
      what: 'the consumer route matches what the producer routes would refuse',
      service: 'web',
      port: http80,
      request: req('/nothing/here'),
      client: 'front',
      expected: {
        ...plainForward('HTTPRoute/front/web-from-front#0', 'front/web-canary:80'),
        requestHeaders: [setHeader('x-consumer', 'front')],
      },
    },
    {
      what: "another namespace's clients keep the producer routes",
      service: 'web',
      port: http80,
      request: req('/split'),
      client: 'other',
      random: 0.1,
      expected: plainForward(`${R}#0`, 'shop/web-v1:80'),
    },
    {
      what: "a consumer route may send its namespace's clients to the producer's Service it is attached to",
      service: 'web',
      port: http80,
      request: req('/parent/x'),
      client: 'other',
      routes: [...ROUTES, consumerToProducer],
      expected: plainForward('HTTPRoute/other/web-from-other#0', 'shop/web:80'),
    },
    {
      what: 'a consumer route sending to another Service of the producer namespace is refused (no ReferenceGrant)',
      service: 'web',
      port: http80,
      request: req('/split'),
      client: 'other',
      routes: [...ROUTES, consumerToProducer],
      expected: {
        kind: 'refuse',
        failure: 'no-backend',
        status: 500,
        route: 'HTTPRoute/other/web-from-other#1',
        reason: 'backend shop/web-v2 is in another namespace and no ReferenceGrant is read (RefNotPermitted)',
      },
    },
    {
      what: 'the consumer route of one namespace does not apply to the clients of the Service namespace',
      service: 'web',
      port: http80,
      request: req('/parent/x'),
      client: 'shop',
      routes: [...ROUTES, consumerToProducer],
      expected: {
        kind: 'refuse',
        failure: 'no-route',
        status: 404,
        route: undefined,
        reason: 'no HTTPRoute rule matches this request',
      },
    },
    {
      what: 'a client of unknown namespace gets the producer routes',
      service: 'web',
      port: http80,
      request: req('/split'),
      client: null,
      random: 0.1,
      expected: plainForward(`${R}#0`, 'shop/web-v1:80'),
    },
    {
      what: 'a gRPC call matched by method: its GRPCRoute rule, default retries, no deadline',
      service: 'echo',
      port: grpc9090,
      request: req('/echo.Echo/Ping', { grpc: true }),
      expected: {
        ...plainForward('GRPCRoute/shop/echo-grpc#0', 'shop/echo-v2:9090'),
        requestHeaders: [setHeader('x-grpc-rule', 'ping')],
      },
    },
    {
      what: 'another method of the same gRPC service: the service-wide rule',
      service: 'echo',
      port: grpc9090,
      request: req('/echo.Echo/Echo', { grpc: true }),
      expected: plainForward('GRPCRoute/shop/echo-grpc#1', 'shop/echo:9090'),
    },
    {
      what: 'a gRPC call no rule matches: no-route',
      service: 'echo',
      port: grpc9090,
      request: req('/other.Service/Ping', { grpc: true }),
      expected: {
        kind: 'refuse',
        failure: 'no-route',
        status: 404,
        route: undefined,
        reason: 'no GRPCRoute rule matches this call',
      },
    },
    {
      what: 'a gRPC call whose path is not /service/method: no-route',
      service: 'echo',
      port: grpc9090,
      request: req('/echo.Echo/Ping/extra', { grpc: true }),
      expected: {
        kind: 'refuse',
        failure: 'no-route',
        status: 404,
        route: undefined,
        reason: 'no GRPCRoute rule matches this call',
      },
    },
    {
      what: 'a plain HTTP request to a port with only GRPCRoutes: no-route',
      service: 'echo',
      port: grpc9090,
      request: req('/echo.Echo/Ping'),
      expected: {
        kind: 'refuse',
        failure: 'no-route',
        status: 404,
        route: undefined,
        reason: 'only GRPCRoutes are attached and this is not a gRPC call',
      },
    },
    {
      what: 'a gRPC call to a port with only HTTPRoutes is routed by them',
      service: 'web',
      port: http80,
      request: req('/split/x', { grpc: true }),
      random: 0.1,
      expected: plainForward(`${R}#0`, 'shop/web-v1:80'),
    },
    {
      what: 'a gRPC call to a Service without routes: the Service itself',
      service: 'echo-v2',
      port: grpc9090,
      request: req('/echo.Echo/Ping', { grpc: true }),
      expected: asIs('shop/echo-v2:9090'),
    },
  ])('$what', ({ service, port, request, client = 'shop', random = 0, routes = ROUTES, expected }) => {
    expect(shown(decide(service, port, request, client ?? undefined, () => random, routes))).toEqual(
      expected,
    );
  });

  /** How `draws` requests spread over the outcomes (a backend, or a refusal's reason). */
  function spread(service: string, path: string, draws: number, seed: number): Record<string, number> {
    const s = svc(service);
    const routes = compilePortRoutes(ROUTES, s, http80, 'shop');
    const random = seeded(seed);
    const out: Record<string, number> = {};
    for (let i = 0; i < draws; i++) {
      const d = decideL7(mesh, routes, s, http80, req(path), random);
      const k = d.kind === 'forward' ? d.backend.name : d.kind === 'refuse' ? `${d.failure}` : d.kind;
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }

  test('a 90/10 split over many requests lands near 90/10', () => {
    const got = spread('web', '/split', 5000, 42);
    expect(Object.keys(got).sort()).toEqual(['web-v1', 'web-v2']);
    expect(got['web-v1']).toBeGreaterThan(4400);
    expect(got['web-v1']).toBeLessThan(4600);
  });

  test('a backend of weight 0 is never picked, and all-zero weights pick nothing', () => {
    const oneZero = httpRoute(
      'shop',
      'zero',
      [parent('web')],
      [rule(prefix('/'), [backend('web-v1', 0), backend('web-v2', 3)])],
    );
    const s = svc('web');
    const routes = compilePortRoutes([oneZero], s, http80, 'shop');
    const random = seeded(3);
    const names = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const d = decideL7(mesh, routes, s, http80, req('/'), random);
      names.add(d.kind === 'forward' ? d.backend.name : d.kind);
    }
    expect([...names]).toEqual(['web-v2']);
    expect(spread('web', '/zero', 500, 4)).toEqual({ 'no-backend': 500 });
  });

  test('a missing backend takes its share of requests to 500 while the other backend keeps its share', () => {
    const got = spread('web', '/missing', 4000, 7);
    expect(Object.keys(got).sort()).toEqual(['no-backend', 'web-v1']);
    expect(got['no-backend']).toBeGreaterThan(1800);
    expect(got['web-v1']).toBeGreaterThan(1800);
  });

  test('a refusal for a bad backend lists every backend of the rule with its problem (for explain)', () => {
    const d = decide('web', http80, req('/missing'), 'shop', () => 0.75);
    expect(
      d.kind === 'refuse' && d.backends?.map((b) => [b.name, b.weight, b.service?.name, b.problem]),
    ).toEqual([
      ['web-v1', 50, 'web-v1', undefined],
      ['ghost', 50, undefined, 'Service shop/ghost does not exist'],
    ]);
  });

  test('a forward lists every backend of the rule with its weight', () => {
    const d = decide('web', http80, req('/split'));
    expect(d.kind === 'forward' && d.backends.map((b) => [b.name, b.weight])).toEqual([
      ['web-v1', 90],
      ['web-v2', 10],
    ]);
  });

  test('GRPCRoutes win over HTTPRoutes on the same port: a gRPC call takes the GRPCRoute, plain HTTP is refused', () => {
    const both = [
      httpRoute(
        'shop',
        'echo-http',
        [parent('echo')],
        [rule(prefix('/'), [backend('echo-v2', 1, { port: 9090 })])],
      ),
      echoGrpc,
    ];
    expect(
      shown(decide('echo', grpc9090, req('/echo.Echo/Echo', { grpc: true }), 'shop', () => 0, both)),
    ).toMatchObject({
      kind: 'forward',
      route: 'GRPCRoute/shop/echo-grpc#1',
    });
    expect(shown(decide('echo', grpc9090, req('/echo.Echo/Echo'), 'shop', () => 0, both))).toMatchObject({
      kind: 'refuse',
      failure: 'no-route',
    });
  });
});

describe('compilePortRoutes: the routes in force for one Service port and client namespace', () => {
  const adminOnly = httpRoute(
    'shop',
    'web-admin',
    [parent('web', { sectionName: 'admin' })],
    [rule(prefix('/'), [backend('web-v1')])],
  );

  test.each<{
    what: string;
    service: string;
    port: ServicePort;
    client: string | undefined;
    routes?: readonly MeshRoute[];
    expected: { names: string[]; consumer: boolean; hasHttp: boolean; hasGrpc: boolean };
  }>([
    {
      what: 'producer routes for the Service namespace',
      service: 'web',
      port: http80,
      client: 'shop',
      expected: { names: [R], consumer: false, hasHttp: true, hasGrpc: false },
    },
    {
      what: 'consumer routes for their own namespace',
      service: 'web',
      port: http80,
      client: 'front',
      expected: { names: ['HTTPRoute/front/web-from-front'], consumer: true, hasHttp: true, hasGrpc: false },
    },
    {
      what: 'producer routes for a third namespace',
      service: 'web',
      port: http80,
      client: 'other',
      expected: { names: [R], consumer: false, hasHttp: true, hasGrpc: false },
    },
    {
      what: 'a port no route names',
      service: 'web',
      port: admin9000,
      client: 'front',
      expected: { names: [], consumer: false, hasHttp: false, hasGrpc: false },
    },
    {
      what: 'a GRPCRoute without a port attaches to every port',
      service: 'echo',
      port: grpc9090,
      client: 'shop',
      expected: { names: ['GRPCRoute/shop/echo-grpc'], consumer: false, hasHttp: false, hasGrpc: true },
    },
    {
      what: 'a Service without routes',
      service: 'plain',
      port: http80,
      client: 'shop',
      expected: { names: [], consumer: false, hasHttp: false, hasGrpc: false },
    },
    {
      what: 'a parentRef with a sectionName attaches to the Service port of that name only',
      service: 'web',
      port: admin9000,
      client: 'shop',
      routes: [adminOnly],
      expected: { names: ['HTTPRoute/shop/web-admin'], consumer: false, hasHttp: true, hasGrpc: false },
    },
    {
      what: 'a sectionName route does not attach to the other ports',
      service: 'web',
      port: http80,
      client: 'shop',
      routes: [adminOnly],
      expected: { names: [], consumer: false, hasHttp: false, hasGrpc: false },
    },
  ])('$what', ({ service, port, client, routes = ROUTES, expected }) => {
    const r = compilePortRoutes(routes, svc(service), port, client);
    expect({ names: r.names, consumer: r.consumer, hasHttp: r.hasHttp, hasGrpc: r.hasGrpc }).toEqual(
      expected,
    );
  });
});

describe('resolveBackend: a backendRef as the mesh resolves it', () => {
  test.each<{
    what: string;
    ref: Parameters<typeof resolveBackend>[2];
    /** The parentRefs of the route (shop's own route unless given). */
    parents?: ParentRef[];
    expected: { service?: string; problem?: string; namespace: string; port: number };
  }>([
    {
      what: 'a Service port of the route namespace',
      ref: backend('web-v1'),
      expected: { service: 'shop/web-v1', namespace: 'shop', port: 80 },
    },
    {
      what: 'the route namespace spelled out',
      ref: backend('web-v1', 1, { namespace: 'shop' }),
      expected: { service: 'shop/web-v1', namespace: 'shop', port: 80 },
    },
    {
      what: 'a Service that does not exist',
      ref: backend('ghost'),
      expected: { problem: 'Service shop/ghost does not exist', namespace: 'shop', port: 80 },
    },
    {
      what: 'another namespace, even where the Service exists',
      ref: backend('web-other', 1, { namespace: 'other' }),
      expected: {
        problem:
          'backend other/web-other is in another namespace and no ReferenceGrant is read (RefNotPermitted)',
        namespace: 'other',
        port: 80,
      },
    },
    {
      what: 'another namespace, when it is the Service the route is attached to',
      ref: backend('web-other', 1, { namespace: 'other' }),
      parents: [parent('web-other', { namespace: 'other', port: 80 })],
      expected: { service: 'other/web-other', namespace: 'other', port: 80 },
    },
    {
      what: 'another namespace, when the route is attached to a Service of that name in another namespace',
      ref: backend('web-other', 1, { namespace: 'other' }),
      parents: [parent('web-other')],
      expected: {
        problem:
          'backend other/web-other is in another namespace and no ReferenceGrant is read (RefNotPermitted)',
        namespace: 'other',
        port: 80,
      },
    },
    {
      what: 'a core kind that is not a Service',
      ref: backend('web-v1', 1, { kind: 'Pod' }),
      expected: { problem: 'backend kind Pod is not a Service', namespace: 'shop', port: 80 },
    },
    {
      what: 'a Service kind of another group',
      ref: backend('web-v1', 1, { group: 'example.com' }),
      expected: { problem: 'backend kind example.com/Service is not a Service', namespace: 'shop', port: 80 },
    },
    {
      what: 'a port the Service does not have',
      ref: backend('web-v1', 1, { port: 8080 }),
      expected: { problem: 'Service shop/web-v1 has no TCP port 8080', namespace: 'shop', port: 8080 },
    },
  ])('$what', ({ ref, parents = [parent('web')], expected }) => {
    const b = resolveBackend(mesh, 'shop', ref, parents);
    expect({
      ...(b.service === undefined ? {} : { service: `${b.service.namespace}/${b.service.name}` }),
      ...(b.problem === undefined ? {} : { problem: b.problem }),
      namespace: b.namespace,
      port: b.port,
    }).toEqual(expected);
  });
});

describe('serviceEndpoints: where a Service port sends requests', () => {
  const uid = (pod: string) => `uid-${pod}`;
  test.each<{
    what: string;
    service: string;
    port: number;
    expected: { workloadUid: string; targetPort: number }[];
  }>([
    {
      what: 'ready endpoints that are workloads, with the target port of that Service port',
      service: 'web',
      port: 80,
      expected: [{ workloadUid: uid('web-1'), targetPort: 8080 }],
    },
    {
      what: 'another port of the same Service: its own target port',
      service: 'web',
      port: 9000,
      expected: [{ workloadUid: uid('web-1'), targetPort: 9000 }],
    },
    { what: 'a UDP port is not served', service: 'web', port: 53, expected: [] },
    { what: 'a port the Service does not have', service: 'web', port: 443, expected: [] },
    {
      what: 'the target port comes from the EndpointSlice',
      service: 'web-v1',
      port: 80,
      expected: [{ workloadUid: uid('web-v1-1'), targetPort: 8081 }],
    },
    { what: 'a Service without endpoints', service: 'plain', port: 80, expected: [] },
  ])('$what', ({ service, port, expected }) => {
    expect(serviceEndpoints(mesh, svc(service), port)).toEqual(expected);
  });
});
