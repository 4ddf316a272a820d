import { describe, expect, test } from 'vitest';
import {
  type GrpcRequestFacts,
  GrpcRouteTable,
  type HttpRequestFacts,
  HttpRouteTable,
  parseGrpcPath,
} from '../../src/gateway-api/route-match.js';
import type {
  GrpcMethodMatch,
  GrpcRoute,
  GrpcRouteMatch,
  GrpcRouteRule,
  HeaderMatch,
  HttpMethod,
  HttpRoute,
  HttpRouteMatch,
  HttpRouteRule,
  PathMatch,
  StringMatch,
} from '../../src/gateway-api/types.js';

const MESH_NS = 'gateway-conformance-mesh';

// ---- factories: routes as the parser gives them, with only what a case is about spelled out ----

const prefix = (value: string): PathMatch => ({ type: 'PathPrefix', value });
const exact = (value: string): PathMatch => ({ type: 'Exact', value });
const regex = (value: string): PathMatch => ({ type: 'RegularExpression', value });
/** A RegularExpression value for a header or query param match (a bare string is Exact). */
const re = (value: string): StringMatch => ({ type: 'RegularExpression', value });

type Values = Readonly<Record<string, string | StringMatch>>;
const stringMatches = (v: Values = {}): HeaderMatch[] =>
  Object.entries(v).map(([name, value]) => ({
    name,
    match: typeof value === 'string' ? { type: 'Exact', value } : value,
  }));

function match(
  path?: PathMatch,
  o: { headers?: Values; query?: Values; method?: HttpMethod } = {},
): HttpRouteMatch {
  return {
    path: path ?? prefix('/'),
    headers: stringMatches(o.headers),
    queryParams: stringMatches(o.query),
    ...(o.method === undefined ? {} : { method: o.method }),
  };
}

/** A rule sending to `backend`; without matches it gets the parser's default (PathPrefix `/`). */
function rule(backend: string, ...matches: HttpRouteMatch[]): HttpRouteRule {
  return {
    matches: matches.length > 0 ? matches : [match()],
    filters: [],
    backendRefs: [{ group: '', kind: 'Service', name: backend, port: 8080, weight: 1, filters: [] }],
  };
}

function route(name: string, rules: HttpRouteRule[], namespace = MESH_NS): HttpRoute {
  return {
    namespace,
    name,
    labels: {},
    parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
    hostnames: [],
    rules,
  };
}

/** A request as the waypoint reads it: `path?query`, headers by any case, a method (GET). */
function req(target: string, headers: Record<string, string> = {}, method = 'GET'): HttpRequestFacts {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? [] : [...new URLSearchParams(target.slice(q + 1))];
  const byName = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method, path, query, header: (name) => byName.get(name) };
}

/** What the client sees: the backend the rule sends to, 404, or the Service untouched. */
function outcome(table: HttpRouteTable, r: HttpRequestFacts): string | number {
  const d = table.match(r);
  if (d.kind === 'none') return 'untouched';
  if (d.kind === 'unmatched') return 404;
  return d.rule.backendRefs[0]!.name;
}

type Row = readonly [request: HttpRequestFacts, expected: string | number];
const label = (r: HttpRequestFacts): string => {
  const hs = ['version', 'color', 'x-version', 'some-other-header']
    .map((h) => [h, r.header(h)] as const)
    .filter(([, v]) => v !== undefined)
    .map(([h, v]) => ` ${h}: ${v}`)
    .join('');
  const qs =
    r.query.length === 0 ? '' : `?${new URLSearchParams(r.query.map(([k, v]): [string, string] => [k, v]))}`;
  return `${r.method} ${r.path}${qs}${hs}`;
};
const rows = (rs: readonly Row[]) => rs.map(([r, expected]) => ({ what: label(r), r, expected }));

// ---- conformance fixtures (conformance/tests/**), as their YAML declares them ----

