import type {
  GrpcMethodMatch,
  GrpcRoute,
  GrpcRouteMatch,
  GrpcRouteRule,
  HeaderMatch,
  HttpRoute,
  HttpRouteMatch,
  HttpRouteRule,
  PathMatch,
  QueryParamMatch,
  StringMatch,
} from './types.js';

/*
 * Which rule of the attached routes a request matches. A table is compiled once per config (every
 * regular expression compiled, every match of every rule of every route sorted by the spec's
 * precedence), so that a request is matched by one scan that stops at the first hit.
 *
 * Regular expressions (all of them implementation-specific in the spec) are JavaScript `u`-mode
 * expressions, the dialect the parser validates, and must match the whole value (a path regex the
 * whole path, a header regex the whole header value), as Envoy's `safe_regex` matchers do.
 */

/** What an HTTP request offers to route matching. */
export interface HttpRequestFacts {
  readonly method: string;
  /** The path without the query, as received (the matcher neither decodes nor normalizes it). */
  readonly path: string;
  /** The query's name/value pairs in request order, already percent-decoded. */
  readonly query: readonly (readonly [string, string])[];
  /** A header's value by lowercase name; repeated fields joined with ', ' (RFC 9110 §5.3). */
  header(name: string): string | undefined;
}

/** What a gRPC request offers to route matching: its `:path` split (see `parseGrpcPath`). */
export interface GrpcRequestFacts {
  readonly service: string;
  readonly method: string;
  /** A metadata value by lowercase name; repeated entries joined with ', '. */
  header(name: string): string | undefined;
}

/** What the HTTPRoutes attached to a Service port do with one request. */
export type HttpRouteDecision =
  | {
      readonly kind: 'matched';
      readonly route: HttpRoute;
      readonly ruleIndex: number;
      readonly rule: HttpRouteRule;
      /** The match that won (ReplacePrefixMatch filters rewrite against its path). */
      readonly match: HttpRouteMatch;
    }
  /** Routes are attached but none matches: the waypoint answers 404 (HTTPRouteRule.Matches). */
  | { readonly kind: 'unmatched' }
  /** No route attached: the request goes to the Service as it is (GEP-1294 "Route presence"). */
  | { readonly kind: 'none' };

/** What the GRPCRoutes attached to a Service port do with one call. */
export type GrpcRouteDecision =
  | {
      readonly kind: 'matched';
      readonly route: GrpcRoute;
      readonly ruleIndex: number;
      readonly rule: GrpcRouteRule;
      /** The match that won; `{ headers: [] }` for a rule without matches (it matches everything). */
      readonly match: GrpcRouteMatch;
    }
  /**
   * Routes are attached but none matches: the waypoint answers grpc-status 12 UNIMPLEMENTED (what
   * the GRPCRouteExactMethodMatching and GRPCRouteHeaderMatching conformance tests expect).
   */
  | { readonly kind: 'unmatched' }
  /** No route attached: the request goes to the Service as it is. */
  | { readonly kind: 'none' };

type ValueTest = (value: string | undefined) => boolean;
type QueryLookup = (name: string) => string | undefined;

const never: ValueTest = () => false;

