import type { Fields } from '../config/field-reader.js';
import { show } from '../config/issue.js';
import { gatewayDuration } from '../gateway-api/parse-common.js';
import {
  type HashOn,
  isPrime,
  type LoadBalancer,
  MAGLEV_TABLE_SIZE_DEFAULT,
  MAGLEV_TABLE_SIZE_MAX,
  PASSIVE_HEALTH_CHECK_DEFAULTS,
  type PassiveHealthCheck,
} from './balancing.js';

/*
 * `loadBalancer` and `healthCheck` of a BackendTrafficPolicy, with Envoy Gateway's defaults and its
 * validation rules (a consistentHash only with type ConsistentHash, a header only with type Header...).
 * Envoy Gateway fields Ambit does not carry out are refused by name.
 */

const UNKNOWN = 'is not a BackendTrafficPolicy field Ambit knows';
const notYet = (supported: readonly string[]): string =>
  `is not supported by Ambit yet (supported: ${supported.join(', ')})`;

const LB_TYPES = ['RoundRobin', 'LeastRequest', 'Random', 'ConsistentHash'] as const;
const LB_FIELDS = ['type', 'consistentHash'];
const HASH_TYPES = ['Header', 'Cookie', 'SourceIP', 'SourceIdentity'] as const;
const HASH_FIELDS = ['type', 'header', 'cookie', 'tableSize'];
const PASSIVE_FIELDS = [
  'consecutive5XxErrors',
  'consecutiveGatewayErrors',
  'consecutiveLocalOriginFailures',
  'splitExternalLocalOriginErrors',
  'interval',
  'baseEjectionTime',
  'maxEjectionPercent',
  'alwaysEjectOneEndpoint',
];

/** An HTTP header name (RFC 9110 token), lowercased as the waypoint sees headers. */
function headerName(f: Fields): string | undefined {
  return f
    .string('name', {
      required: true,
      check: (s) => (/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(s) ? undefined : 'is not an HTTP header name'),
    })
    ?.toLowerCase();
}

function hashOn(f: Fields): { hashOn: HashOn; tableSize: number } | undefined {
  f.rejectUnknown([...HASH_FIELDS, 'headers', 'queryParams'], UNKNOWN);
  for (const k of ['headers', 'queryParams'])
    if (f.has(k)) f.error(k, notYet(HASH_TYPES.map((t) => `type ${t}`)));
  const type = f.oneOf('type', HASH_TYPES, { required: true });
  const tableSize = f.int('tableSize', { min: 2, max: MAGLEV_TABLE_SIZE_MAX }) ?? MAGLEV_TABLE_SIZE_DEFAULT;
  if (f.has('tableSize') && !isPrime(tableSize)) f.error('tableSize', `${tableSize} is not a prime number`);
  for (const [k, t] of [
    ['header', 'Header'],
    ['cookie', 'Cookie'],
  ] as const)
    if (type !== undefined && type !== t && f.has(k)) f.error(k, `is only allowed with type ${t}`);
  switch (type) {
    case undefined:
      return undefined;
    case 'Header': {
      const h = f.object('header', { required: true });
      if (h === undefined) return undefined;
      h.rejectUnknown(['name'], UNKNOWN);
      const name = headerName(h);
      return name === undefined ? undefined : { hashOn: { type, name }, tableSize };
    }
    case 'Cookie': {
      const c = f.object('cookie', { required: true });
      if (c === undefined) return undefined;
      c.rejectUnknown(['name', 'ttl', 'attributes'], UNKNOWN);
      const name = c.string('name', {
        required: true,
        check: (s) => (/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(s) ? undefined : 'is not a cookie name'),
      });
      const ttlMs = gatewayDuration(c, 'ttl');
      if (ttlMs !== undefined && ttlMs < 1000)
        c.error('ttl', `${show(c.raw('ttl'))} is under 1s (Max-Age is in seconds)`);
      const attributes =
        c.stringMap('attributes', {
          keyCheck: (k) =>
            /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) ? undefined : 'is not a cookie attribute name',
          valueCheck: (v) => (/[;\r\n]/.test(v) ? 'must not contain ";" or a line break' : undefined),
        }) ?? {};
      return name === undefined
        ? undefined
        : { hashOn: { type, name, ...(ttlMs === undefined ? {} : { ttlMs }), attributes }, tableSize };
    }
    default:
      return { hashOn: { type }, tableSize };
  }
}

