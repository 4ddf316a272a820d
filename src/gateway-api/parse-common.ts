import type { Fields, StringCheck } from '../config/field-reader.js';
import { show } from '../config/issue.js';
import { dns1123Label, dns1123Subdomain } from '../config/validators.js';
import {
  type BackendObjectRef,
  type BackendRef,
  GATEWAY_GROUP,
  type HeaderMatch,
  type HeaderModifier,
  type ParentRef,
  type RequestMirror,
  type StringMatch,
} from './types.js';

/*
 * Parsers shared by HTTPRoute, GRPCRoute and Gateway: the field formats of the Gateway API CRDs
 * (apis/v1/shared_types.go), their defaults, and the cross-field rules the CRDs state in CEL.
 */

/** Unknown fields in a route are errors: an ignored, mistyped matcher would route more than meant. */
export const UNKNOWN_ROUTE_FIELD = 'a route with a field Ambit does not read is rejected';

const HOSTNAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const PRECISE_HOSTNAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
const KIND = /^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const GROUP = /^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const DURATION_PART = /([0-9]{1,5})(h|ms|m|s)/g;
const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

export const hostname: StringCheck = (v) =>
  v.length > 253 || !HOSTNAME.test(v)
    ? 'is not a hostname (lowercase DNS name, optionally starting with "*.")'
    : undefined;
export const preciseHostname: StringCheck = (v) =>
  v.length > 253 || !PRECISE_HOSTNAME.test(v) ? 'is not a hostname (lowercase DNS name)' : undefined;
/** RFC 9110 field values: no CR, LF or NUL (they would split or end the header), at most 4096 characters. */
export const headerValue: StringCheck = (v) =>
  v.length > 4096
    ? 'is longer than 4096 characters'
    : /[\r\n\0]/.test(v)
      ? 'contains a line break or NUL, which a header value may not'
      : undefined;
export const headerName: StringCheck = (v) =>
  v.length > 256 || !HEADER_NAME.test(v) ? 'is not an HTTP header name (RFC 7230 token)' : undefined;
export const sectionName: StringCheck = (v) =>
  dns1123Subdomain(v) === undefined ? undefined : 'is not a section name (lowercase DNS subdomain)';
const kind: StringCheck = (v) => (v.length <= 63 && KIND.test(v) ? undefined : 'is not a kind name');
const group: StringCheck = (v) => (v.length <= 253 && GROUP.test(v) ? undefined : 'is not an API group');
const regex: StringCheck = (v) => {
  try {
    new RegExp(v, 'u');
    return undefined;
  } catch (err) {
    return `is not a valid regular expression (${(err as Error).message})`;
  }
};

