import { describe, expect, test } from 'vitest';
import { pickWeighted, WeightedPicker } from '../../src/gateway-api/backend-pick.js';
import {
  applyHeaderModifier,
  type HeaderRecord,
  mirrorChosen,
  type RedirectRequestFacts,
  redirectLocation,
  rewriteRequest,
} from '../../src/gateway-api/route-filters.js';
import type {
  HeaderModifier,
  PathMatch,
  PathModifier,
  RequestRedirect,
} from '../../src/gateway-api/types.js';

// ---- factories ----

/** A header modifier as the parser gives it: names lowercased. */
function mod(o: {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}): HeaderModifier {
  const list = (r: Record<string, string> = {}) =>
    Object.entries(r).map(([name, value]) => ({ name: name.toLowerCase(), value }));
  return { set: list(o.set), add: list(o.add), remove: (o.remove ?? []).map((n) => n.toLowerCase()) };
}

/** Request headers as the proxy reads them: keys lowercased. */
const headers = (h: Record<string, string | string[]>): HeaderRecord =>
  Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));

/** What the conformance echo backend reports: repeated fields joined with ','. */
const echoed = (h: HeaderRecord): Record<string, string> =>
  Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v]));

const prefix = (value: string): PathMatch => ({ type: 'PathPrefix', value });
const replacePrefix = (value: string): PathModifier => ({ type: 'ReplacePrefixMatch', value });
const replaceFull = (value: string): PathModifier => ({ type: 'ReplaceFullPath', value });
const redirect = (o: Partial<RequestRedirect> = {}): RequestRedirect => ({ statusCode: 302, ...o });

/** A request to the `echo` Service on port 80, as in the mesh conformance tests. */
const toEcho = (path: string, over: Partial<RedirectRequestFacts> = {}): RedirectRequestFacts => ({
  scheme: 'http',
  host: 'echo',
  port: 80,
  path,
  query: '',
  ...over,
});

