import type { Fields } from '../config/field-reader.js';
import { show } from '../config/issue.js';
import type { Labels } from '../config/kube-types.js';
import {
  atMostOnce,
  backendRefs,
  gatewayDuration,
  headerMatches,
  headerModifier,
  preciseHostname,
  requestMirror,
  routeSpec,
  sectionName,
  stringMatch,
  UNKNOWN_ROUTE_FIELD,
} from './parse-common.js';
import {
  HTTP_METHODS,
  type HttpFilter,
  type HttpRoute,
  type HttpRouteMatch,
  type HttpRouteRule,
  type PathMatch,
  type PathModifier,
  type QueryParamMatch,
  type RouteRetry,
  type RouteTimeouts,
} from './types.js';

/*
 * HTTPRoute (`gateway.networking.k8s.io/v1`) -> HttpRoute, with the CRD's defaults applied and its
 * validation rules (schema and CEL) checked, so that a route the API server would refuse is refused
 * here with the field path and the reason.
 */

export interface RouteMeta {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
}

const FILTER_FIELDS = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestMirror: 'requestMirror',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  ExtensionRef: 'extensionRef',
  CORS: 'cors',
  ExternalAuth: 'externalAuth',
} as const;
type FilterType = keyof typeof FILTER_FIELDS;
const SUPPORTED_ON_RULE: readonly FilterType[] = [
  'RequestHeaderModifier',
  'ResponseHeaderModifier',
  'RequestMirror',
  'RequestRedirect',
  'URLRewrite',
];
const SUPPORTED_ON_BACKEND: readonly FilterType[] = [
  'RequestHeaderModifier',
  'ResponseHeaderModifier',
  'RequestMirror',
];

const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$/;

/** The CRD's rules for Exact and PathPrefix values (and for path modifiers' replacement paths). */
export function pathProblem(v: string): string | undefined {
  if (!v.startsWith('/')) return 'must be an absolute path starting with "/"';
  if (v.length > 1024) return 'is longer than 1024 characters';
  for (const bad of ['//', '/./', '/../', '%2f', '%2F', '#'])
    if (v.includes(bad)) return `must not contain ${show(bad)}`;
  if (v.endsWith('/..') || v.endsWith('/.')) return 'must not end with "/." or "/.."';
  if (!PATH_CHARS.test(v)) return 'has characters that are not allowed in a path (escape them as %XX)';
  return undefined;
}

function pathMatch(f: Fields | undefined): PathMatch {
  if (f === undefined) return { type: 'PathPrefix', value: '/' };
  f.rejectUnknown(['type', 'value'], UNKNOWN_ROUTE_FIELD);
  const type = f.oneOf('type', ['Exact', 'PathPrefix', 'RegularExpression'] as const) ?? 'PathPrefix';
  if (type === 'RegularExpression') {
    const m = stringMatch(f, 1024);
    return { type, value: m?.value ?? '' };
  }
  const value = f.string('value', { check: pathProblem }) ?? '/';
  return { type, value };
}

function queryMatches(f: Fields): QueryParamMatch[] {
  const seen = new Set<string>();
  return (
    f.objects(
      'queryParams',
      (q) => {
        q.rejectUnknown(['type', 'name', 'value'], UNKNOWN_ROUTE_FIELD);
        const name = q.string('name', { required: true });
        const match = stringMatch(q, 1024);
        if (name === undefined || match === undefined) return undefined;
        if (seen.has(name)) q.error('name', `${show(name)} is matched by an earlier entry`);
        seen.add(name);
        return { name, match };
      },
      { max: 16 },
    ) ?? []
  );
}

function routeMatch(f: Fields): HttpRouteMatch {
  f.rejectUnknown(['path', 'headers', 'queryParams', 'method'], UNKNOWN_ROUTE_FIELD);
  const method = f.oneOf('method', HTTP_METHODS);
  return {
    path: pathMatch(f.object('path')),
    headers: headerMatches(f),
    queryParams: queryMatches(f),
    ...(method === undefined ? {} : { method }),
  };
}

