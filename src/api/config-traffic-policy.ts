import type { RetryConstraint } from '../traffic-policy/retry-budget.js';
import type { AppliedTrafficPolicy, FaultAbort, FaultInjection } from '../traffic-policy/types.js';
import {
  decodeLoadBalancer,
  decodeOutlierDetection,
  encodeLoadBalancer,
  encodeOutlierDetection,
  type WireLoadBalancer,
  type WireOutlierDetection,
} from './config-balancing.js';
import { decodeRateLimit, encodeRateLimit, type WireRateLimit } from './config-rate-limit.js';
import { decodeNamed, named, type WireNamedMatch } from './config-routes.js';

/** `TrafficPolicy` in ambit.proto, as proto-loader gives it. */
export interface WireTrafficPolicy {
  policy: string;
  circuit_breaker: {
    max_connections: number;
    max_pending_requests: number;
    max_parallel_requests: number;
    max_parallel_retries: number;
  } | null;
  fault_injection: {
    delay: { fixed_delay_ms: number; percentage: number } | null;
    abort: { http_status: number; grpc: boolean; grpc_status: number; percentage: number } | null;
    headers: WireNamedMatch[];
  } | null;
  health_check: WireOutlierDetection | null;
  load_balancer: WireLoadBalancer | null;
  retry_constraint?: {
    budget_percent: number;
    budget_interval_ms: number;
    min_retry_count: number;
    min_retry_interval_ms: number;
  } | null;
  rate_limit: WireRateLimit | null;
}

export function encodeTrafficPolicy(p: AppliedTrafficPolicy): WireTrafficPolicy {
  const cb = p.circuitBreaker;
  const fi = p.faultInjection;
  return {
    policy: p.policy,
    circuit_breaker:
      cb === undefined
        ? null
        : {
            max_connections: cb.maxConnections,
            max_pending_requests: cb.maxPendingRequests,
            max_parallel_requests: cb.maxParallelRequests,
            max_parallel_retries: cb.maxParallelRetries,
          },
    fault_injection:
      fi === undefined
        ? null
        : {
            delay:
              fi.delay === undefined
                ? null
                : { fixed_delay_ms: fi.delay.fixedDelayMs, percentage: fi.delay.percentage },
            abort:
              fi.abort === undefined
                ? null
                : 'httpStatus' in fi.abort
                  ? {
                      http_status: fi.abort.httpStatus,
                      grpc: false,
                      grpc_status: 0,
                      percentage: fi.abort.percentage,
                    }
                  : {
                      http_status: 0,
                      grpc: true,
                      grpc_status: fi.abort.grpcStatus,
                      percentage: fi.abort.percentage,
                    },
            headers: named(fi.headers),
          },
    health_check: p.passiveHealthCheck === undefined ? null : encodeOutlierDetection(p.passiveHealthCheck),
    load_balancer: p.loadBalancer === undefined ? null : encodeLoadBalancer(p.loadBalancer),
    retry_constraint:
      p.retryConstraint === undefined
        ? null
        : {
            budget_percent: p.retryConstraint.budgetPercent,
            budget_interval_ms: p.retryConstraint.budgetIntervalMs,
            min_retry_count: p.retryConstraint.minRetryCount,
            min_retry_interval_ms: p.retryConstraint.minRetryIntervalMs,
          },
    rate_limit: p.rateLimit === undefined ? null : encodeRateLimit(p.rateLimit),
  };
}

const share = (v: number, field: string): number => {
  if (!(v >= 0 && v <= 100)) throw new Error(`${field}: ${v} is not a percentage`);
  return v;
};

/** Decodes and checks a TrafficPolicy; throws with the field at fault. */
export function decodeTrafficPolicy(w: WireTrafficPolicy): AppliedTrafficPolicy {
  if (!/^[^/]+\/[^/]+$/.test(w.policy)) throw new Error(`policy ${JSON.stringify(w.policy)} is not ns/name`);
  const cb = w.circuit_breaker;
  const fi = w.fault_injection;
  const rc = w.retry_constraint;
  let fault: FaultInjection | undefined;
  if (fi !== null && fi !== undefined) {
    let abort: FaultAbort | undefined;
    const a = fi.abort;
    if (a !== null && a !== undefined) {
      const percentage = share(a.percentage, 'fault_injection.abort.percentage');
      if (a.grpc) {
        if (!(a.grpc_status >= 0 && a.grpc_status <= 16))
          throw new Error(`fault_injection.abort.grpc_status: ${a.grpc_status} is not a gRPC status`);
        abort = { grpcStatus: a.grpc_status, percentage };
      } else {
        if (!(a.http_status >= 200 && a.http_status <= 599))
          throw new Error(`fault_injection.abort.http_status: ${a.http_status} is not 200 to 599`);
        abort = { httpStatus: a.http_status, percentage };
      }
    }
    const d = fi.delay;
    fault = {
      ...(d === null || d === undefined
        ? {}
        : {
            delay: {
              fixedDelayMs: d.fixed_delay_ms,
              percentage: share(d.percentage, 'fault_injection.delay.percentage'),
            },
          }),
      ...(abort === undefined ? {} : { abort }),
      headers: decodeNamed(fi.headers ?? [], 'fault_injection.headers'),
    };
  }
  return {
    policy: w.policy,
    ...(cb === null || cb === undefined
      ? {}
      : {
          circuitBreaker: {
            maxConnections: cb.max_connections,
            maxPendingRequests: cb.max_pending_requests,
            maxParallelRequests: cb.max_parallel_requests,
            maxParallelRetries: cb.max_parallel_retries,
          },
        }),
    ...(fault === undefined ? {} : { faultInjection: fault }),
    ...(w.load_balancer === null || w.load_balancer === undefined
      ? {}
      : { loadBalancer: decodeLoadBalancer(w.load_balancer) }),
    ...(w.health_check === null || w.health_check === undefined
      ? {}
      : { passiveHealthCheck: decodeOutlierDetection(w.health_check) }),
    ...(rc === null || rc === undefined ? {} : { retryConstraint: decodeRetryConstraint(rc) }),
    ...(w.rate_limit === null || w.rate_limit === undefined
      ? {}
      : { rateLimit: decodeRateLimit(w.rate_limit, 'rate_limit') }),
  };
}

function decodeRetryConstraint(rc: NonNullable<WireTrafficPolicy['retry_constraint']>): RetryConstraint {
  const interval = (ms: number, field: string): number => {
    if (!(Number.isInteger(ms) && ms >= 1000 && ms <= 3_600_000))
      throw new Error(`retry_constraint.${field}: ${ms} is not 1000 to 3600000 ms`);
    return ms;
  };
  if (!(rc.budget_percent >= 0 && rc.budget_percent <= 100))
    throw new Error(`retry_constraint.budget_percent: ${rc.budget_percent} is not a percentage`);
  return {
    budgetPercent: rc.budget_percent,
    budgetIntervalMs: interval(rc.budget_interval_ms, 'budget_interval_ms'),
    minRetryCount: rc.min_retry_count,
    minRetryIntervalMs: interval(rc.min_retry_interval_ms, 'min_retry_interval_ms'),
  };
}