describe('applyHeaderModifier', () => {
  test.each<{
    what: string;
    before: Record<string, string>;
    m: HeaderModifier;
    after: Record<string, string>;
  }>([
    {
      what: 'MeshHTTPRouteRequestHeaderModifier /set: set adds a header',
      before: { 'Some-Other-Header': 'val' },
      m: mod({ set: { 'X-Header-Set': 'set-overwrites-values' } }),
      after: { 'some-other-header': 'val', 'x-header-set': 'set-overwrites-values' },
    },
    {
      what: 'MeshHTTPRouteRequestHeaderModifier /set: set overwrites a value',
      before: { 'Some-Other-Header': 'val', 'X-Header-Set': 'some-other-value' },
      m: mod({ set: { 'X-Header-Set': 'set-overwrites-values' } }),
      after: { 'some-other-header': 'val', 'x-header-set': 'set-overwrites-values' },
    },
    {
      what: 'MeshHTTPRouteRequestHeaderModifier /add: add to an absent header',
      before: { 'Some-Other-Header': 'val' },
      m: mod({ add: { 'X-Header-Add': 'add-appends-values' } }),
      after: { 'some-other-header': 'val', 'x-header-add': 'add-appends-values' },
    },
    {
      what: 'MeshHTTPRouteRequestHeaderModifier /add: add appends to a value',
      before: { 'Some-Other-Header': 'val', 'X-Header-Add': 'some-other-value' },
      m: mod({ add: { 'X-Header-Add': 'add-appends-values' } }),
      after: { 'some-other-header': 'val', 'x-header-add': 'some-other-value,add-appends-values' },
    },
    {
      what: 'MeshHTTPRouteRequestHeaderModifier /remove',
      before: { 'X-Header-Remove': 'val' },
      m: mod({ remove: ['X-Header-Remove'] }),
      after: {},
    },
    {
      what: 'MeshHTTPRouteRequestHeaderModifier /multiple',
      before: {
        'X-Header-Set-2': 'set-val-2',
        'X-Header-Add-2': 'add-val-2',
        'X-Header-Remove-2': 'remove-val-2',
        'Another-Header': 'another-header-val',
      },
      m: mod({
        set: { 'X-Header-Set-1': 'header-set-1', 'X-Header-Set-2': 'header-set-2' },
        add: {
          'X-Header-Add-1': 'header-add-1',
          'X-Header-Add-2': 'header-add-2',
          'X-Header-Add-3': 'header-add-3',
        },
        remove: ['X-Header-Remove-1', 'X-Header-Remove-2'],
      }),
      after: {
        'x-header-set-1': 'header-set-1',
        'x-header-set-2': 'header-set-2',
        'x-header-add-1': 'header-add-1',
        'x-header-add-2': 'add-val-2,header-add-2',
        'x-header-add-3': 'header-add-3',
        'another-header': 'another-header-val',
      },
    },
    {
      what: 'MeshHTTPRouteRequestHeaderModifier /case-insensitivity: canonical names in the filter, lowercase in the request',
      before: {
        'x-header-set': 'original-val-set',
        'x-header-add': 'original-val-add',
        'x-header-remove': 'original-val-remove',
        'Another-Header': 'another-header-val',
      },
      m: mod({
        set: { 'X-Header-Set': 'header-set' },
        add: { 'X-Header-Add': 'header-add' },
        remove: ['X-Header-Remove'],
      }),
      after: {
        'x-header-set': 'header-set',
        'x-header-add': 'original-val-add,header-add',
        'another-header': 'another-header-val',
      },
    },
    {
      what: 'MeshHTTPRouteRewritePath: headers modified beside a path rewrite',
      before: {
        'X-Header-Remove': 'remove-val',
        'X-Header-Add-Append': 'append-val-1',
        'X-Header-Set': 'set-val',
      },
      m: mod({
        set: { 'X-Header-Set': 'set-overwrites-values' },
        add: { 'X-Header-Add': 'header-val-1', 'X-Header-Add-Append': 'header-val-2' },
        remove: ['X-Header-Remove'],
      }),
      after: {
        'x-header-add': 'header-val-1',
        'x-header-add-append': 'append-val-1,header-val-2',
        'x-header-set': 'set-overwrites-values',
      },
    },
    {
      what: 'remove runs before set (Envoy order): a header both removed and set ends up set',
      before: { 'X-A': 'old' },
      m: mod({ set: { 'X-A': 'new' }, remove: ['X-A'] }),
      after: { 'x-a': 'new' },
    },
    {
      what: 'set runs before add: a header both set and added has both values',
      before: { 'X-A': 'old' },
      m: mod({ set: { 'X-A': 'set' }, add: { 'X-A': 'added' } }),
      after: { 'x-a': 'set,added' },
    },
    {
      what: 'removing an absent header changes nothing',
      before: { 'X-A': '1' },
      m: mod({ remove: ['X-B'] }),
      after: { 'x-a': '1' },
    },
  ])('$what', ({ before, m, after }) => {
    const h = headers(before);
    applyHeaderModifier(h, m);
    expect(echoed(h)).toEqual(after);
  });

  test('add appends a separate field value, never comma-joining (set-cookie stays intact)', () => {
    const h = headers({ 'Set-Cookie': 'a=1; Path=/, b' });
    applyHeaderModifier(h, mod({ add: { 'Set-Cookie': 'c=3' } }));
    expect(h['set-cookie']).toEqual(['a=1; Path=/, b', 'c=3']);
  });

  test('add to a repeated header appends without changing the array the caller gave', () => {
    const given = ['1', '2'];
    const h: HeaderRecord = { 'x-a': given };
    applyHeaderModifier(h, mod({ add: { 'X-A': '3' } }));
    expect({ h, given }).toEqual({ h: { 'x-a': ['1', '2', '3'] }, given: ['1', '2'] });
  });

  test('set replaces every value of a repeated header', () => {
    const h: HeaderRecord = { 'x-a': ['1', '2'] };
    applyHeaderModifier(h, mod({ set: { 'X-A': 'only' } }));
    expect(h).toEqual({ 'x-a': 'only' });
  });
});