/** A Gateway API Duration (`10s`, `1h30m`, `500ms`), in milliseconds. */
export function gatewayDuration(f: Fields, key: string): number | undefined {
  const v = f.string(key, {
    check: (s) =>
      DURATION.test(s) ? undefined : 'is not a duration (e.g. 10s, 1m30s, 500ms; at most 4 parts)',
  });
  if (v === undefined) return undefined;
  let ms = 0;
  for (const m of v.matchAll(DURATION_PART)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms;
}

/** `parentRefs`: each defaults to group gateway.networking.k8s.io, kind Gateway. */
export function parentRefs(f: Fields): ParentRef[] {
  const refs =
    f.objects(
      'parentRefs',
      (p) => {
        p.rejectUnknown(['group', 'kind', 'namespace', 'name', 'sectionName', 'port'], UNKNOWN_ROUTE_FIELD);
        const name = p.string('name', { required: true, check: dns1123Subdomain });
        const g = p.string('group', { allowEmpty: true, check: group }) ?? GATEWAY_GROUP;
        const k = p.string('kind', { check: kind }) ?? 'Gateway';
        const namespace = p.string('namespace', { check: dns1123Label });
        const sn = p.string('sectionName', { check: sectionName });
        const port = p.int('port', { min: 1, max: 65535 });
        if (name === undefined) return undefined;
        // On a Service parent, sectionName is a port name (ParentReference.SectionName: "Service: Port name").
        return {
          group: g,
          kind: k,
          name,
          ...(namespace === undefined ? {} : { namespace }),
          ...(sn === undefined ? {} : { sectionName: sn }),
          ...(port === undefined ? {} : { port }),
        };
      },
      { max: 32 },
    ) ?? [];
  const seen = new Set<string>();
  refs.forEach((r, i) => {
    const key = JSON.stringify([
      r.group,
      r.kind,
      r.namespace ?? '',
      r.name,
      r.sectionName ?? '',
      r.port ?? 0,
    ]);
    if (seen.has(key))
      f.sink.error(f.at('parentRefs').concat(i), 'names the same parent as an earlier entry');
    seen.add(key);
  });
  return refs;
}

export function hostnames(f: Fields): string[] {
  return f.stringList('hostnames', { check: hostname }) ?? [];
}

/** A backend object reference: a Service unless group/kind say otherwise; a Service needs a port. */
export function backendObjectRef(f: Fields, extra: readonly string[] = []): BackendObjectRef | undefined {
  f.rejectUnknown(['group', 'kind', 'name', 'namespace', 'port', ...extra], UNKNOWN_ROUTE_FIELD);
  const name = f.string('name', { required: true, check: dns1123Subdomain });
  const g = f.string('group', { allowEmpty: true, check: group }) ?? '';
  const k = f.string('kind', { check: kind }) ?? 'Service';
  const namespace = f.string('namespace', { check: dns1123Label });
  const port = f.int('port', { min: 1, max: 65535 });
  if (g === '' && k === 'Service' && port === undefined && !f.has('port'))
    f.error('port', 'is required for a Service backend');
  if (name === undefined) return undefined;
  return {
    group: g,
    kind: k,
    name,
    ...(namespace === undefined ? {} : { namespace }),
    ...(port === undefined ? {} : { port }),
  };
}

/** `backendRefs`: weighted references (weight 1 by default), each with its own filters. */
export function backendRefs<F>(f: Fields, filters: (f: Fields, key: string) => F[]): BackendRef<F>[] {
  return (
    f.objects(
      'backendRefs',
      (b) => {
        const ref = backendObjectRef(b, ['weight', 'filters']);
        const weight = b.int('weight', { min: 0, max: 1_000_000 }) ?? 1;
        const fs = filters(b, 'filters');
        return ref === undefined ? undefined : { ...ref, weight, filters: fs };
      },
      { max: 16 },
    ) ?? []
  );
}

/** Exact (the default) or RegularExpression, on a value of at most `maxLength`. */
export function stringMatch(f: Fields, maxLength: number): StringMatch | undefined {
  const type = f.oneOf('type', ['Exact', 'RegularExpression'] as const) ?? 'Exact';
  const value = f.string('value', {
    required: true,
    check: (v) =>
      v.length > maxLength
        ? `is ${v.length} characters long; at most ${maxLength} are allowed`
        : type === 'RegularExpression'
          ? regex(v)
          : undefined,
  });
  return value === undefined ? undefined : { type, value };
}

/** Header matches: names case-insensitive and unique. */
export function headerMatches(f: Fields): HeaderMatch[] {
  const seen = new Set<string>();
  return (
    f.objects(
      'headers',
      (h) => {
        h.rejectUnknown(['type', 'name', 'value'], UNKNOWN_ROUTE_FIELD);
        const name = h.string('name', { required: true, check: headerName })?.toLowerCase();
        const match = stringMatch(h, 4096);
        if (name === undefined || match === undefined) return undefined;
        if (seen.has(name))
          h.error('name', `${show(name)} is matched by an earlier entry (names are case-insensitive)`);
        seen.add(name);
        return { name, match };
      },
      { max: 16 },
    ) ?? []
  );
}

function headerList(f: Fields, key: string): { name: string; value: string }[] {
  const seen = new Set<string>();
  return (
    f.objects(
      key,
      (h) => {
        h.rejectUnknown(['name', 'value'], UNKNOWN_ROUTE_FIELD);
        const name = h.string('name', { required: true, check: headerName })?.toLowerCase();
        const value = h.string('value', { required: true, check: headerValue });
        if (name === undefined || value === undefined) return undefined;
        if (seen.has(name)) h.error('name', `${show(name)} appears twice in ${key}`);
        seen.add(name);
        return { name, value };
      },
      { max: 16 },
    ) ?? []
  );
}

/** RequestHeaderModifier / ResponseHeaderModifier: set, add, remove. */
export function headerModifier(f: Fields): HeaderModifier {
  f.rejectUnknown(['set', 'add', 'remove'], UNKNOWN_ROUTE_FIELD);
  const set = headerList(f, 'set');
  const add = headerList(f, 'add');
  const remove = (f.stringList('remove', { check: headerName }) ?? []).map((n) => n.toLowerCase());
  if (Array.isArray(f.raw('remove')) && (f.raw('remove') as unknown[]).length > 16)
    f.error('remove', 'has more than 16 names');
  if (new Set(remove).size !== remove.length) f.error('remove', 'names a header twice');
  if (set.length + add.length + remove.length === 0)
    f.sink.warn(f.path, 'sets, adds and removes nothing; the filter has no effect');
  return { set, add, remove };
}

/** RequestMirror: a backend and the share of requests to copy there (`percent` or `fraction`). */
export function requestMirror(f: Fields): RequestMirror | undefined {
  f.rejectUnknown(['backendRef', 'percent', 'fraction'], UNKNOWN_ROUTE_FIELD);
  const b = f.object('backendRef', { required: true });
  const ref = b === undefined ? undefined : backendObjectRef(b);
  const percent = f.int('percent', { min: 0, max: 100 });
  let fraction = percent === undefined ? 1 : percent / 100;
  const fr = f.object('fraction');
  if (fr !== undefined) {
    if (percent !== undefined) f.error('fraction', 'cannot be set together with percent');
    fr.rejectUnknown(['numerator', 'denominator'], UNKNOWN_ROUTE_FIELD);
    const num = fr.int('numerator', { required: true, min: 0 });
    const den = fr.int('denominator', { min: 1 }) ?? 100;
    if (num !== undefined && num > den)
      fr.error('numerator', `${num} is greater than the denominator ${den}`);
    if (num !== undefined) fraction = Math.min(1, num / den);
  }
  return ref === undefined ? undefined : { backendRef: ref, fraction };
}

/** Reports a filter type that appears more often than the CRDs allow. */
export function atMostOnce(
  f: Fields,
  key: string,
  types: readonly string[],
  filters: readonly { type: string }[],
): void {
  for (const t of types) {
    if (filters.filter((x) => x.type === t).length > 1)
      f.error(key, `has more than one ${t} filter; at most one is allowed`);
  }
}

/**
 * What HTTPRoute and GRPCRoute specs share around their rules: parentRefs (a route attached to nothing
 * is kept, with a warning), hostnames, and the limits on rules (at most 128 matches in all, unique names).
 */
export function routeSpec<R extends { readonly name?: string; readonly matches: readonly unknown[] }>(
  f: Fields,
  rules: readonly R[],
): { parentRefs: ParentRef[]; hostnames: string[] } {
  f.rejectUnknown(['parentRefs', 'hostnames', 'rules', 'useDefaultGateways'], UNKNOWN_ROUTE_FIELD);
  if (f.has('useDefaultGateways')) f.error('useDefaultGateways', 'is not supported by Ambit');
  const refs = parentRefs(f);
  if (refs.length === 0)
    f.sink.warn(f.at('parentRefs'), 'is empty: the route attaches to nothing and has no effect');
  const total = rules.reduce((n, r) => n + r.matches.length, 0);
  if (total > 128) f.error('rules', `have ${total} matches in all; at most 128 are allowed across all rules`);
  const names = rules.map((r) => r.name).filter((n) => n !== undefined);
  if (new Set(names).size !== names.length)
    f.error('rules', 'name two rules alike; rule names must be unique');
  return { parentRefs: refs, hostnames: hostnames(f) };
}
