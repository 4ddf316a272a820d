import { headerName, headerValue, hostname, preciseHostname } from '../gateway-api/parse-common.js';
import { pathProblem } from '../gateway-api/parse-http-route.js';
import {
  type BackendObjectRef,
  type BackendRef,
  type GrpcFilter,
  type GrpcRouteMatch,
  type GrpcRouteRule,
  type HeaderMatch,
  type HeaderModifier,
  HTTP_METHODS,
  type HttpFilter,
  type HttpMethod,
  type HttpRouteMatch,
  type HttpRouteRule,
  type MeshRoute,
  type ParentRef,
  type PathMatch,
  type PathModifier,
  type RouteRetry,
  type RouteTimeouts,
  routeKey,
  type StringMatch,
} from '../gateway-api/types.js';

/*
 * Gateway API routes on the config stream: typed protobuf messages (ambit.proto), encoded from the
 * parsed routes and decoded with every field checked again (a regular expression compiles, a path is
 * absolute, a weight is in range), so that a waypoint never holds a route it did not validate.
 */

interface WireRef {
  group: string;
  kind: string;
  namespace?: string;
  name: string;
  section_name?: string;
  port: number;
}
interface WireBackendObjectRef {
  group: string;
  kind: string;
  name: string;
  namespace: string;
  port: number;
}
interface WireHeaderModifier {
  set: { name: string; value: string }[];
  add: { name: string; value: string }[];
  remove: string[];
}
interface WirePathModifier {
  type: string;
  value: string;
}
interface WireFilter {
  request_header_modifier?: WireHeaderModifier | null;
  response_header_modifier?: WireHeaderModifier | null;
  request_redirect?: {
    scheme: string;
    hostname: string;
    path: WirePathModifier | null;
    port: number;
    status_code: number;
  } | null;
  url_rewrite?: { hostname: string; path: WirePathModifier | null } | null;
  request_mirror?: { backend_ref: WireBackendObjectRef | null; fraction: number } | null;
  filter?: string;
}
interface WireBackendRef {
  ref: WireBackendObjectRef | null;
  weight: number;
  filters: WireFilter[];
}
interface WireStringMatch {
  type: string;
  value: string;
}
export interface WireNamedMatch {
  name: string;
  match: WireStringMatch | null;
}
interface WireHttpRule {
  name: string;
  matches: {
    path: WireStringMatch | null;
    headers: WireNamedMatch[];
    query_params: WireNamedMatch[];
    method: string;
  }[];
  filters: WireFilter[];
  backend_refs: WireBackendRef[];
  timeouts: {
    has_request: boolean;
    request_ms: number;
    has_backend_request: boolean;
    backend_request_ms: number;
  } | null;
  retry: {
    codes: number[];
    has_attempts: boolean;
    attempts: number;
    has_backoff: boolean;
    backoff_ms: number;
  } | null;
}
interface WireGrpcRule {
  name: string;
  matches: { method: { type: string; service: string; method: string } | null; headers: WireNamedMatch[] }[];
  filters: WireFilter[];
  backend_refs: WireBackendRef[];
}
export interface WireRoute {
  key: string;
  kind: string;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  parent_refs: WireRef[];
  hostnames: string[];
  http_rules: WireHttpRule[];
  grpc_rules: WireGrpcRule[];
}

const objectRef = (r: BackendObjectRef): WireBackendObjectRef => ({
  group: r.group,
  kind: r.kind,
  name: r.name,
  namespace: r.namespace ?? '',
  port: r.port ?? 0,
});
const headers = (m: HeaderModifier): WireHeaderModifier => ({
  set: m.set.map((h) => ({ ...h })),
  add: m.add.map((h) => ({ ...h })),
  remove: [...m.remove],
});
const pathMod = (p: PathModifier | undefined): WirePathModifier | null =>
  p === undefined ? null : { type: p.type, value: p.value };