function pathModifier(f: Fields | undefined): PathModifier | undefined {
  if (f === undefined) return undefined;
  f.rejectUnknown(['type', 'replaceFullPath', 'replacePrefixMatch'], UNKNOWN_ROUTE_FIELD);
  const type = f.oneOf('type', ['ReplaceFullPath', 'ReplacePrefixMatch'] as const, { required: true });
  if (type === undefined) return undefined;
  const own = type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
  const other = type === 'ReplaceFullPath' ? 'replacePrefixMatch' : 'replaceFullPath';
  if (f.has(other)) f.error(other, `must not be set when type is ${type}`);
  const value = f.string(own, { required: true, check: pathProblem });
  return value === undefined ? undefined : { type, value };
}

function filter(f: Fields, allowed: readonly FilterType[], where: string): HttpFilter | undefined {
  f.rejectUnknown(['type', ...Object.values(FILTER_FIELDS)], UNKNOWN_ROUTE_FIELD);
  const type = f.oneOf('type', Object.keys(FILTER_FIELDS) as FilterType[], { required: true });
  if (type === undefined) return undefined;
  for (const [t, field] of Object.entries(FILTER_FIELDS)) {
    if (t !== type && f.has(field)) f.error(field, `must not be set when the filter type is ${type}`);
  }
  const field = FILTER_FIELDS[type];
  if (!allowed.includes(type)) {
    f.error(
      'type',
      SUPPORTED_ON_RULE.includes(type)
        ? `${type} is not supported on ${where} by Ambit; put it on the rule`
        : `${type} filters are not supported by Ambit (supported: ${allowed.join(', ')})`,
    );
    return undefined;
  }
  const body = f.object(field, { required: true });
  if (body === undefined) return undefined;
  switch (type) {
    case 'RequestHeaderModifier':
    case 'ResponseHeaderModifier':
      return { type, headers: headerModifier(body) };
    case 'RequestMirror': {
      const mirror = requestMirror(body);
      return mirror === undefined ? undefined : { type, mirror };
    }
    case 'RequestRedirect': {
      body.rejectUnknown(['scheme', 'hostname', 'path', 'port', 'statusCode'], UNKNOWN_ROUTE_FIELD);
      const scheme = body.oneOf('scheme', ['http', 'https'] as const);
      const hostname = body.string('hostname', { check: preciseHostname });
      const port = body.int('port', { min: 1, max: 65535 });
      const path = pathModifier(body.object('path'));
      const statusCode = body.int('statusCode') ?? 302;
      if (![301, 302, 303, 307, 308].includes(statusCode))
        body.error('statusCode', `${statusCode} is not one of 301, 302, 303, 307, 308`);
      return {
        type,
        redirect: {
          ...(scheme === undefined ? {} : { scheme }),
          ...(hostname === undefined ? {} : { hostname }),
          ...(path === undefined ? {} : { path }),
          ...(port === undefined ? {} : { port }),
          statusCode,
        },
      };
    }
    case 'URLRewrite': {
      body.rejectUnknown(['hostname', 'path'], UNKNOWN_ROUTE_FIELD);
      const hostname = body.string('hostname', { check: preciseHostname });
      const path = pathModifier(body.object('path'));
      return {
        type,
        rewrite: { ...(hostname === undefined ? {} : { hostname }), ...(path === undefined ? {} : { path }) },
      };
    }
    default:
      return undefined;
  }
}

function filters(f: Fields, key: string, allowed: readonly FilterType[], where: string): HttpFilter[] {
  const out = f.objects(key, (x) => filter(x, allowed, where), { max: 16 }) ?? [];
  atMostOnce(
    f,
    key,
    ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite'],
    out,
  );
  if (out.some((x) => x.type === 'RequestRedirect') && out.some((x) => x.type === 'URLRewrite'))
    f.error(key, 'cannot have both a RequestRedirect and a URLRewrite filter');
  return out;
}

