import {
  type HashOn,
  isPrime,
  type LoadBalancer,
  type PassiveHealthCheck,
} from '../traffic-policy/balancing.js';

/* `LoadBalancer` and `OutlierDetection` in ambit.proto, as proto-loader gives them, and their codec. */

export interface WireLoadBalancer {
  type: string;
  hash_on: string;
  hash_name: string;
  cookie_ttl_ms: number;
  cookie_attributes: Record<string, string>;
  table_size: number;
}

export interface WireOutlierDetection {
  consecutive_5xx_errors: number;
  consecutive_gateway_errors: number;
  consecutive_local_origin_failures: number;
  split_external_local_origin_errors: boolean;
  interval_ms: number;
  base_ejection_time_ms: number;
  max_ejection_percent: number;
  always_eject_one_endpoint: boolean;
  panic_threshold: number;
}

export function encodeLoadBalancer(lb: LoadBalancer): WireLoadBalancer {
  const w: WireLoadBalancer = {
    type: lb.type,
    hash_on: '',
    hash_name: '',
    cookie_ttl_ms: 0,
    cookie_attributes: {},
    table_size: 0,
  };
  if (lb.type !== 'ConsistentHash') return w;
  const h = lb.hashOn;
  return {
    ...w,
    hash_on: h.type,
    hash_name: h.type === 'Header' || h.type === 'Cookie' ? h.name : '',
    cookie_ttl_ms: h.type === 'Cookie' ? (h.ttlMs ?? 0) : 0,
    cookie_attributes: h.type === 'Cookie' ? { ...h.attributes } : {},
    table_size: lb.tableSize,
  };
}

/** Decodes and checks a LoadBalancer; throws with the field at fault. */
export function decodeLoadBalancer(w: WireLoadBalancer): LoadBalancer {
  switch (w.type) {
    case 'RoundRobin':
    case 'LeastRequest':
    case 'Random':
      return { type: w.type };
    case 'ConsistentHash':
      break;
    default:
      throw new Error(`load_balancer.type: ${JSON.stringify(w.type)} is not a load balancer`);
  }
  if (!isPrime(w.table_size)) throw new Error(`load_balancer.table_size: ${w.table_size} is not a prime`);
  const named = (): string => {
    if (w.hash_name === '') throw new Error(`load_balancer.hash_name: is empty for ${w.hash_on}`);
    return w.hash_name;
  };
  let hashOn: HashOn;
  switch (w.hash_on) {
    case 'Header':
      hashOn = { type: 'Header', name: named() };
      break;
    case 'Cookie':
      hashOn = {
        type: 'Cookie',
        name: named(),
        ...(w.cookie_ttl_ms > 0 ? { ttlMs: w.cookie_ttl_ms } : {}),
        attributes: { ...(w.cookie_attributes ?? {}) },
      };
      break;
    case 'SourceIP':
    case 'SourceIdentity':
      hashOn = { type: w.hash_on };
      break;
    default:
      throw new Error(`load_balancer.hash_on: ${JSON.stringify(w.hash_on)} is not a hash source`);
  }
  return { type: 'ConsistentHash', hashOn, tableSize: w.table_size };
}

export function encodeOutlierDetection(p: PassiveHealthCheck): WireOutlierDetection {
  return {
    consecutive_5xx_errors: p.consecutive5xxErrors,
    consecutive_gateway_errors: p.consecutiveGatewayErrors,
    consecutive_local_origin_failures: p.consecutiveLocalOriginFailures,
    split_external_local_origin_errors: p.splitExternalLocalOriginErrors,
    interval_ms: p.intervalMs,
    base_ejection_time_ms: p.baseEjectionTimeMs,
    max_ejection_percent: p.maxEjectionPercent,
    always_eject_one_endpoint: p.alwaysEjectOneEndpoint,
    panic_threshold: p.panicThreshold,
  };
}

/** Decodes and checks an OutlierDetection; throws with the field at fault. */
export function decodeOutlierDetection(w: WireOutlierDetection): PassiveHealthCheck {
  for (const k of ['interval_ms', 'base_ejection_time_ms'] as const)
    if (!(w[k] > 0)) throw new Error(`health_check.${k}: ${w[k]} is not a positive duration`);
  for (const k of ['max_ejection_percent', 'panic_threshold'] as const)
    if (!(w[k] >= 0 && w[k] <= 100)) throw new Error(`health_check.${k}: ${w[k]} is not a percentage`);
  return {
    consecutive5xxErrors: w.consecutive_5xx_errors,
    consecutiveGatewayErrors: w.consecutive_gateway_errors,
    consecutiveLocalOriginFailures: w.consecutive_local_origin_failures,
    splitExternalLocalOriginErrors: w.split_external_local_origin_errors,
    intervalMs: w.interval_ms,
    baseEjectionTimeMs: w.base_ejection_time_ms,
    maxEjectionPercent: w.max_ejection_percent,
    alwaysEjectOneEndpoint: w.always_eject_one_endpoint,
    panicThreshold: w.panic_threshold,
  };
}