/** mesh/httproute-matching.yaml */
const meshMatching = HttpRouteTable.compile([
  route('mesh-matching', [
    rule('echo-v1', match(prefix('/')), match(undefined, { headers: { version: 'one' } })),
    rule('echo-v2', match(prefix('/v2')), match(undefined, { headers: { version: 'two' } })),
  ]),
]);

/** mesh/httproute-query-param-matching.yaml */
const meshQueryParams = HttpRouteTable.compile([
  route('mesh-query-param-matching', [
    rule('echo-v1', match(undefined, { query: { animal: 'whale' } })),
    rule('echo-v2', match(undefined, { query: { animal: 'dolphin' } })),
    rule('echo-v1', match(prefix('/path1'), { query: { animal: 'whale' } })),
    rule('echo-v2', match(undefined, { headers: { version: 'one' }, query: { animal: 'whale' } })),
    rule(
      'echo-v1',
      match(prefix('/path3'), { query: { animal: 'shark' } }),
      match(prefix('/path4'), { headers: { version: 'three' }, query: { animal: 'kraken' } }),
    ),
    rule('echo-v1', match(prefix('/path5'))),
    rule('echo-v2', match(undefined, { query: { animal: 'hydra' } })),
  ]),
]);

/** mesh/mesh-split.yaml */
const meshSplit = HttpRouteTable.compile([
  route('mesh-split', [rule('echo-v1', match(exact('/v1'))), rule('echo-v2', match(exact('/v2')))]),
]);

/** httproute-method-matching.yaml */
const methodMatching = HttpRouteTable.compile([
  route('method-matching', [
    rule('v1', match(undefined, { method: 'POST' })),
    rule('v2', match(undefined, { method: 'GET' })),
    rule('v1', match(prefix('/path1'), { method: 'GET' })),
    rule('v2', match(undefined, { headers: { version: 'one' }, method: 'PUT' })),
    rule('v3', match(prefix('/path2'), { headers: { version: 'two' }, method: 'POST' })),
    rule(
      'v1',
      match(prefix('/path3'), { method: 'PATCH' }),
      match(prefix('/path4'), { headers: { version: 'three' }, method: 'DELETE' }),
    ),
    rule('v1', match(prefix('/path5'))),
    rule('v2', match(undefined, { method: 'PATCH' })),
    rule('v3', match(undefined, { headers: { version: 'four' } })),
  ]),
]);

/** httproute-header-matching.yaml */
const headerMatching = HttpRouteTable.compile([
  route('header-matching', [
    rule('v1', match(undefined, { headers: { version: 'one' } })),
    rule('v2', match(undefined, { headers: { version: 'two' } })),
    rule('v1', match(undefined, { headers: { version: 'two', color: 'orange' } })),
    rule(
      'v1',
      match(undefined, { headers: { color: 'blue' } }),
      match(undefined, { headers: { color: 'green' } }),
    ),
    rule(
      'v2',
      match(undefined, { headers: { color: 'red' } }),
      match(undefined, { headers: { color: 'yellow' } }),
    ),
  ]),
]);

/** httproute-exact-path-matching.yaml */
const exactMatching = HttpRouteTable.compile([
  route('exact-matching', [rule('v1', match(exact('/one'))), rule('v2', match(exact('/two')))]),
]);

/** httproute-path-match-order.yaml */
const pathMatchOrder = HttpRouteTable.compile([
  route('path-matching-order', [
    rule('v1', match(exact('/match'))),
    rule('v2', match(exact('/match/exact'))),
    rule('v3', match(exact('/match/exact/one'))),
    rule('v3', match(prefix('/match/'))),
    rule('v1', match(prefix('/match/prefix/'))),
    rule('v2', match(prefix('/match/prefix/one'))),
  ]),
]);

/** httproute-matching-across-routes.yaml (its hostnames play no part in the mesh: GEP-1294). */
const acrossRoutes = HttpRouteTable.compile([
  route('matching-part2', [
    rule('v2', match(prefix('/v2')), match(undefined, { headers: { version: 'two' } })),
  ]),
  route('matching-part1', [
    rule('v1', match(prefix('/')), match(undefined, { headers: { version: 'one' } })),
  ]),
]);

