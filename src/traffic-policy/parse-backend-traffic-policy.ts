import type { Fields } from '../config/field-reader.js';
import { show } from '../config/issue.js';
import { gatewayDuration, headerMatches } from '../gateway-api/parse-common.js';
import { parseHealthCheck, parseLoadBalancer } from './parse-balancing.js';
import { parseRateLimit } from './parse-rate-limit.js';
import { parseRetryConstraint } from './retry-budget.js';
import {
  type BackendTrafficPolicy,
  CIRCUIT_BREAKER_DEFAULT,
  type CircuitBreaker,
  type FaultAbort,
  type FaultDelay,
  type FaultInjection,
  type ServiceTargetRef,
} from './types.js';

/*
 * BackendTrafficPolicy spec -> BackendTrafficPolicy, with Envoy Gateway's defaults and validation
 * rules, so that a policy it would refuse is refused here with the field path and the reason. Fields
 * of Envoy Gateway's kind that Ambit does not enforce yet are refused by name rather than ignored.
 */

const UNKNOWN = 'is not a BackendTrafficPolicy field Ambit knows';
const SUPPORTED_FIELDS = [
  'circuitBreaker',
  'faultInjection',
  'retryConstraint',
  'loadBalancer',
  'healthCheck',
  'rateLimit',
];
const SUPPORTED = `(supported: ${SUPPORTED_FIELDS.join(', ')})`;
const NOT_YET = `is not supported by Ambit yet ${SUPPORTED}`;
const ENVOY_GATEWAY_FIELDS = [
  'targetRef',
  'targetSelectors',
  'mergeType',
  'retry',
  'tcpKeepalive',
  'timeout',
  'connection',
  'dns',
  'http2',
  'proxyProtocol',
  'useClientProtocol',
  'compression',
  'responseOverride',
  'requestBuffer',
  'telemetry',
  'routingType',
  'httpUpgrade',
];
const CIRCUIT_FIELDS = ['maxConnections', 'maxPendingRequests', 'maxParallelRequests', 'maxParallelRetries'];

export interface TrafficPolicyMeta {
  readonly namespace: string;
  readonly name: string;
}

/** A percentage 0 to 100 (a fraction allowed, as Envoy Gateway's float32); 100 when unset. */
function percentage(f: Fields): number {
  const v = f.raw('percentage');
  if (v === undefined || v === null) return 100;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 100) {
    f.error('percentage', `${show(v)} is not a number from 0 to 100`);
    return 100;
  }
  return v;
}

function targetRefs(f: Fields): ServiceTargetRef[] {
  const refs =
    f.objects(
      'targetRefs',
      (t) => {
        t.rejectUnknown(['group', 'kind', 'name', 'sectionName'], UNKNOWN);
        const group = t.string('group', { allowEmpty: true }) ?? '';
        const kind = t.string('kind', { required: true });
        const name = t.string('name', { required: true });
        if (t.has('sectionName'))
          t.error('sectionName', 'is not supported by Ambit (the policy covers the whole Service)');
        if (kind !== undefined && (group !== '' || kind !== 'Service')) {
          t.error(
            'kind',
            `${show(group === '' ? kind : `${kind}.${group}`)} is not a Service (a waypoint applies a BackendTrafficPolicy to the Services it serves; Gateway and route targets are not supported)`,
          );
          return undefined;
        }
        return name === undefined ? undefined : { name };
      },
      { required: true, nonEmpty: true },
    ) ?? [];
  return refs;
}

function circuitBreaker(f: Fields): CircuitBreaker {
  f.rejectUnknown([...CIRCUIT_FIELDS, 'maxRequestsPerConnection', 'perEndpoint'], UNKNOWN);
  for (const k of ['maxRequestsPerConnection', 'perEndpoint'])
    if (f.has(k)) f.error(k, NOT_YET.replace(SUPPORTED, `(supported: ${CIRCUIT_FIELDS.join(', ')})`));
  const limit = (k: string): number => f.int(k, { min: 0, max: 4294967295 }) ?? CIRCUIT_BREAKER_DEFAULT;
  return {
    maxConnections: limit('maxConnections'),
    maxPendingRequests: limit('maxPendingRequests'),
    maxParallelRequests: limit('maxParallelRequests'),
    maxParallelRetries: limit('maxParallelRetries'),
  };
}