function timeouts(f: Fields | undefined): RouteTimeouts | undefined {
  if (f === undefined) return undefined;
  f.rejectUnknown(['request', 'backendRequest'], UNKNOWN_ROUTE_FIELD);
  const requestMs = gatewayDuration(f, 'request');
  const backendRequestMs = gatewayDuration(f, 'backendRequest');
  if (
    requestMs !== undefined &&
    requestMs !== 0 &&
    backendRequestMs !== undefined &&
    backendRequestMs > requestMs
  )
    f.error('backendRequest', `is longer than the request timeout (${show(f.raw('request'))})`);
  return {
    ...(requestMs === undefined ? {} : { requestMs }),
    ...(backendRequestMs === undefined ? {} : { backendRequestMs }),
  };
}

function retry(f: Fields | undefined): RouteRetry | undefined {
  if (f === undefined) return undefined;
  f.rejectUnknown(['codes', 'attempts', 'backoff'], UNKNOWN_ROUTE_FIELD);
  const codes =
    f.list('codes', (v, path) => {
      if (typeof v === 'number' && Number.isInteger(v) && v >= 400 && v <= 599) return v;
      f.sink.error(path, `${show(v)} is not an HTTP status code from 400 to 599`);
      return undefined;
    }) ?? [];
  if (new Set(codes).size !== codes.length) f.error('codes', 'lists a code twice');
  const attempts = f.int('attempts', { min: 1 });
  const backoffMs = gatewayDuration(f, 'backoff');
  return {
    codes,
    ...(attempts === undefined ? {} : { attempts }),
    ...(backoffMs === undefined ? {} : { backoffMs }),
  };
}

function rule(f: Fields): HttpRouteRule {
  f.rejectUnknown(
    ['name', 'matches', 'filters', 'backendRefs', 'timeouts', 'retry', 'sessionPersistence'],
    UNKNOWN_ROUTE_FIELD,
  );
  if (f.has('sessionPersistence')) f.error('sessionPersistence', 'is not supported by Ambit');
  const name = f.string('name', { check: sectionName });
  const parsedMatches = f.objects('matches', routeMatch, { max: 64 }) ?? [];
  const matches: HttpRouteMatch[] =
    parsedMatches.length > 0
      ? parsedMatches
      : [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] }];
  const fs = filters(f, 'filters', SUPPORTED_ON_RULE, 'a rule');
  const backends = backendRefs(f, (b, key) => filters(b, key, SUPPORTED_ON_BACKEND, 'a backendRef'));
  if (backends.length > 0 && fs.some((x) => x.type === 'RequestRedirect'))
    f.error('filters', 'has a RequestRedirect filter, which cannot be used together with backendRefs');
  const prefixRewrite = fs.some(
    (x) =>
      (x.type === 'RequestRedirect' && x.redirect.path?.type === 'ReplacePrefixMatch') ||
      (x.type === 'URLRewrite' && x.rewrite.path?.type === 'ReplacePrefixMatch'),
  );
  if (prefixRewrite && !(matches.length === 1 && matches[0]!.path.type === 'PathPrefix'))
    f.error('matches', 'must be exactly one PathPrefix match when a filter uses ReplacePrefixMatch');
  const t = timeouts(f.object('timeouts'));
  const r = retry(f.object('retry'));
  return {
    ...(name === undefined ? {} : { name }),
    matches,
    filters: fs,
    backendRefs: backends,
    ...(t === undefined ? {} : { timeouts: t }),
    ...(r === undefined ? {} : { retry: r }),
  };
}

/** Reads an HTTPRoute spec. Returns undefined when any error was reported (the route is rejected whole). */
export function parseHttpRoute(spec: Fields, meta: RouteMeta): HttpRoute | undefined {
  const { f, errors } = spec.counted();
  if (Array.isArray(f.raw('rules')) && (f.raw('rules') as unknown[]).length === 0)
    f.error('rules', 'must not be empty; leave it out for one rule that matches every request');
  const rules: HttpRouteRule[] = f.objects('rules', rule, { max: 16 }) ?? [
    {
      matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] }],
      filters: [],
      backendRefs: [],
    },
  ];
  const common = routeSpec(f, rules);
  if (errors() > 0) return undefined;
  return { ...meta, ...common, rules };
}