describe('HttpRouteTable: Gateway API conformance cases', () => {
  test.each(
    rows([
      [req('/'), 'echo-v1'],
      [req('/example'), 'echo-v1'],
      [req('/', { Version: 'one' }), 'echo-v1'],
      [req('/v2'), 'echo-v2'],
      [req('/v2/example'), 'echo-v2'],
      [req('/', { Version: 'two' }), 'echo-v2'],
      [req('/v2/'), 'echo-v2'],
      // "Not a path segment prefix so should not match /v2."
      [req('/v2example'), 'echo-v1'],
      [req('/foo/v2/example'), 'echo-v1'],
    ]),
  )('MeshHTTPRouteMatching: $what -> $expected', ({ r, expected }) => {
    expect(outcome(meshMatching, r)).toBe(expected);
  });

  test.each(
    rows([
      [req('/?animal=whale'), 'echo-v1'],
      [req('/?animal=dolphin'), 'echo-v2'],
      [req('/?animal=whale&otherparam=irrelevant'), 'echo-v1'],
      [req('/?animal=dolphin&color=yellow'), 'echo-v2'],
      [req('/?color=blue'), 404],
      [req('/?animal=dog'), 404],
      [req('/?animal=whaledolphin'), 404],
      [req('/'), 404],
      [req('/path1?animal=whale'), 'echo-v1'],
      [req('/?animal=whale', { version: 'one' }), 'echo-v2'],
      [req('/path3?animal=shark'), 'echo-v1'],
      [req('/path4?animal=kraken', { version: 'three' }), 'echo-v1'],
      [req('/?animal=shark'), 404],
      [req('/path4?animal=kraken'), 404],
      // A longer path prefix outranks a query param match.
      [req('/path5?animal=hydra'), 'echo-v1'],
    ]),
  )('MeshHTTPRouteQueryParamMatching: $what -> $expected', ({ r, expected }) => {
    expect(outcome(meshQueryParams, r)).toBe(expected);
  });

  test.each(
    rows([
      [req('/v1'), 'echo-v1'],
      [req('/v2'), 'echo-v2'],
      [req('/v1/'), 404],
      [req('/'), 404],
    ]),
  )('MeshTrafficSplit: $what -> $expected', ({ r, expected }) => {
    expect(outcome(meshSplit, r)).toBe(expected);
  });

  test.each(
    rows([
      [req('/', {}, 'POST'), 'v1'],
      [req('/', {}, 'GET'), 'v2'],
      [req('/', {}, 'HEAD'), 404],
      [req('/path1', {}, 'GET'), 'v1'],
      [req('/', { version: 'one' }, 'PUT'), 'v2'],
      [req('/path2', { version: 'two' }, 'POST'), 'v3'],
      [req('/path3', {}, 'PATCH'), 'v1'],
      [req('/path4', { version: 'three' }, 'DELETE'), 'v1'],
      [req('/', {}, 'PUT'), 404],
      [req('/path4', {}, 'DELETE'), 404],
      // Path outranks method; method outranks headers.
      [req('/path5', {}, 'PATCH'), 'v1'],
      [req('/', { version: 'four' }, 'PATCH'), 'v2'],
    ]),
  )('HTTPRouteMethodMatching: $what -> $expected', ({ r, expected }) => {
    expect(outcome(methodMatching, r)).toBe(expected);
  });

  test.each(
    rows([
      [req('/', { Version: 'one' }), 'v1'],
      [req('/', { Version: 'two' }), 'v2'],
      [req('/', { Version: 'two', Color: 'orange' }), 'v1'],
      // Two one-header matches tie: the first rule wins.
      [req('/', { Version: 'two', Color: 'blue' }), 'v2'],
      [req('/', { Color: 'orange' }), 404],
      [req('/', { 'Some-Other-Header': 'one' }), 404],
      [req('/', { Color: 'blue' }), 'v1'],
      [req('/', { Color: 'green' }), 'v1'],
      [req('/', { Color: 'red' }), 'v2'],
      [req('/', { Color: 'yellow' }), 'v2'],
      [req('/', { Color: 'purple' }), 404],
    ]),
  )('HTTPRouteHeaderMatching: $what -> $expected', ({ r, expected }) => {
    expect(outcome(headerMatching, r)).toBe(expected);
  });

  test.each(
    rows([
      [req('/one'), 'v1'],
      [req('/two'), 'v2'],
      [req('/'), 404],
      [req('/one/example'), 404],
      [req('/two/'), 404],
      [req('/Two'), 404],
    ]),
  )('HTTPRouteExactPathMatching: $what -> $expected', ({ r, expected }) => {
    expect(outcome(exactMatching, r)).toBe(expected);
  });

  test.each(
    rows([
      [req('/match/exact/one'), 'v3'],
      [req('/match/exact'), 'v2'],
      [req('/match'), 'v1'],
      [req('/match/prefix/one/any'), 'v2'],
      [req('/match/prefix/any'), 'v1'],
      [req('/match/any'), 'v3'],
    ]),
  )('HTTPRoutePathMatchOrder: $what -> $expected', ({ r, expected }) => {
    expect(outcome(pathMatchOrder, r)).toBe(expected);
  });

  test.each(
    rows([
      [req('/'), 'v1'],
      [req('/example'), 'v1'],
      [req('/example', { Version: 'one' }), 'v1'],
      [req('/v2'), 'v2'],
      [req('/v2/example'), 'v2'],
      [req('/', { Version: 'two' }), 'v2'],
    ]),
  )('HTTPRouteMatchingAcrossRoutes: $what -> $expected', ({ r, expected }) => {
    expect(outcome(acrossRoutes, r)).toBe(expected);
  });
});

