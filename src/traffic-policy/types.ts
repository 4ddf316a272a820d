import type { HeaderMatch } from '../gateway-api/types.js';
import type { LoadBalancer, PassiveHealthCheck } from './balancing.js';
import type { LocalRateLimit } from './rate-limit.js';
import type { RetryConstraint } from './retry-budget.js';

/**
 * Backend traffic policy (`traffic.ambit.dev/v1alpha1` BackendTrafficPolicy), field for field after
 * Envoy Gateway's: protections a waypoint applies to the requests it sends to a Service. Readonly, with
 * every default applied, so that nothing past the parser has to know what an absent field means.
 */

export const TRAFFIC_API_VERSION = 'traffic.ambit.dev/v1alpha1';

/** Envoy's default for every circuit-breaker threshold. */
export const CIRCUIT_BREAKER_DEFAULT = 1024;

/**
 * Limits on what one waypoint replica has in flight to the Service (all its endpoints together). A
 * request over a limit is answered 503 with response flag UO at once; nothing waits without bound.
 */
export interface CircuitBreaker {
  /** Upstream connections in use at once (an HTTP/1.1 attempt holds one for its whole exchange). */
  readonly maxConnections: number;
  /** Requests waiting for a connection when all `maxConnections` are in use. */
  readonly maxPendingRequests: number;
  /** Requests in flight (from admission until the response has ended). */
  readonly maxParallelRequests: number;
  /** Retries in flight; a retry over the limit is not made (the last answer stands). */
  readonly maxParallelRetries: number;
}

export interface FaultDelay {
  readonly fixedDelayMs: number;
  /** Share of requests delayed, 0 to 100. */
  readonly percentage: number;
}

export type FaultAbort =
  | { readonly httpStatus: number; readonly percentage: number }
  | { readonly grpcStatus: number; readonly percentage: number };

export interface FaultInjection {
  readonly delay?: FaultDelay;
  readonly abort?: FaultAbort;
  /** Only requests that match all of these are faulted (Envoy's fault filter `headers`); empty: all. */
  readonly headers: readonly HeaderMatch[];
}

/** A Service in the policy's namespace (core group, kind Service). */
export interface ServiceTargetRef {
  readonly name: string;
}

export interface BackendTrafficPolicy {
  readonly kind: 'BackendTrafficPolicy';
  readonly namespace: string;
  readonly name: string;
  readonly targetRefs: readonly ServiceTargetRef[];
  readonly circuitBreaker?: CircuitBreaker;
  readonly faultInjection?: FaultInjection;
  /** `loadBalancer`: how the waypoint picks the endpoint of each attempt (unset: least request). */
  readonly loadBalancer?: LoadBalancer;
  /** `healthCheck.passive`: outlier detection. */
  readonly passiveHealthCheck?: PassiveHealthCheck;
  readonly retryConstraint?: RetryConstraint;
  readonly rateLimit?: LocalRateLimit;
}

/** What a Service carries in the pushed config: the one policy in force for it, by name. */
export interface AppliedTrafficPolicy {
  /** `ns/name` of the BackendTrafficPolicy. */
  readonly policy: string;
  readonly circuitBreaker?: CircuitBreaker;
  readonly faultInjection?: FaultInjection;
  readonly loadBalancer?: LoadBalancer;
  readonly passiveHealthCheck?: PassiveHealthCheck;
  /** The retry budget; unset: none (retries are bounded by the route's attempts). */
  readonly retryConstraint?: RetryConstraint;
  readonly rateLimit?: LocalRateLimit;
}

/**
 * The policy in force for a Service: of those that target it, the first by name (Envoy Gateway takes
 * the oldest; names are what a file-based config can order by). Undefined when none targets it.
 */
export function trafficPolicyFor(
  service: { readonly namespace: string; readonly name: string },
  policies: Iterable<BackendTrafficPolicy>,
): AppliedTrafficPolicy | undefined {
  let best: BackendTrafficPolicy | undefined;
  for (const p of policies) {
    if (p.namespace !== service.namespace || !p.targetRefs.some((t) => t.name === service.name)) continue;
    if (best === undefined || p.name < best.name) best = p;
  }
  if (best === undefined) return undefined;
  return {
    policy: `${best.namespace}/${best.name}`,
    ...(best.circuitBreaker === undefined ? {} : { circuitBreaker: best.circuitBreaker }),
    ...(best.faultInjection === undefined ? {} : { faultInjection: best.faultInjection }),
    ...(best.loadBalancer === undefined ? {} : { loadBalancer: best.loadBalancer }),
    ...(best.passiveHealthCheck === undefined ? {} : { passiveHealthCheck: best.passiveHealthCheck }),
    ...(best.retryConstraint === undefined ? {} : { retryConstraint: best.retryConstraint }),
    ...(best.rateLimit === undefined ? {} : { rateLimit: best.rateLimit }),
  };
}