describe('redirectLocation', () => {
  test.each<{
    what: string;
    req: RedirectRequestFacts;
    r: RequestRedirect;
    match?: PathMatch;
    status: number;
    location: string;
  }>([
    // MeshHTTPRouteRedirectPath
    {
      what: 'MeshHTTPRouteRedirectPath: ReplacePrefixMatch',
      req: toEcho('/original-prefix/lemon'),
      r: redirect({ path: replacePrefix('/replacement-prefix') }),
      match: prefix('/original-prefix'),
      status: 302,
      location: 'http://echo/replacement-prefix/lemon',
    },
    {
      what: 'MeshHTTPRouteRedirectPath: ReplaceFullPath',
      req: toEcho('/full/path/original'),
      r: redirect({ path: replaceFull('/full-path-replacement') }),
      match: prefix('/full'),
      status: 302,
      location: 'http://echo/full-path-replacement',
    },
    {
      what: 'MeshHTTPRouteRedirectPath: path and host',
      req: toEcho('/path-and-host'),
      r: redirect({ hostname: 'example.org', path: replacePrefix('/replacement-prefix') }),
      match: prefix('/path-and-host'),
      status: 302,
      location: 'http://example.org/replacement-prefix',
    },
    {
      what: 'MeshHTTPRouteRedirectPath: path and status',
      req: toEcho('/path-and-status'),
      r: redirect({ path: replacePrefix('/replacement-prefix'), statusCode: 301 }),
      match: prefix('/path-and-status'),
      status: 301,
      location: 'http://echo/replacement-prefix',
    },
    {
      what: 'MeshHTTPRouteRedirectPath: full path and host',
      req: toEcho('/full-path-and-host'),
      r: redirect({ hostname: 'example.org', path: replaceFull('/replacement-full') }),
      match: prefix('/full-path-and-host'),
      status: 302,
      location: 'http://example.org/replacement-full',
    },
    {
      what: 'MeshHTTPRouteRedirectPath: full path and status',
      req: toEcho('/full-path-and-status'),
      r: redirect({ path: replaceFull('/replacement-full'), statusCode: 301 }),
      match: prefix('/full-path-and-status'),
      status: 301,
      location: 'http://echo/replacement-full',
    },
    // MeshHTTPRouteRedirectPort
    {
      what: 'MeshHTTPRouteRedirectPort: port',
      req: toEcho('/port'),
      r: redirect({ port: 8083 }),
      status: 302,
      location: 'http://echo:8083/port',
    },
    {
      what: 'MeshHTTPRouteRedirectPort: port and host',
      req: toEcho('/port-and-host'),
      r: redirect({ hostname: 'example.org', port: 8083 }),
      status: 302,
      location: 'http://example.org:8083/port-and-host',
    },
    {
      what: 'MeshHTTPRouteRedirectPort: port and status',
      req: toEcho('/port-and-status'),
      r: redirect({ port: 8083, statusCode: 301 }),
      status: 301,
      location: 'http://echo:8083/port-and-status',
    },
    {
      what: 'MeshHTTPRouteRedirectPort: port, host and status',
      req: toEcho('/port-and-host-and-status'),
      r: redirect({ port: 8083, hostname: 'example.org', statusCode: 302 }),
      status: 302,
      location: 'http://example.org:8083/port-and-host-and-status',
    },
    // MeshHTTPRouteRedirectScheme
    {
      what: 'MeshHTTPRouteRedirectScheme: scheme',
      req: toEcho('/scheme'),
      r: redirect({ scheme: 'https' }),
      status: 302,
      location: 'https://echo/scheme',
    },
    {
      what: 'MeshHTTPRouteRedirectScheme: scheme and host',
      req: toEcho('/scheme-and-host'),
      r: redirect({ scheme: 'https', hostname: 'example.org' }),
      status: 302,
      location: 'https://example.org/scheme-and-host',
    },
    {
      what: 'MeshHTTPRouteRedirectScheme: scheme and status',
      req: toEcho('/scheme-and-status'),
      r: redirect({ scheme: 'https', statusCode: 301 }),
      status: 301,
      location: 'https://echo/scheme-and-status',
    },
    // MeshHTTPRouteRedirectHostAndStatus
    {
      what: 'MeshHTTPRouteRedirectHostAndStatus: hostname',
      req: toEcho('/hostname-redirect'),
      r: redirect({ hostname: 'example.org' }),
      status: 302,
      location: 'http://example.org/hostname-redirect',
    },
    {
      what: 'MeshHTTPRouteRedirectHostAndStatus: host and status',
      req: toEcho('/host-and-status'),
      r: redirect({ hostname: 'example.org', statusCode: 301 }),
      status: 301,
      location: 'http://example.org/host-and-status',
    },
    ...[303, 307, 308].map((statusCode) => ({
      what: `MeshHTTPRoute${statusCode}Redirect: the status, the path kept`,
      req: toEcho('/redirect'),
      r: redirect({ statusCode }),
      status: statusCode,
      location: 'http://echo/redirect',
    })),
    // HTTPRouteRedirectPortAndScheme, listener (Service port) 80
    ...(
      [
        ['/scheme-nil-and-port-nil', {}, 'http://example.org/scheme-nil-and-port-nil'],
        ['/scheme-nil-and-port-80', { port: 80 }, 'http://example.org/scheme-nil-and-port-80'],
        ['/scheme-nil-and-port-8080', { port: 8080 }, 'http://example.org:8080/scheme-nil-and-port-8080'],
        ['/scheme-https-and-port-nil', { scheme: 'https' }, 'https://example.org/scheme-https-and-port-nil'],
        [
          '/scheme-https-and-port-443',
          { scheme: 'https', port: 443 },
          'https://example.org/scheme-https-and-port-443',
        ],
        [
          '/scheme-https-and-port-8443',
          { scheme: 'https', port: 8443 },
          'https://example.org:8443/scheme-https-and-port-8443',
        ],
      ] as const
    ).map(([path, o, location]) => ({
      what: `HTTPRouteRedirectPortAndScheme on port 80: ${path}`,
      req: toEcho(path),
      r: redirect({ hostname: 'example.org', ...o }),
      status: 302,
      location,
    })),
    // HTTPRouteRedirectPortAndScheme, listener (Service port) 8080
    ...(
      [
        ['/scheme-nil-and-port-nil', {}, 'http://example.org:8080/scheme-nil-and-port-nil'],
        ['/scheme-nil-and-port-80', { port: 80 }, 'http://example.org/scheme-nil-and-port-80'],
        ['/scheme-https-and-port-nil', { scheme: 'https' }, 'https://example.org/scheme-https-and-port-nil'],
      ] as const
    ).map(([path, o, location]) => ({
      what: `HTTPRouteRedirectPortAndScheme on port 8080: ${path}`,
      req: toEcho(path, { port: 8080 }),
      r: redirect({ hostname: 'example.org', ...o }),
      status: 302,
      location,
    })),
    // HTTPRouteRedirectPortAndScheme, HTTPS listener 443
    ...(
      [
        ['/scheme-nil-and-port-nil', {}, 'https://example.org/scheme-nil-and-port-nil'],
        ['/scheme-nil-and-port-443', { port: 443 }, 'https://example.org/scheme-nil-and-port-443'],
        ['/scheme-nil-and-port-8443', { port: 8443 }, 'https://example.org:8443/scheme-nil-and-port-8443'],
        ['/scheme-http-and-port-nil', { scheme: 'http' }, 'http://example.org/scheme-http-and-port-nil'],
        [
          '/scheme-http-and-port-80',
          { scheme: 'http', port: 80 },
          'http://example.org/scheme-http-and-port-80',
        ],
        [
          '/scheme-http-and-port-8080',
          { scheme: 'http', port: 8080 },
          'http://example.org:8080/scheme-http-and-port-8080',
        ],
      ] as const
    ).map(([path, o, location]) => ({
      what: `HTTPRouteRedirectPortAndScheme on HTTPS 443: ${path}`,
      req: toEcho(path, { scheme: 'https', host: 'example.org', port: 443 }),
      r: redirect({ hostname: 'example.org', ...o }),
      status: 302,
      location,
    })),
    {
      what: 'a scheme set to the request scheme still means its well-known port (spec: "scheme not-empty")',
      req: toEcho('/x', { port: 8080 }),
      r: redirect({ scheme: 'http' }),
      status: 302,
      location: 'http://echo/x',
    },
    {
      what: 'the query is kept',
      req: toEcho('/original-prefix/lemon', { query: '?color=yellow&n=1' }),
      r: redirect({ path: replacePrefix('/replacement-prefix') }),
      match: prefix('/original-prefix'),
      status: 302,
      location: 'http://echo/replacement-prefix/lemon?color=yellow&n=1',
    },
    {
      what: 'the query is kept when the full path is replaced',
      req: toEcho('/full/x', { query: '?a=b' }),
      r: redirect({ path: replaceFull('/elsewhere') }),
      match: prefix('/full'),
      status: 302,
      location: 'http://echo/elsewhere?a=b',
    },
    {
      what: 'an IPv6 host is bracketed',
      req: toEcho('/x', { host: 'fd00:10:96::a', port: 8080 }),
      r: redirect(),
      status: 302,
      location: 'http://[fd00:10:96::a]:8080/x',
    },
  ])('$what', ({ req, r, match, status, location }) => {
    expect(redirectLocation(req, r, match ?? prefix('/'))).toEqual({ status, location });
  });
});