/** `loadBalancer`; undefined after an error. */
export function parseLoadBalancer(f: Fields): LoadBalancer | undefined {
  f.rejectUnknown([...LB_FIELDS, 'slowStart', 'zoneAware', 'endpointOverride'], UNKNOWN);
  for (const k of ['slowStart', 'zoneAware', 'endpointOverride']) if (f.has(k)) f.error(k, notYet(LB_FIELDS));
  const type = f.oneOf('type', LB_TYPES, { required: true });
  const ch = f.object('consistentHash');
  if (type === 'ConsistentHash') {
    if (ch === undefined) {
      if (!f.has('consistentHash')) f.error('consistentHash', 'is required with type ConsistentHash');
      return undefined;
    }
    const h = hashOn(ch);
    return h === undefined ? undefined : { type, ...h };
  }
  if (type !== undefined && f.has('consistentHash'))
    f.error('consistentHash', 'is only allowed with type ConsistentHash');
  return type === undefined ? undefined : { type };
}

function passive(f: Fields, panicThreshold: number): PassiveHealthCheck {
  f.rejectUnknown([...PASSIVE_FIELDS, 'failurePercentageThreshold'], UNKNOWN);
  if (f.has('failurePercentageThreshold')) f.error('failurePercentageThreshold', notYet(PASSIVE_FIELDS));
  const d = PASSIVE_HEALTH_CHECK_DEFAULTS;
  const count = (k: string, dflt: number): number => f.int(k, { min: 0, max: 4294967295 }) ?? dflt;
  const positive = (k: string, dflt: number): number => {
    const ms = gatewayDuration(f, k);
    if (ms === 0) f.error(k, 'must be longer than 0s');
    return ms === undefined || ms === 0 ? dflt : ms;
  };
  return {
    consecutive5xxErrors: count('consecutive5XxErrors', d.consecutive5xxErrors),
    consecutiveGatewayErrors: count('consecutiveGatewayErrors', d.consecutiveGatewayErrors),
    consecutiveLocalOriginFailures: count('consecutiveLocalOriginFailures', d.consecutiveLocalOriginFailures),
    splitExternalLocalOriginErrors:
      f.bool('splitExternalLocalOriginErrors') ?? d.splitExternalLocalOriginErrors,
    intervalMs: positive('interval', d.intervalMs),
    baseEjectionTimeMs: positive('baseEjectionTime', d.baseEjectionTimeMs),
    maxEjectionPercent: f.int('maxEjectionPercent', { min: 0, max: 100 }) ?? d.maxEjectionPercent,
    alwaysEjectOneEndpoint: f.bool('alwaysEjectOneEndpoint') ?? d.alwaysEjectOneEndpoint,
    panicThreshold,
  };
}

/** `healthCheck`: its passive part (active health checks are refused by name); undefined when there is none. */
export function parseHealthCheck(f: Fields): PassiveHealthCheck | undefined {
  f.rejectUnknown(['passive', 'active', 'panicThreshold'], UNKNOWN);
  if (f.has('active')) f.error('active', notYet(['passive', 'panicThreshold']));
  const panic = f.int('panicThreshold', { min: 0, max: 100 }) ?? PASSIVE_HEALTH_CHECK_DEFAULTS.panicThreshold;
  const p = f.object('passive');
  if (p === undefined && !f.has('passive') && !f.has('active'))
    f.sink.error(f.path, 'needs passive (panicThreshold alone changes nothing without it)');
  return p === undefined ? undefined : passive(p, panic);
}