describe('HttpRouteTable: precedence and match semantics', () => {
  test.each<{ what: string; routes: HttpRoute[]; r: HttpRequestFacts; expected: string | number }>([
    {
      what: 'no route attached: the request goes to the Service untouched',
      routes: [],
      r: req('/anything'),
      expected: 'untouched',
    },
    {
      what: 'routes attached but none matches: 404',
      routes: [route('r', [rule('a', match(prefix('/api')))])],
      r: req('/web'),
      expected: 404,
    },
    {
      what: 'Exact outranks a PathPrefix of the same path listed first',
      routes: [route('r', [rule('prefix', match(prefix('/foo'))), rule('exact', match(exact('/foo')))])],
      r: req('/foo'),
      expected: 'exact',
    },
    {
      what: 'Exact outranks a PathPrefix with more header matches',
      routes: [
        route('r', [
          rule('prefix', match(prefix('/foo'), { headers: { a: '1', b: '2' } })),
          rule('exact', match(exact('/foo'))),
        ]),
      ],
      r: req('/foo', { a: '1', b: '2' }),
      expected: 'exact',
    },
    {
      what: 'the longest PathPrefix wins whatever the rule order',
      routes: [
        route('r', [
          rule('short', match(prefix('/a'))),
          rule('long', match(prefix('/a/b/c'))),
          rule('mid', match(prefix('/a/b'))),
        ]),
      ],
      r: req('/a/b/c/d'),
      expected: 'long',
    },
    {
      what: 'PathPrefix with a trailing slash: /foo/ matches /foo',
      routes: [route('r', [rule('foo', match(prefix('/foo/')))])],
      r: req('/foo'),
      expected: 'foo',
    },
    {
      what: 'PathPrefix with a trailing slash: /foo/ matches /foo/bar',
      routes: [route('r', [rule('foo', match(prefix('/foo/')))])],
      r: req('/foo/bar'),
      expected: 'foo',
    },
    {
      what: 'PathPrefix matches whole segments: /foo does not match /foobar',
      routes: [route('r', [rule('foo', match(prefix('/foo')))])],
      r: req('/foobar'),
      expected: 404,
    },
    {
      what: 'PathPrefix /foo/ and /foo are the same length: the first rule wins',
      routes: [route('r', [rule('slash', match(prefix('/foo/'))), rule('bare', match(prefix('/foo')))])],
      r: req('/foo/x'),
      expected: 'slash',
    },
    {
      what: 'paths are case-sensitive',
      routes: [route('r', [rule('foo', match(prefix('/foo')))])],
      r: req('/Foo'),
      expected: 404,
    },
    {
      what: 'a regex path ranks below every PathPrefix, even / (as Istio ranks them)',
      routes: [route('r', [rule('regex', match(regex('/foo/[a-z]+'))), rule('root', match(prefix('/')))])],
      r: req('/foo/bar'),
      expected: 'root',
    },
    {
      what: 'a regex path is used when no Exact or PathPrefix match applies',
      routes: [route('r', [rule('api', match(prefix('/api'))), rule('regex', match(regex('/foo/[a-z]+')))])],
      r: req('/foo/bar'),
      expected: 'regex',
    },
    {
      what: 'a regex path must match the whole path',
      routes: [route('r', [rule('regex', match(regex('/foo')))])],
      r: req('/foo/bar'),
      expected: 404,
    },
    {
      what: 'among regex paths the longer pattern wins',
      routes: [route('r', [rule('short', match(regex('/.*'))), rule('long', match(regex('/items/[0-9]+')))])],
      r: req('/items/42'),
      expected: 'long',
    },
    {
      what: 'header names are case-insensitive',
      routes: [route('r', [rule('v', match(undefined, { headers: { 'x-version': 'one' } }))])],
      r: req('/', { 'X-VERSION': 'one' }),
      expected: 'v',
    },
    {
      what: 'header values are case-sensitive',
      routes: [route('r', [rule('v', match(undefined, { headers: { version: 'one' } }))])],
      r: req('/', { version: 'One' }),
      expected: 404,
    },
    {
      what: 'a header regex matches the whole value',
      routes: [route('r', [rule('v', match(undefined, { headers: { version: re('v[0-9]+') } }))])],
      r: req('/', { version: 'v12' }),
      expected: 'v',
    },
    {
      what: 'a header regex does not match part of the value',
      routes: [route('r', [rule('v', match(undefined, { headers: { version: re('v[0-9]+') } }))])],
      r: req('/', { version: 'xv12' }),
      expected: 404,
    },
    {
      what: 'a header regex that accepts "" still needs the header',
      routes: [route('r', [rule('v', match(undefined, { headers: { version: re('.*') } }))])],
      r: req('/'),
      expected: 404,
    },
    {
      what: 'a repeated header is matched as its values joined with ", "',
      routes: [route('r', [rule('v', match(undefined, { headers: { accept: 'a/b, c/d' } }))])],
      r: req('/', { accept: 'a/b, c/d' }),
      expected: 'v',
    },
    {
      what: 'query param names are case-sensitive',
      routes: [route('r', [rule('q', match(undefined, { query: { animal: 'whale' } }))])],
      r: req('/?Animal=whale'),
      expected: 404,
    },
    {
      what: 'a repeated query param is matched by its first value',
      routes: [
        route('r', [
          rule('whale', match(undefined, { query: { animal: 'whale' } })),
          rule('dolphin', match(undefined, { query: { animal: 'dolphin' } })),
        ]),
      ],
      r: req('/?animal=dolphin&animal=whale'),
      expected: 'dolphin',
    },
    {
      what: 'query param values are compared decoded',
      routes: [route('r', [rule('q', match(undefined, { query: { q: 'a b' } }))])],
      r: req('/?q=a%20b'),
      expected: 'q',
    },
    {
      what: 'a query param regex matches the whole value',
      routes: [route('r', [rule('q', match(undefined, { query: { id: re('[0-9]+') } }))])],
      r: req('/?id=12a'),
      expected: 404,
    },
    {
      what: 'more query param matches outrank fewer',
      routes: [
        route('r', [
          rule('one', match(undefined, { query: { a: '1' } })),
          rule('two', match(undefined, { query: { a: '1', b: '2' } })),
        ]),
      ],
      r: req('/?a=1&b=2'),
      expected: 'two',
    },
    {
      what: 'on a tie across routes, the first by namespace/name wins, whatever the input order',
      routes: [
        route('b-route', [rule('b', match(prefix('/x')))]),
        route('a-route', [rule('a', match(prefix('/x')))]),
      ],
      r: req('/x'),
      expected: 'a',
    },
    {
      what: 'the namespace is compared before the name',
      routes: [
        route('a-route', [rule('in-ns-b', match(prefix('/x')))], 'ns-b'),
        route('z-route', [rule('in-ns-a', match(prefix('/x')))], 'ns-a'),
      ],
      r: req('/x'),
      expected: 'in-ns-a',
    },
    {
      what: 'precedence spans routes: a longer prefix in a later route beats an earlier route',
      routes: [
        route('a-route', [rule('a', match(prefix('/x')))]),
        route('b-route', [rule('b', match(prefix('/x/y')))]),
      ],
      r: req('/x/y'),
      expected: 'b',
    },
  ])('$what', ({ routes, r, expected }) => {
    expect(outcome(HttpRouteTable.compile(routes), r)).toBe(expected);
  });

  test('the decision names the route, the rule and the match that won', () => {
    const winner = match(prefix('/v2'));
    const r = route('mesh-matching', [rule('echo-v1'), rule('echo-v2', match(exact('/v3')), winner)]);
    expect(HttpRouteTable.compile([r]).match(req('/v2/x'))).toEqual({
      kind: 'matched',
      route: r,
      ruleIndex: 1,
      rule: r.rules[1],
      match: winner,
    });
  });
});