describe('ReplacePrefixMatch: the table of HTTPPathModifier, for redirects and rewrites alike', () => {
  test.each([
    ['/foo/bar', '/foo', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo', '/xyz/', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz/', '/xyz/bar'],
    ['/foo', '/foo', '/xyz', '/xyz'],
    ['/foo/', '/foo', '/xyz', '/xyz/'],
    ['/foo/bar', '/foo', '', '/bar'],
    ['/foo/', '/foo', '', '/'],
    ['/foo', '/foo', '', '/'],
    ['/foo/', '/foo', '/', '/'],
    ['/foo', '/foo', '/', '/'],
    // Beyond the table: the prefix `/` keeps the whole path under the replacement.
    ['/foo/bar', '/', '/xyz', '/xyz/foo/bar'],
    ['/', '/', '/xyz', '/xyz/'],
  ])('%s with prefix %j and replacement %j -> %s', (path, matched, replacement, expected) => {
    const modifier = replacePrefix(replacement);
    expect({
      rewrite: rewriteRequest({ host: 'echo', path }, { path: modifier }, prefix(matched)).path,
      redirect: redirectLocation(toEcho(path), redirect({ path: modifier }), prefix(matched)).location,
    }).toEqual({ rewrite: expected, redirect: `http://echo${expected}` });
  });
});

