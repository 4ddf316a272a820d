import type { Fields } from '../config/field-reader.js';
import { show } from '../config/issue.js';
import { cidr } from '../config/validators.js';
import { headerName } from '../gateway-api/parse-common.js';
import {
  type LocalRateLimit,
  RATE_LIMIT_UNITS,
  type RateLimitClientSelector,
  type RateLimitHeaderSelector,
  type RateLimitRule,
  type RateLimitSourceCidr,
  type RateLimitSourceIdentity,
} from './rate-limit.js';

/*
 * BackendTrafficPolicy `rateLimit` -> LocalRateLimit, with Envoy Gateway's field shapes, defaults and
 * limits (16 rules, 8 selectors a rule, 16 headers a selector). Global limits need a rate-limit service,
 * which Ambit does not have; they, and the fields Ambit does not enforce, are refused by name.
 */

const UNKNOWN = 'is not a BackendTrafficPolicy field Ambit knows';
const NOT_YET = (supported: string): string => `is not supported by Ambit yet (supported: ${supported})`;

const regex = (v: string): string | undefined => {
  try {
    new RegExp(v, 'u');
    return undefined;
  } catch (err) {
    return `is not a valid regular expression (${(err as Error).message})`;
  }
};

function header(h: Fields): RateLimitHeaderSelector | undefined {
  h.rejectUnknown(['name', 'type', 'value', 'invert'], UNKNOWN);
  const name = h.string('name', { required: true, check: headerName })?.toLowerCase();
  const type = h.oneOf('type', ['Exact', 'RegularExpression', 'Distinct'] as const) ?? 'Exact';
  if (type === 'Distinct') {
    for (const k of ['value', 'invert'])
      if (h.has(k)) h.error(k, 'must not be set with type Distinct (each value has its own bucket)');
    return name === undefined ? undefined : { name, type };
  }
  const value = h.string('value', {
    required: true,
    allowEmpty: true,
    check: (v) =>
      v.length > 1024
        ? `is ${v.length} characters long; at most 1024 are allowed`
        : type === 'RegularExpression'
          ? regex(v)
          : undefined,
  });
  const invert = h.bool('invert') ?? false;
  return name === undefined || value === undefined ? undefined : { name, type, value, invert };
}

function sourceCidr(c: Fields): RateLimitSourceCidr | undefined {
  c.rejectUnknown(['type', 'value'], UNKNOWN);
  const type = c.oneOf('type', ['Exact', 'Distinct'] as const) ?? 'Exact';
  const value = c.string('value', {
    required: true,
    check: (v) => cidr(v) ?? (v.includes('/') ? undefined : 'is not a CIDR (address/bits)'),
  });
  return value === undefined ? undefined : { type, cidr: value };
}

function sourceIdentity(c: Fields): RateLimitSourceIdentity | undefined {
  c.rejectUnknown(['type', 'value'], UNKNOWN);
  const type = c.oneOf('type', ['Exact', 'Distinct'] as const) ?? 'Exact';
  if (type === 'Distinct') {
    if (c.has('value'))
      c.error('value', 'must not be set with type Distinct (each identity has its own bucket)');
    return { type };
  }
  const value = c.string('value', {
    required: true,
    check: (v) =>
      /^(spiffe:\/\/)?[^/]+\/ns\/[^/]+\/sa\/[^/]+$/.test(v)
        ? undefined
        : 'is not a workload identity (spiffe://<trust-domain>/ns/<ns>/sa/<serviceaccount>)',
  });
  return value === undefined ? undefined : { type, value };
}

function clientSelector(s: Fields): RateLimitClientSelector | undefined {
  s.rejectUnknown(['headers', 'methods', 'path', 'sourceCIDR', 'sourceIdentity'], UNKNOWN);
  for (const k of ['methods', 'path'])
    if (s.has(k)) s.error(k, NOT_YET('headers, sourceCIDR, sourceIdentity'));
  if (
    !s.has('headers') &&
    !s.has('sourceCIDR') &&
    !s.has('sourceIdentity') &&
    !s.has('methods') &&
    !s.has('path')
  )
    s.sink.error(s.path, 'needs at least one of headers, sourceCIDR or sourceIdentity');
  const headers = s.objects('headers', header, { max: 16 }) ?? [];
  const c = s.object('sourceCIDR');
  const i = s.object('sourceIdentity');
  const sourceCIDR = c === undefined ? undefined : sourceCidr(c);
  const identity = i === undefined ? undefined : sourceIdentity(i);
  return {
    headers,
    ...(sourceCIDR === undefined ? {} : { sourceCIDR }),
    ...(identity === undefined ? {} : { sourceIdentity: identity }),
  };
}

function rule(r: Fields): RateLimitRule | undefined {
  r.rejectUnknown(['clientSelectors', 'limit', 'cost', 'shared', 'shadowMode'], UNKNOWN);
  if (r.has('cost')) r.error('cost', NOT_YET('clientSelectors, limit, shared'));
  if (r.has('shadowMode')) r.error('shadowMode', 'is only for Global rate limits (as in Envoy Gateway)');
  const clientSelectors = r.objects('clientSelectors', clientSelector, { max: 8 }) ?? [];
  const shared = r.bool('shared') ?? false;
  const l = r.object('limit', { required: true });
  if (l === undefined) return undefined;
  l.rejectUnknown(['requests', 'unit'], UNKNOWN);
  const requests = l.int('requests', { required: true, min: 1, max: 4294967295 });
  const unit = l.string('unit', { required: true });
  if (unit === 'Month' || unit === 'Year') {
    l.error(
      'unit',
      `${show(unit)} is only for Global rate limits (a local bucket uses Second, Minute, Hour or Day)`,
    );
    return undefined;
  }
  if (unit !== undefined && !(RATE_LIMIT_UNITS as readonly string[]).includes(unit)) {
    l.error('unit', `${show(unit)} is not one of ${RATE_LIMIT_UNITS.join(', ')}`);
    return undefined;
  }
  if (requests === undefined || unit === undefined) return undefined;
  return {
    clientSelectors,
    limit: { requests, unit: unit as RateLimitRule['limit']['unit'] },
    shared,
  };
}

/**
 * Reads `rateLimit`: Envoy Gateway's deprecated `type: Local` with `local`, or `local` alone. Errors go
 * to the sink with their field path; undefined when nothing usable was read.
 */
export function parseRateLimit(f: Fields): LocalRateLimit | undefined {
  f.rejectUnknown(['type', 'local', 'global'], UNKNOWN);
  const type = f.oneOf('type', ['Local', 'Global'] as const);
  if (type === 'Global' || f.has('global')) {
    f.error(
      f.has('global') ? 'global' : 'type',
      'Global rate limits need a rate-limit service, which Ambit does not have; use local (each waypoint replica limits on its own)',
    );
    return undefined;
  }
  const l = f.object('local', { required: true });
  if (l === undefined) return undefined;
  l.rejectUnknown(['rules'], UNKNOWN);
  const rules = l.objects('rules', rule, { required: true, nonEmpty: true, max: 16 });
  return rules === undefined ? undefined : { rules };
}