function encodeFilter(f: HttpFilter): WireFilter {
  switch (f.type) {
    case 'RequestHeaderModifier':
      return { request_header_modifier: headers(f.headers) };
    case 'ResponseHeaderModifier':
      return { response_header_modifier: headers(f.headers) };
    case 'RequestRedirect':
      return {
        request_redirect: {
          scheme: f.redirect.scheme ?? '',
          hostname: f.redirect.hostname ?? '',
          path: pathMod(f.redirect.path),
          port: f.redirect.port ?? 0,
          status_code: f.redirect.statusCode,
        },
      };
    case 'URLRewrite':
      return { url_rewrite: { hostname: f.rewrite.hostname ?? '', path: pathMod(f.rewrite.path) } };
    case 'RequestMirror':
      return { request_mirror: { backend_ref: objectRef(f.mirror.backendRef), fraction: f.mirror.fraction } };
  }
}

const encodeBackends = (bs: readonly BackendRef<HttpFilter>[]): WireBackendRef[] =>
  bs.map((b) => ({ ref: objectRef(b), weight: b.weight, filters: b.filters.map(encodeFilter) }));
export const named = (ms: readonly HeaderMatch[]): WireNamedMatch[] =>
  ms.map((m) => ({ name: m.name, match: { type: m.match.type, value: m.match.value } }));

export function encodeRoute(r: MeshRoute): WireRoute {
  const base = {
    key: routeKey(r),
    kind: r.kind,
    namespace: r.route.namespace,
    name: r.route.name,
    labels: { ...r.route.labels },
    parent_refs: r.route.parentRefs.map((p) => ({
      group: p.group,
      kind: p.kind,
      namespace: p.namespace ?? '',
      name: p.name,
      section_name: p.sectionName ?? '',
      port: p.port ?? 0,
    })),
    hostnames: [...r.route.hostnames],
  };
  if (r.kind === 'HTTPRoute') {
    return {
      ...base,
      http_rules: r.route.rules.map((rule) => ({
        name: rule.name ?? '',
        matches: rule.matches.map((m) => ({
          path: { type: m.path.type, value: m.path.value },
          headers: named(m.headers),
          query_params: named(m.queryParams),
          method: m.method ?? '',
        })),
        filters: rule.filters.map(encodeFilter),
        backend_refs: encodeBackends(rule.backendRefs),
        timeouts:
          rule.timeouts === undefined
            ? null
            : {
                has_request: rule.timeouts.requestMs !== undefined,
                request_ms: rule.timeouts.requestMs ?? 0,
                has_backend_request: rule.timeouts.backendRequestMs !== undefined,
                backend_request_ms: rule.timeouts.backendRequestMs ?? 0,
              },
        retry:
          rule.retry === undefined
            ? null
            : {
                codes: [...rule.retry.codes],
                has_attempts: rule.retry.attempts !== undefined,
                attempts: rule.retry.attempts ?? 0,
                has_backoff: rule.retry.backoffMs !== undefined,
                backoff_ms: rule.retry.backoffMs ?? 0,
              },
      })),
      grpc_rules: [],
    };
  }
  return {
    ...base,
    http_rules: [],
    grpc_rules: r.route.rules.map((rule) => ({
      name: rule.name ?? '',
      matches: rule.matches.map((m) => ({
        method:
          m.method === undefined
            ? null
            : { type: m.method.type, service: m.method.service ?? '', method: m.method.method ?? '' },
        headers: named(m.headers),
      })),
      filters: rule.filters.map(encodeFilter),
      backend_refs: encodeBackends(rule.backendRefs),
    })),
  };
}

/** A decoding failure: what is wrong with which field. */
class Bad extends Error {}

function need<T>(v: T | null | undefined, field: string): T {
  if (v === null || v === undefined) throw new Bad(`${field} is missing`);
  return v;
}

function checkString(v: string, field: string, check?: (s: string) => string | undefined): string {
  if (typeof v !== 'string') throw new Bad(`${field} is not a string`);
  const why = check?.(v);
  if (why !== undefined) throw new Bad(`${field} ${JSON.stringify(v)} ${why}`);
  return v;
}

function regexOk(v: string): string | undefined {
  try {
    new RegExp(v, 'u');
    return undefined;
  } catch {
    return 'is not a valid regular expression';
  }
}