describe('rewriteRequest', () => {
  test.each<{
    what: string;
    path: string;
    rewrite: Parameters<typeof rewriteRequest>[1];
    match: PathMatch;
    expected: { host: string; path: string };
  }>([
    {
      what: 'MeshHTTPRouteRewritePath: /prefix/one -> /one',
      path: '/prefix/one/two',
      rewrite: { path: replacePrefix('/one') },
      match: prefix('/prefix/one'),
      expected: { host: 'echo', path: '/one/two' },
    },
    {
      what: 'MeshHTTPRouteRewritePath: strip a prefix, more path after it',
      path: '/strip-prefix/three',
      rewrite: { path: replacePrefix('/') },
      match: prefix('/strip-prefix'),
      expected: { host: 'echo', path: '/three' },
    },
    {
      what: 'MeshHTTPRouteRewritePath: strip the whole path',
      path: '/strip-prefix',
      rewrite: { path: replacePrefix('/') },
      match: prefix('/strip-prefix'),
      expected: { host: 'echo', path: '/' },
    },
    {
      what: 'MeshHTTPRouteRewritePath: ReplaceFullPath',
      path: '/full/one/two',
      rewrite: { path: replaceFull('/one') },
      match: prefix('/full/one'),
      expected: { host: 'echo', path: '/one' },
    },
    {
      what: 'MeshHTTPRouteRewritePath: full path with header changes',
      path: '/full/rewrite-path-and-modify-headers/test',
      rewrite: { path: replaceFull('/test') },
      match: prefix('/full/rewrite-path-and-modify-headers'),
      expected: { host: 'echo', path: '/test' },
    },
    {
      what: 'MeshHTTPRouteRewritePath: prefix with header changes',
      path: '/prefix/rewrite-path-and-modify-headers/one',
      rewrite: { path: replacePrefix('/prefix') },
      match: prefix('/prefix/rewrite-path-and-modify-headers'),
      expected: { host: 'echo', path: '/prefix/one' },
    },
    {
      what: 'HTTPRouteRewriteHost: the Host is replaced, the path kept',
      path: '/one',
      rewrite: { hostname: 'one.example.org' },
      match: prefix('/one'),
      expected: { host: 'one.example.org', path: '/one' },
    },
    {
      what: 'hostname and path together',
      path: '/api/v1/items',
      rewrite: { hostname: 'internal', path: replacePrefix('/v1') },
      match: prefix('/api/v1'),
      expected: { host: 'internal', path: '/v1/items' },
    },
    {
      what: 'an empty rewrite changes nothing',
      path: '/a',
      rewrite: {},
      match: prefix('/'),
      expected: { host: 'echo', path: '/a' },
    },
  ])('$what', ({ path, rewrite, match, expected }) => {
    expect(rewriteRequest({ host: 'echo', path }, rewrite, match)).toEqual(expected);
  });
});

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

/** Random values spread evenly over [0, 1), both ends included. */
function sweep(n: number): () => number {
  let i = 0;
  return () => Math.min(i++ / (n - 1), 1 - Number.EPSILON);
}