// ---- GRPCRoute ----

const method = (
  service?: string,
  name?: string,
  type: GrpcMethodMatch['type'] = 'Exact',
): GrpcMethodMatch => ({
  type,
  ...(service === undefined ? {} : { service }),
  ...(name === undefined ? {} : { method: name }),
});
const gmatch = (m?: GrpcMethodMatch, headers?: Values): GrpcRouteMatch => ({
  ...(m === undefined ? {} : { method: m }),
  headers: stringMatches(headers),
});
function grule(backend: string, ...matches: GrpcRouteMatch[]): GrpcRouteRule {
  return {
    matches,
    filters: [],
    backendRefs: [{ group: '', kind: 'Service', name: backend, port: 7070, weight: 1, filters: [] }],
  };
}
function groute(name: string, rules: GrpcRouteRule[], namespace = MESH_NS): GrpcRoute {
  return {
    namespace,
    name,
    labels: {},
    parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 7070 }],
    hostnames: [],
    rules,
  };
}
function call(path: string, metadata: Record<string, string> = {}): GrpcRequestFacts {
  const p = parseGrpcPath(path);
  if (p === undefined) throw new Error(`${path} is not a gRPC path`);
  const byName = new Map(Object.entries(metadata).map(([k, v]) => [k.toLowerCase(), v]));
  return { ...p, header: (name) => byName.get(name) };
}
function grpcOutcome(table: GrpcRouteTable, c: GrpcRequestFacts): string {
  const d = table.match(c);
  if (d.kind === 'none') return 'untouched';
  if (d.kind === 'unmatched') return 'UNIMPLEMENTED';
  return d.rule.backendRefs[0]!.name;
}