/** A regex that must match the whole value; one that does not compile (the parser refuses those) matches nothing. */
function fullMatch(source: string): ValueTest {
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${source})$`, 'u');
  } catch {
    return never;
  }
  return (v) => v !== undefined && re.test(v);
}

function stringTest(m: StringMatch): ValueTest {
  if (m.type === 'RegularExpression') return fullMatch(m.value);
  const want = m.value;
  return (v) => v === want;
}

/** `/foo/` and `/foo` are the same prefix: "When specified, a trailing `/` is ignored." */
function trimPrefix(value: string): string {
  return value.length > 1 && value.endsWith('/') ? value.slice(0, -1) : value;
}

/**
 * PathPrefix matches whole path elements: `/foo` matches `/foo`, `/foo/` and `/foo/bar`, never
 * `/foobar` (PathMatchPathPrefix; conformance MeshHTTPRouteMatching `/v2example`).
 */
export function pathPrefixMatches(prefix: string, path: string): boolean {
  const p = trimPrefix(prefix);
  if (p === '/') return path.startsWith('/');
  return path === p || (path.startsWith(p) && path.charCodeAt(p.length) === 0x2f);
}

function pathTest(m: PathMatch): (path: string) => boolean {
  switch (m.type) {
    case 'Exact': {
      const want = m.value;
      return (path) => path === want;
    }
    case 'PathPrefix': {
      const prefix = m.value;
      return (path) => pathPrefixMatches(prefix, path);
    }
    case 'RegularExpression': {
      const t = fullMatch(m.value);
      return (path) => t(path);
    }
  }
}

export type HeaderFacts = Pick<HttpRequestFacts, 'header'>;

export function headersTest(headers: readonly HeaderMatch[]): (req: HeaderFacts) => boolean {
  const tests = headers.map((h) => ({ name: h.name, test: stringTest(h.match) }));
  return (req) => tests.every((t) => t.test(req.header(t.name)));
}

function queryTest(params: readonly QueryParamMatch[]): (query: QueryLookup) => boolean {
  const tests = params.map((q) => ({ name: q.name, test: stringTest(q.match) }));
  return (query) => tests.every((t) => t.test(query(t.name)));
}

/** Lexicographic comparison of precedence keys: the larger key wins. */
function byKeyDescending(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) {
    const d = (b[i] ?? 0) - (a[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Spec tie-breakers after the match criteria: route by `{namespace}/{name}`, then rule, then match order. */
function byRouteThenOrder(
  a: { readonly routeKey: string; readonly ruleIndex: number; readonly matchIndex: number },
  b: { readonly routeKey: string; readonly ruleIndex: number; readonly matchIndex: number },
): number {
  if (a.routeKey !== b.routeKey) return a.routeKey < b.routeKey ? -1 : 1;
  return a.ruleIndex - b.ruleIndex || a.matchIndex - b.matchIndex;
}

/** One match of one rule of one route, with its precedence key. */
interface Entry<R, U, M> {
  readonly route: R;
  readonly routeKey: string;
  readonly ruleIndex: number;
  readonly rule: U;
  readonly matchIndex: number;
  readonly match: M;
  readonly key: readonly number[];
}

function sorted<E extends Entry<unknown, unknown, unknown>>(entries: E[]): readonly E[] {
  return entries.sort((a, b) => byKeyDescending(a.key, b.key) || byRouteThenOrder(a, b));
}

const PATH_RANK = { Exact: 3, PathPrefix: 2, RegularExpression: 1 } as const;

/**
 * The HTTPRoute precedence key of one match (HTTPRouteRule.Matches), larger first:
 * 1. path kind: Exact, then PathPrefix, then RegularExpression. The spec leaves regex paths to the
 *    implementation; like Istio (`getURIRank`: Exact > Prefix > Regex), every regex ranks below every
 *    PathPrefix, even `/`, and longer patterns rank first among regexes;
 * 2. path length (a PathPrefix without its trailing `/`);
 * 3. a method match; 4. the number of header matches; 5. the number of query param matches.
 */
function httpKey(m: HttpRouteMatch): readonly number[] {
  const length = m.path.type === 'PathPrefix' ? trimPrefix(m.path.value).length : m.path.value.length;
  return [
    PATH_RANK[m.path.type],
    length,
    m.method === undefined ? 0 : 1,
    m.headers.length,
    m.queryParams.length,
  ];
}

function httpTest(m: HttpRouteMatch): (req: HttpRequestFacts, query: QueryLookup) => boolean {
  const method = m.method;
  const path = pathTest(m.path);
  const headers = m.headers.length === 0 ? undefined : headersTest(m.headers);
  const query = m.queryParams.length === 0 ? undefined : queryTest(m.queryParams);
  return (req, q) =>
    (method === undefined || req.method === method) &&
    path(req.path) &&
    (headers === undefined || headers(req)) &&
    (query === undefined || query(q));
}

/** Query param lookup by exact (case-sensitive) name; a repeated param is matched by its first value, as the spec recommends. */
function queryLookup(pairs: readonly (readonly [string, string])[]): QueryLookup {
  let first: Map<string, string> | undefined;
  return (name) => {
    if (first === undefined) {
      first = new Map();
      for (const [k, v] of pairs) if (!first.has(k)) first.set(k, v);
    }
    return first.get(name);
  };
}

interface HttpEntry extends Entry<HttpRoute, HttpRouteRule, HttpRouteMatch> {
  readonly test: (req: HttpRequestFacts, query: QueryLookup) => boolean;
}

/**
 * The HTTPRoutes attached to one Service port, compiled: every match of every rule of every route,
 * in the spec's precedence order (see `httpKey`), then by route `{namespace}/{name}` (the spec's
 * first tie-breaker, the oldest route, needs a creation timestamp the parsed routes do not carry),
 * then rule order, then match order within the rule.
 */
export class HttpRouteTable {
  private constructor(
    private readonly entries: readonly HttpEntry[],
    private readonly attached: boolean,
  ) {}

  /** Builds the table for the routes `attachedRoutes` chose; an empty list gives a table that always says `none`. */
  static compile(routes: readonly HttpRoute[]): HttpRouteTable {
    const entries: HttpEntry[] = [];
    for (const route of routes) {
      const routeKey = `${route.namespace}/${route.name}`;
      route.rules.forEach((rule, ruleIndex) => {
        rule.matches.forEach((match, matchIndex) => {
          entries.push({
            route,
            routeKey,
            ruleIndex,
            rule,
            matchIndex,
            match,
            key: httpKey(match),
            test: httpTest(match),
          });
        });
      });
    }
    return new HttpRouteTable(sorted(entries), routes.length > 0);
  }

  /** The rule that takes this request, or why none does. */
  match(req: HttpRequestFacts): HttpRouteDecision {
    if (!this.attached) return { kind: 'none' };
    const query = queryLookup(req.query);
    for (const e of this.entries) {
      if (e.test(req, query))
        return { kind: 'matched', route: e.route, ruleIndex: e.ruleIndex, rule: e.rule, match: e.match };
    }
    return { kind: 'unmatched' };
  }
}

/**
 * One field of a GRPCMethodMatch: its rank (Exact 2, RegularExpression 1, unset 0) and its length.
 * For Exact matches this is the spec's "characters in a matching service/method" (an unset field has
 * none); RegularExpression is implementation-specific, and ranks below Exact as regex paths do.
 */
function grpcFieldKey(type: GrpcMethodMatch['type'], value: string | undefined): readonly number[] {
  if (value === undefined || value === '') return [0, 0];
  return [type === 'Exact' ? 2 : 1, value.length];
}

/** GRPCRoute precedence (GRPCRouteRule.Matches), larger first: service, then method, then header matches. */
function grpcKey(m: GrpcRouteMatch): readonly number[] {
  const type = m.method?.type ?? 'Exact';
  return [
    ...grpcFieldKey(type, m.method?.service),
    ...grpcFieldKey(type, m.method?.method),
    m.headers.length,
  ];
}

function grpcFieldTest(type: GrpcMethodMatch['type'], value: string | undefined): ValueTest | undefined {
  if (value === undefined || value === '') return undefined;
  return stringTest({ type, value });
}

function grpcTest(m: GrpcRouteMatch): (req: GrpcRequestFacts) => boolean {
  const type = m.method?.type ?? 'Exact';
  const service = grpcFieldTest(type, m.method?.service);
  const method = grpcFieldTest(type, m.method?.method);
  const headers = m.headers.length === 0 ? undefined : headersTest(m.headers);
  return (req) =>
    (service === undefined || service(req.service)) &&
    (method === undefined || method(req.method)) &&
    (headers === undefined || headers(req));
}

interface GrpcEntry extends Entry<GrpcRoute, GrpcRouteRule, GrpcRouteMatch> {
  readonly test: (req: GrpcRequestFacts) => boolean;
}

const MATCH_ALL: GrpcRouteMatch = { headers: [] };

/**
 * The GRPCRoutes attached to one Service port, compiled: every match in precedence order (see
 * `grpcKey`; a rule without matches is one match of everything, ranked last), then route
 * `{namespace}/{name}`, rule order and match order, as for HTTPRoute.
 */
export class GrpcRouteTable {
  private constructor(
    private readonly entries: readonly GrpcEntry[],
    private readonly attached: boolean,
  ) {}

  /** Builds the table for the routes `attachedRoutes` chose; an empty list gives a table that always says `none`. */
  static compile(routes: readonly GrpcRoute[]): GrpcRouteTable {
    const entries: GrpcEntry[] = [];
    for (const route of routes) {
      const routeKey = `${route.namespace}/${route.name}`;
      route.rules.forEach((rule, ruleIndex) => {
        const matches = rule.matches.length === 0 ? [MATCH_ALL] : rule.matches;
        matches.forEach((match, matchIndex) => {
          entries.push({
            route,
            routeKey,
            ruleIndex,
            rule,
            matchIndex,
            match,
            key: grpcKey(match),
            test: grpcTest(match),
          });
        });
      });
    }
    return new GrpcRouteTable(sorted(entries), routes.length > 0);
  }

  /** The rule that takes this call, or why none does. */
  match(req: GrpcRequestFacts): GrpcRouteDecision {
    if (!this.attached) return { kind: 'none' };
    for (const e of this.entries) {
      if (e.test(req))
        return { kind: 'matched', route: e.route, ruleIndex: e.ruleIndex, rule: e.rule, match: e.match };
    }
    return { kind: 'unmatched' };
  }
}

/**
 * A gRPC `:path` (`/package.Service/Method`) split into service and method; undefined when the path
 * does not have that shape (no leading `/`, an empty part, another `/`, or a query), so the request
 * is not a gRPC call.
 */
export function parseGrpcPath(
  path: string,
): { readonly service: string; readonly method: string } | undefined {
  if (!path.startsWith('/') || path.includes('?')) return undefined;
  const slash = path.indexOf('/', 1);
  if (slash <= 1 || slash === path.length - 1 || path.indexOf('/', slash + 1) !== -1) return undefined;
  return { service: path.slice(1, slash), method: path.slice(slash + 1) };
}