describe('mirrorChosen', () => {
  test.each<{ fraction: number; random: number; mirrored: boolean }>([
    { fraction: 0, random: 0, mirrored: false },
    { fraction: 1, random: 0.999_999, mirrored: true },
    { fraction: 0.5, random: 0.499, mirrored: true },
    { fraction: 0.5, random: 0.5, mirrored: false },
    { fraction: 0.01, random: 0.009, mirrored: true },
    { fraction: 0.01, random: 0.02, mirrored: false },
  ])('fraction $fraction, random $random: mirrored $mirrored', ({ fraction, random, mirrored }) => {
    expect(mirrorChosen(fraction, () => random)).toBe(mirrored);
  });

  test('mirrors about the fraction of 2,000 requests', () => {
    const random = seeded(7);
    let n = 0;
    for (let i = 0; i < 2000; i++) if (mirrorChosen(0.25, random)) n++;
    const [lo, hi] = binomialBounds(2000, 0.25);
    expect(n).toBeGreaterThanOrEqual(lo);
    expect(n).toBeLessThanOrEqual(hi);
  });
});

/** The two-sided 99.9% normal-approximation bounds of a Binomial(n, p) count. */
function binomialBounds(n: number, p: number): [number, number] {
  const z = 3.2905;
  const sd = Math.sqrt(n * p * (1 - p));
  return [Math.floor(n * p - z * sd), Math.ceil(n * p + z * sd)];
}

type Backend = { readonly name: string; readonly weight: number };
const b = (name: string, weight: number): Backend => ({ name, weight });

const pickers: {
  readonly how: string;
  readonly make: (bs: readonly Backend[]) => (r: () => number) => Backend | undefined;
}[] = [
  { how: 'pickWeighted', make: (bs) => (r) => pickWeighted(bs, r) },
  {
    how: 'WeightedPicker',
    make: (bs) => {
      const p = new WeightedPicker(bs);
      return (r) => p.pick(r);
    },
  },
];

function counts(
  pick: (r: () => number) => Backend | undefined,
  random: () => number,
  n: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const name = pick(random)?.name ?? 'none';
    out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}

describe.each(pickers)('$how', ({ make }) => {
  test('90/10 weights over 2,000 picks land within binomial 99.9% bounds', () => {
    const got = counts(make([b('v1', 90), b('v2', 10)]), seeded(42), 2000);
    const [lo, hi] = binomialBounds(2000, 0.9);
    expect(got.v1).toBeGreaterThanOrEqual(lo);
    expect(got.v1).toBeLessThanOrEqual(hi);
    expect(got.v1! + got.v2!).toBe(2000);
  });

  test('MeshHTTPRouteWeight / MeshGRPCRouteWeight: 70/30/0 sends 70/30 and nothing to echo-v3', () => {
    const got = counts(make([b('echo-v1', 70), b('echo-v2', 30), b('echo-v3', 0)]), seeded(1), 2000);
    const [lo, hi] = binomialBounds(2000, 0.7);
    expect(got['echo-v3']).toBeUndefined();
    expect(got['echo-v1']).toBeGreaterThanOrEqual(lo);
    expect(got['echo-v1']).toBeLessThanOrEqual(hi);
  });

  test.each<{ what: string; backends: Backend[]; expected: Record<string, number> }>([
    {
      what: 'a weight-0 backend first is never chosen',
      backends: [b('zero', 0), b('a', 1), b('b', 1)],
      expected: { a: 500, b: 500 },
    },
    {
      what: 'a weight-0 backend in the middle is never chosen',
      backends: [b('a', 1), b('zero', 0), b('b', 3)],
      expected: { a: 250, b: 750 },
    },
    {
      what: 'a weight-0 backend last is never chosen, even for random values near 1',
      backends: [b('a', 1), b('b', 1), b('zero', 0)],
      expected: { a: 500, b: 500 },
    },
    { what: 'a single backend takes everything', backends: [b('only', 7)], expected: { only: 1000 } },
    {
      what: 'every weight 0: nothing is chosen (the waypoint answers 500)',
      backends: [b('a', 0), b('b', 0)],
      expected: { none: 1000 },
    },
    { what: 'no backends: nothing is chosen', backends: [], expected: { none: 1000 } },
  ])('$what', ({ backends, expected }) => {
    // Evenly spread random values (0 and just under 1 included): exact shares, no luck involved.
    expect(counts(make(backends), sweep(1000), 1000)).toEqual(expected);
  });
});