function delay(f: Fields): FaultDelay | undefined {
  f.rejectUnknown(['fixedDelay', 'percentage'], UNKNOWN);
  const fixedDelayMs = gatewayDuration(f, 'fixedDelay');
  if (fixedDelayMs === undefined && !f.has('fixedDelay')) f.error('fixedDelay', 'is required');
  const p = percentage(f);
  return fixedDelayMs === undefined ? undefined : { fixedDelayMs, percentage: p };
}

function abort(f: Fields): FaultAbort | undefined {
  f.rejectUnknown(['httpStatus', 'grpcStatus', 'percentage'], UNKNOWN);
  const p = percentage(f);
  if (f.has('httpStatus') === f.has('grpcStatus')) {
    f.error('httpStatus', 'exactly one of httpStatus and grpcStatus must be set');
    return undefined;
  }
  if (f.has('httpStatus')) {
    const httpStatus = f.int('httpStatus', { min: 200, max: 599 });
    return httpStatus === undefined ? undefined : { httpStatus, percentage: p };
  }
  const grpcStatus = f.int('grpcStatus', { min: 0, max: 16 });
  return grpcStatus === undefined ? undefined : { grpcStatus, percentage: p };
}

function faultInjection(f: Fields): FaultInjection {
  f.rejectUnknown(['delay', 'abort', 'headers'], UNKNOWN);
  const d = f.object('delay');
  const a = f.object('abort');
  if (d === undefined && a === undefined && !f.has('delay') && !f.has('abort'))
    f.sink.error(f.path, 'needs a delay, an abort, or both');
  const delayed = d === undefined ? undefined : delay(d);
  const aborted = a === undefined ? undefined : abort(a);
  return {
    ...(delayed === undefined ? {} : { delay: delayed }),
    ...(aborted === undefined ? {} : { abort: aborted }),
    headers: headerMatches(f),
  };
}

/** Reads a BackendTrafficPolicy spec; undefined when any error was reported. */
export function parseBackendTrafficPolicy(
  spec: Fields,
  meta: TrafficPolicyMeta,
): BackendTrafficPolicy | undefined {
  const { f, errors } = spec.counted();
  f.rejectUnknown(['targetRefs', ...SUPPORTED_FIELDS, ...ENVOY_GATEWAY_FIELDS], UNKNOWN);
  for (const k of ENVOY_GATEWAY_FIELDS)
    if (f.has(k))
      f.error(
        k,
        k === 'targetRef' || k === 'targetSelectors'
          ? 'is not supported by Ambit; use targetRefs'
          : k === 'retry'
            ? `${NOT_YET}: set retries on the HTTPRoute rule (retry.attempts, retry.codes), and bound them with retryConstraint`
            : NOT_YET,
      );
  const refs = targetRefs(f);
  const cb = f.object('circuitBreaker');
  const fi = f.object('faultInjection');
  const rc = f.object('retryConstraint');
  const lb = f.object('loadBalancer');
  const hc = f.object('healthCheck');
  const rl = f.object('rateLimit');
  if ([cb, fi, rc, lb, hc, rl].every((x) => x === undefined) && errors() === 0)
    f.sink.warn(f.path, `sets none of ${SUPPORTED_FIELDS.join(', ')}: it changes nothing`);
  const circuit = cb === undefined ? undefined : circuitBreaker(cb);
  const fault = fi === undefined ? undefined : faultInjection(fi);
  const budget = rc === undefined ? undefined : parseRetryConstraint(rc, UNKNOWN);
  const balancer = lb === undefined ? undefined : parseLoadBalancer(lb);
  const health = hc === undefined ? undefined : parseHealthCheck(hc);
  const rate = rl === undefined ? undefined : parseRateLimit(rl);
  if (errors() > 0) return undefined;
  return {
    kind: 'BackendTrafficPolicy',
    namespace: meta.namespace,
    name: meta.name,
    targetRefs: refs,
    ...(circuit === undefined ? {} : { circuitBreaker: circuit }),
    ...(fault === undefined ? {} : { faultInjection: fault }),
    ...(budget === undefined ? {} : { retryConstraint: budget }),
    ...(balancer === undefined ? {} : { loadBalancer: balancer }),
    ...(health === undefined ? {} : { passiveHealthCheck: health }),
    ...(rate === undefined ? {} : { rateLimit: rate }),
  };
}