const ECHO = 'gateway_api_conformance.echo_basic.grpcecho.GrpcEcho';

/** grpcroute-exact-method-matching.yaml */
const grpcExact = GrpcRouteTable.compile([
  groute('exact-matching', [
    grule('grpc-infra-backend-v1', gmatch(method(ECHO, 'Echo'))),
    grule('grpc-infra-backend-v2', gmatch(method(ECHO, 'EchoTwo'))),
  ]),
]);

/** grpcroute-header-matching.yaml */
const grpcHeaders = GrpcRouteTable.compile([
  groute('grpc-header-matching', [
    grule('v1', gmatch(undefined, { version: 'one' })),
    grule('v2', gmatch(undefined, { version: 'two' })),
    grule('v1', gmatch(undefined, { version: 'two', color: 'orange' })),
    grule('v1', gmatch(undefined, { color: 'blue' }), gmatch(undefined, { color: 'green' })),
    grule('v2', gmatch(undefined, { color: 'red' }), gmatch(undefined, { color: 'yellow' })),
  ]),
]);

describe('GrpcRouteTable', () => {
  test.each([
    { what: 'Echo', c: call(`/${ECHO}/Echo`), expected: 'grpc-infra-backend-v1' },
    { what: 'EchoTwo', c: call(`/${ECHO}/EchoTwo`), expected: 'grpc-infra-backend-v2' },
    { what: 'EchoThree matches no rule', c: call(`/${ECHO}/EchoThree`), expected: 'UNIMPLEMENTED' },
  ])('GRPCRouteExactMethodMatching: $what -> $expected', ({ c, expected }) => {
    expect(grpcOutcome(grpcExact, c)).toBe(expected);
  });

  test.each<{ md: Record<string, string>; expected: string }>([
    { md: { Version: 'one' }, expected: 'v1' },
    { md: { Version: 'two' }, expected: 'v2' },
    { md: { Version: 'two', Color: 'orange' }, expected: 'v1' },
    { md: { Version: 'two', Color: 'blue' }, expected: 'v2' },
    { md: { Color: 'orange' }, expected: 'UNIMPLEMENTED' },
    { md: { 'Some-Other-Header': 'one' }, expected: 'UNIMPLEMENTED' },
    { md: { Color: 'blue' }, expected: 'v1' },
    { md: { Color: 'green' }, expected: 'v1' },
    { md: { Color: 'red' }, expected: 'v2' },
    { md: { Color: 'yellow' }, expected: 'v2' },
    { md: { Color: 'purple' }, expected: 'UNIMPLEMENTED' },
  ])('GRPCRouteHeaderMatching: $md -> $expected', ({ md, expected }) => {
    expect(grpcOutcome(grpcHeaders, call(`/${ECHO}/Echo`, md))).toBe(expected);
  });

  test.each<{ what: string; routes: GrpcRoute[]; c: GrpcRequestFacts; expected: string }>([
    {
      what: 'no route attached: the call goes to the Service untouched',
      routes: [],
      c: call('/pkg.Svc/Do'),
      expected: 'untouched',
    },
    {
      what: 'a rule without matches takes every call (mesh GRPCRouteWeight)',
      routes: [groute('r', [grule('all')])],
      c: call('/any.Service/Any'),
      expected: 'all',
    },
    {
      what: 'a rule without matches ranks below one that matches the service',
      routes: [groute('r', [grule('all'), grule('svc', gmatch(method('pkg.Svc')))])],
      c: call('/pkg.Svc/Do'),
      expected: 'svc',
    },
    {
      what: 'service and method outrank service alone',
      routes: [
        groute('r', [
          grule('svc', gmatch(method('pkg.Svc'))),
          grule('both', gmatch(method('pkg.Svc', 'Do'))),
        ]),
      ],
      c: call('/pkg.Svc/Do'),
      expected: 'both',
    },
    {
      what: 'a matching service outranks a method alone (characters in the service first)',
      routes: [
        groute('r', [
          grule('method', gmatch(method(undefined, 'Do'))),
          grule('svc', gmatch(method('pkg.Svc'))),
        ]),
      ],
      c: call('/pkg.Svc/Do'),
      expected: 'svc',
    },
    {
      what: 'the method outranks header matches',
      routes: [
        groute('r', [
          grule('headers', gmatch(undefined, { a: '1', b: '2' })),
          grule('method', gmatch(method(undefined, 'Do'))),
        ]),
      ],
      c: call('/pkg.Svc/Do', { a: '1', b: '2' }),
      expected: 'method',
    },
    {
      what: 'with equal service and method, more header matches win',
      routes: [
        groute('r', [
          grule('plain', gmatch(method('pkg.Svc', 'Do'))),
          grule('canary', gmatch(method('pkg.Svc', 'Do'), { canary: 'yes' })),
        ]),
      ],
      c: call('/pkg.Svc/Do', { canary: 'yes' }),
      expected: 'canary',
    },
    {
      what: 'a method alone matches that method of any service',
      routes: [groute('r', [grule('method', gmatch(method(undefined, 'Do')))])],
      c: call('/other.Svc/Do'),
      expected: 'method',
    },
    {
      what: 'service names are case-sensitive',
      routes: [groute('r', [grule('svc', gmatch(method('pkg.Svc')))])],
      c: call('/pkg.svc/Do'),
      expected: 'UNIMPLEMENTED',
    },
    {
      what: 'a regex service matches the whole service name',
      routes: [groute('r', [grule('re', gmatch(method('pkg\\..*', undefined, 'RegularExpression')))])],
      c: call('/pkg.Svc/Do'),
      expected: 're',
    },
    {
      what: 'a regex method does not match part of the method',
      routes: [groute('r', [grule('re', gmatch(method(undefined, 'Get', 'RegularExpression')))])],
      c: call('/pkg.Svc/GetThing'),
      expected: 'UNIMPLEMENTED',
    },
    {
      what: 'an Exact service outranks a longer regex service',
      routes: [
        groute('r', [
          grule('re', gmatch(method('pkg\\.S[a-z]+', undefined, 'RegularExpression'))),
          grule('exact', gmatch(method('pkg.Svc'))),
        ]),
      ],
      c: call('/pkg.Svc/Do'),
      expected: 'exact',
    },
    {
      what: 'a regex service outranks no service at all',
      routes: [
        groute('r', [
          grule('method', gmatch(method(undefined, 'Do'))),
          grule('re', gmatch(method('pkg\\..*', undefined, 'RegularExpression'))),
        ]),
      ],
      c: call('/pkg.Svc/Do'),
      expected: 're',
    },
    {
      what: 'on a tie across routes, the first by namespace/name wins',
      routes: [groute('b', [grule('from-b')]), groute('a', [grule('from-a')])],
      c: call('/pkg.Svc/Do'),
      expected: 'from-a',
    },
  ])('$what', ({ routes, c, expected }) => {
    expect(grpcOutcome(GrpcRouteTable.compile(routes), c)).toBe(expected);
  });

  test('a rule without matches reports a match of everything', () => {
    const r = groute('r', [grule('all')]);
    const d = GrpcRouteTable.compile([r]).match(call('/a.B/C'));
    expect(d).toEqual({ kind: 'matched', route: r, ruleIndex: 0, rule: r.rules[0], match: { headers: [] } });
  });
});

describe('parseGrpcPath', () => {
  test.each<{ path: string; expected: { service: string; method: string } | undefined }>([
    { path: `/${ECHO}/Echo`, expected: { service: ECHO, method: 'Echo' } },
    { path: '/Svc/Do', expected: { service: 'Svc', method: 'Do' } },
    { path: '/', expected: undefined },
    { path: '/pkg.Svc', expected: undefined },
    { path: '/pkg.Svc/', expected: undefined },
    { path: '//Do', expected: undefined },
    { path: '/a/b/c', expected: undefined },
    { path: '/pkg.Svc/Do?x=1', expected: undefined },
    { path: 'pkg.Svc/Do', expected: undefined },
  ])('$path -> $expected', ({ path, expected }) => {
    expect(parseGrpcPath(path)).toEqual(expected);
  });
});
