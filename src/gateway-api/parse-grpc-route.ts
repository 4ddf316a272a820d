import type { Fields } from '../config/field-reader.js';
import {
  atMostOnce,
  backendRefs,
  headerMatches,
  headerModifier,
  requestMirror,
  routeSpec,
  sectionName,
  UNKNOWN_ROUTE_FIELD,
} from './parse-common.js';
import type { RouteMeta } from './parse-http-route.js';
import type { GrpcFilter, GrpcMethodMatch, GrpcRoute, GrpcRouteMatch, GrpcRouteRule } from './types.js';

/* GRPCRoute (`gateway.networking.k8s.io/v1`) -> GrpcRoute, with the CRD's defaults and rules. */

const SERVICE = /^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$/i;
const METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

function methodMatch(f: Fields | undefined): GrpcMethodMatch | undefined {
  if (f === undefined) return undefined;
  f.rejectUnknown(['type', 'service', 'method'], UNKNOWN_ROUTE_FIELD);
  const type = f.oneOf('type', ['Exact', 'RegularExpression'] as const) ?? 'Exact';
  const checkRe = (v: string): string | undefined => {
    try {
      new RegExp(v, 'u');
      return undefined;
    } catch (err) {
      return `is not a valid regular expression (${(err as Error).message})`;
    }
  };
  const service = f.string('service', {
    check: (v) =>
      v.length > 1024
        ? 'is longer than 1024 characters'
        : type === 'Exact'
          ? SERVICE.test(v)
            ? undefined
            : 'is not a gRPC service name (package.Service)'
          : checkRe(v),
  });
  const method = f.string('method', {
    check: (v) =>
      v.length > 1024
        ? 'is longer than 1024 characters'
        : type === 'Exact'
          ? METHOD.test(v)
            ? undefined
            : 'is not a gRPC method name'
          : checkRe(v),
  });
  if (!f.has('service') && !f.has('method')) f.sink.error(f.path, 'must set service, method or both');
  return {
    type,
    ...(service === undefined ? {} : { service }),
    ...(method === undefined ? {} : { method }),
  };
}

function routeMatch(f: Fields): GrpcRouteMatch {
  f.rejectUnknown(['method', 'headers'], UNKNOWN_ROUTE_FIELD);
  const method = methodMatch(f.object('method'));
  return { ...(method === undefined ? {} : { method }), headers: headerMatches(f) };
}

function filter(f: Fields): GrpcFilter | undefined {
  const fields = {
    RequestHeaderModifier: 'requestHeaderModifier',
    ResponseHeaderModifier: 'responseHeaderModifier',
    RequestMirror: 'requestMirror',
    ExtensionRef: 'extensionRef',
  } as const;
  f.rejectUnknown(['type', ...Object.values(fields)], UNKNOWN_ROUTE_FIELD);
  const type = f.oneOf('type', Object.keys(fields) as (keyof typeof fields)[], { required: true });
  if (type === undefined) return undefined;
  for (const [t, field] of Object.entries(fields))
    if (t !== type && f.has(field)) f.error(field, `must not be set when the filter type is ${type}`);
  if (type === 'ExtensionRef') {
    f.error('type', 'ExtensionRef filters are not supported by Ambit');
    return undefined;
  }
  const body = f.object(fields[type], { required: true });
  if (body === undefined) return undefined;
  if (type === 'RequestMirror') {
    const mirror = requestMirror(body);
    return mirror === undefined ? undefined : { type, mirror };
  }
  return { type, headers: headerModifier(body) };
}

function filters(f: Fields, key: string): GrpcFilter[] {
  const out = f.objects(key, filter, { max: 16 }) ?? [];
  atMostOnce(f, key, ['RequestHeaderModifier', 'ResponseHeaderModifier'], out);
  return out;
}

function rule(f: Fields): GrpcRouteRule {
  f.rejectUnknown(['name', 'matches', 'filters', 'backendRefs', 'sessionPersistence'], UNKNOWN_ROUTE_FIELD);
  if (f.has('sessionPersistence')) f.error('sessionPersistence', 'is not supported by Ambit');
  const name = f.string('name', { check: sectionName });
  return {
    ...(name === undefined ? {} : { name }),
    matches: f.objects('matches', routeMatch, { max: 64 }) ?? [],
    filters: filters(f, 'filters'),
    backendRefs: backendRefs(f, filters),
  };
}

/** Reads a GRPCRoute spec. Returns undefined when any error was reported. */
export function parseGrpcRoute(spec: Fields, meta: RouteMeta): GrpcRoute | undefined {
  const { f, errors } = spec.counted();
  const rules = f.objects('rules', rule, { max: 16 }) ?? [];
  const common = routeSpec(f, rules);
  if (errors() > 0) return undefined;
  return { ...meta, ...common, rules };
}