function port(v: number, field: string, optional = true): number | undefined {
  if (v === 0 && optional) return undefined;
  if (!Number.isInteger(v) || v < 1 || v > 65535) throw new Bad(`${field} ${v} is not a port`);
  return v;
}

function decodeObjectRef(w: WireBackendObjectRef | null | undefined, field: string): BackendObjectRef {
  const r = need(w, field);
  const p = port(r.port, `${field}.port`);
  return {
    group: r.group,
    kind: checkString(r.kind, `${field}.kind`, (k) => (k === '' ? 'is empty' : undefined)),
    name: checkString(r.name, `${field}.name`, (n) => (n === '' ? 'is empty' : undefined)),
    ...(r.namespace === '' ? {} : { namespace: r.namespace }),
    ...(p === undefined ? {} : { port: p }),
  };
}

function decodeHeaders(w: WireHeaderModifier, field: string): HeaderModifier {
  const list = (hs: { name: string; value: string }[], f: string) =>
    (hs ?? []).map((h, i) => ({
      name: checkString(h.name, `${f}[${i}].name`, headerName),
      value: checkString(h.value, `${f}[${i}].value`, headerValue),
    }));
  return {
    set: list(w.set, `${field}.set`),
    add: list(w.add, `${field}.add`),
    remove: (w.remove ?? []).map((n, i) => checkString(n, `${field}.remove[${i}]`, headerName)),
  };
}

function decodePathMod(w: WirePathModifier | null | undefined, field: string): PathModifier | undefined {
  if (w === null || w === undefined) return undefined;
  if (w.type !== 'ReplaceFullPath' && w.type !== 'ReplacePrefixMatch')
    throw new Bad(`${field}.type ${JSON.stringify(w.type)}`);
  return { type: w.type, value: checkString(w.value, `${field}.value`, pathProblem) };
}

function decodeFilter(w: WireFilter, field: string): HttpFilter {
  if (w.request_header_modifier)
    return { type: 'RequestHeaderModifier', headers: decodeHeaders(w.request_header_modifier, field) };
  if (w.response_header_modifier)
    return { type: 'ResponseHeaderModifier', headers: decodeHeaders(w.response_header_modifier, field) };
  if (w.request_redirect) {
    const r = w.request_redirect;
    if (![301, 302, 303, 307, 308].includes(r.status_code))
      throw new Bad(`${field}.statusCode ${r.status_code}`);
    if (r.scheme !== '' && r.scheme !== 'http' && r.scheme !== 'https')
      throw new Bad(`${field}.scheme ${JSON.stringify(r.scheme)}`);
    const path = decodePathMod(r.path, `${field}.path`);
    const p = port(r.port, `${field}.port`);
    return {
      type: 'RequestRedirect',
      redirect: {
        ...(r.scheme === '' ? {} : { scheme: r.scheme as 'http' | 'https' }),
        ...(r.hostname === ''
          ? {}
          : { hostname: checkString(r.hostname, `${field}.hostname`, preciseHostname) }),
        ...(path === undefined ? {} : { path }),
        ...(p === undefined ? {} : { port: p }),
        statusCode: r.status_code,
      },
    };
  }
  if (w.url_rewrite) {
    const path = decodePathMod(w.url_rewrite.path, `${field}.path`);
    return {
      type: 'URLRewrite',
      rewrite: {
        ...(w.url_rewrite.hostname === ''
          ? {}
          : { hostname: checkString(w.url_rewrite.hostname, `${field}.hostname`, preciseHostname) }),
        ...(path === undefined ? {} : { path }),
      },
    };
  }
  if (w.request_mirror) {
    const f = w.request_mirror.fraction;
    if (!(f >= 0 && f <= 1)) throw new Bad(`${field}.fraction ${f} is not between 0 and 1`);
    return {
      type: 'RequestMirror',
      mirror: {
        backendRef: decodeObjectRef(w.request_mirror.backend_ref, `${field}.backendRef`),
        fraction: f,
      },
    };
  }
  throw new Bad(`${field} sets no filter`);
}

function decodeBackends(ws: WireBackendRef[], field: string, grpc: boolean): BackendRef<HttpFilter>[] {
  return (ws ?? []).map((b, i) => {
    if (!Number.isInteger(b.weight) || b.weight < 0 || b.weight > 1_000_000)
      throw new Bad(`${field}[${i}].weight ${b.weight}`);
    const filters = (b.filters ?? []).map((f, j) => decodeFilter(f, `${field}[${i}].filters[${j}]`));
    if (grpc && filters.some((f) => f.type === 'RequestRedirect' || f.type === 'URLRewrite'))
      throw new Bad(`${field}[${i}].filters has a filter GRPCRoute does not allow`);
    return { ...decodeObjectRef(b.ref, `${field}[${i}]`), weight: b.weight, filters };
  });
}

function decodeStringMatch(w: WireStringMatch | null | undefined, field: string, path = false): StringMatch {
  const m = need(w, field);
  if (m.type === 'RegularExpression')
    return { type: m.type, value: checkString(m.value, `${field}.value`, regexOk) };
  if (m.type === 'Exact')
    return { type: m.type, value: checkString(m.value, `${field}.value`, path ? pathProblem : undefined) };
  throw new Bad(`${field}.type ${JSON.stringify(m.type)}`);
}

function decodePath(w: WireStringMatch | null | undefined, field: string): PathMatch {
  const m = need(w, field);
  if (m.type === 'PathPrefix')
    return { type: 'PathPrefix', value: checkString(m.value, `${field}.value`, pathProblem) };
  return decodeStringMatch(m, field, true);
}

export const decodeNamed = (ws: WireNamedMatch[], field: string): HeaderMatch[] =>
  (ws ?? []).map((h, i) => ({
    name: checkString(h.name, `${field}[${i}].name`),
    match: decodeStringMatch(h.match, `${field}[${i}]`),
  }));

function decodeHttpRule(w: WireHttpRule, i: number): HttpRouteRule {
  const at = `rules[${i}]`;
  const matches: HttpRouteMatch[] = (w.matches ?? []).map((m, j) => {
    if (m.method !== '' && !(HTTP_METHODS as readonly string[]).includes(m.method))
      throw new Bad(`${at}.matches[${j}].method ${JSON.stringify(m.method)}`);
    return {
      path: decodePath(m.path, `${at}.matches[${j}].path`),
      headers: decodeNamed(m.headers, `${at}.matches[${j}].headers`).map((h) => ({
        ...h,
        name: h.name.toLowerCase(),
      })),
      queryParams: decodeNamed(m.query_params, `${at}.matches[${j}].queryParams`),
      ...(m.method === '' ? {} : { method: m.method as HttpMethod }),
    };
  });
  if (matches.length === 0) throw new Bad(`${at}.matches is empty`);
  let timeouts: RouteTimeouts | undefined;
  if (w.timeouts) {
    const t = w.timeouts;
    timeouts = {
      ...(t.has_request ? { requestMs: t.request_ms } : {}),
      ...(t.has_backend_request ? { backendRequestMs: t.backend_request_ms } : {}),
    };
  }
  let retry: RouteRetry | undefined;
  if (w.retry) {
    const r = w.retry;
    if ((r.codes ?? []).some((c) => c < 400 || c > 599))
      throw new Bad(`${at}.retry.codes ${JSON.stringify(r.codes)}`);
    if (r.has_attempts && r.attempts < 1) throw new Bad(`${at}.retry.attempts ${r.attempts}`);
    retry = {
      codes: [...(r.codes ?? [])],
      ...(r.has_attempts ? { attempts: r.attempts } : {}),
      ...(r.has_backoff ? { backoffMs: r.backoff_ms } : {}),
    };
  }
  return {
    ...(w.name === '' ? {} : { name: w.name }),
    matches,
    filters: (w.filters ?? []).map((f, j) => decodeFilter(f, `${at}.filters[${j}]`)),
    backendRefs: decodeBackends(w.backend_refs, `${at}.backendRefs`, false),
    ...(timeouts === undefined ? {} : { timeouts }),
    ...(retry === undefined ? {} : { retry }),
  };
}

function decodeGrpcRule(w: WireGrpcRule, i: number): GrpcRouteRule {
  const at = `rules[${i}]`;
  const matches: GrpcRouteMatch[] = (w.matches ?? []).map((m, j) => {
    const headers = decodeNamed(m.headers, `${at}.matches[${j}].headers`).map((h) => ({
      ...h,
      name: h.name.toLowerCase(),
    }));
    if (m.method === null || m.method === undefined) return { headers };
    const mm = m.method;
    if (mm.type !== 'Exact' && mm.type !== 'RegularExpression')
      throw new Bad(`${at}.matches[${j}].method.type`);
    if (mm.service === '' && mm.method === '')
      throw new Bad(`${at}.matches[${j}].method sets neither service nor method`);
    if (mm.type === 'RegularExpression') {
      checkString(mm.service, `${at}.matches[${j}].method.service`, (v) =>
        v === '' ? undefined : regexOk(v),
      );
      checkString(mm.method, `${at}.matches[${j}].method.method`, (v) => (v === '' ? undefined : regexOk(v)));
    }
    return {
      method: {
        type: mm.type,
        ...(mm.service === '' ? {} : { service: mm.service }),
        ...(mm.method === '' ? {} : { method: mm.method }),
      },
      headers,
    };
  });
  const filters = (w.filters ?? []).map((f, j) => decodeFilter(f, `${at}.filters[${j}]`));
  if (filters.some((f) => f.type === 'RequestRedirect' || f.type === 'URLRewrite'))
    throw new Bad(`${at}.filters has a filter GRPCRoute does not allow`);
  return {
    ...(w.name === '' ? {} : { name: w.name }),
    matches,
    filters: filters as GrpcFilter[],
    backendRefs: decodeBackends(w.backend_refs, `${at}.backendRefs`, true) as BackendRef<GrpcFilter>[],
  };
}

function decode(w: WireRoute): MeshRoute {
  if (w.namespace === '' || w.name === '') throw new Bad('namespace and name are required');
  const parentRefs: ParentRef[] = (w.parent_refs ?? []).map((p, i) => {
    const pp = port(p.port, `parentRefs[${i}].port`);
    return {
      group: p.group,
      kind: checkString(p.kind, `parentRefs[${i}].kind`),
      name: checkString(p.name, `parentRefs[${i}].name`, (n) => (n === '' ? 'is empty' : undefined)),
      ...(p.namespace === '' || p.namespace === undefined ? {} : { namespace: p.namespace }),
      ...(p.section_name === '' || p.section_name === undefined ? {} : { sectionName: p.section_name }),
      ...(pp === undefined ? {} : { port: pp }),
    };
  });
  const base = {
    namespace: w.namespace,
    name: w.name,
    labels: w.labels ?? {},
    parentRefs,
    hostnames: (w.hostnames ?? []).map((h, i) => checkString(h, `hostnames[${i}]`, hostname)),
  };
  if (w.kind === 'HTTPRoute')
    return { kind: 'HTTPRoute', route: { ...base, rules: (w.http_rules ?? []).map(decodeHttpRule) } };
  if (w.kind === 'GRPCRoute')
    return { kind: 'GRPCRoute', route: { ...base, rules: (w.grpc_rules ?? []).map(decodeGrpcRule) } };
  throw new Bad(`kind ${JSON.stringify(w.kind)} is not HTTPRoute or GRPCRoute`);
}

/** Decodes a route from the stream, or says why it cannot be used. */
export function decodeRoute(w: WireRoute): { route: MeshRoute } | { problem: string } {
  try {
    const route = decode(w);
    if (routeKey(route) !== w.key)
      return { problem: `route ${w.key}: its key does not name it (${routeKey(route)}); ignored` };
    return { route };
  } catch (err) {
    if (err instanceof Bad) return { problem: `route ${w.key}: ${err.message}; ignored` };
    throw err;
  }
}
