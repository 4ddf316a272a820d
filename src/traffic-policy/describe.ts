import type { HeaderFacts } from '../gateway-api/route-match.js';
import { headersTest } from '../gateway-api/route-match.js';
import type { LoadBalancer, PassiveHealthCheck } from './balancing.js';
import { describeRateLimit } from './rate-limit.js';
import { describeRetryConstraint } from './retry-budget.js';
import type { AppliedTrafficPolicy, FaultInjection } from './types.js';

/** `1s`, `250ms`. */
function duration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function faults(fi: FaultInjection): string {
  const parts: string[] = [];
  if (fi.delay !== undefined)
    parts.push(`delay ${duration(fi.delay.fixedDelayMs)} for ${fi.delay.percentage}% (flag DI)`);
  if (fi.abort !== undefined)
    parts.push(
      `abort ${'httpStatus' in fi.abort ? `HTTP ${fi.abort.httpStatus}` : `grpc-status ${fi.abort.grpcStatus}`} for ${fi.abort.percentage}% (flag FI, never retried)`,
    );
  const when =
    fi.headers.length === 0
      ? ''
      : ` of requests with ${fi.headers.map((h) => `${h.name} ${h.match.type === 'Exact' ? '=' : '~'} ${JSON.stringify(h.match.value)}`).join(' and ')}`;
  return `faultInjection ${parts.join(', ')}${when}`;
}

/** One line for people: the policy's name and what it enforces (proxy-config, explain). */
export function describeTrafficPolicy(p: AppliedTrafficPolicy): string {
  const parts: string[] = [];
  const cb = p.circuitBreaker;
  if (cb !== undefined)
    parts.push(
      `circuitBreaker maxConnections=${cb.maxConnections} maxPendingRequests=${cb.maxPendingRequests} maxParallelRequests=${cb.maxParallelRequests} maxParallelRetries=${cb.maxParallelRetries} (over a limit: 503, flag UO)`,
    );
  if (p.faultInjection !== undefined) parts.push(faults(p.faultInjection));
  if (p.loadBalancer !== undefined) parts.push(describeLoadBalancer(p.loadBalancer));
  if (p.passiveHealthCheck !== undefined) parts.push(describePassiveHealthCheck(p.passiveHealthCheck));
  if (p.retryConstraint !== undefined) parts.push(describeRetryConstraint(p.retryConstraint));
  if (p.rateLimit !== undefined) parts.push(describeRateLimit(p.rateLimit));
  return `BackendTrafficPolicy ${p.policy}: ${parts.join('; ') || 'nothing'}`;
}

/** Whether a request is one the policy's faults may hit (its headers match), for explain. */
export function faultsApplyTo(p: AppliedTrafficPolicy, req: HeaderFacts): boolean {
  const fi = p.faultInjection;
  return fi !== undefined && (fi.headers.length === 0 || headersTest(fi.headers)(req));
}

/** `loadBalancer ConsistentHash on header x-user (Maglev 65537)`. */
export function describeLoadBalancer(lb: LoadBalancer): string {
  if (lb.type !== 'ConsistentHash') return `loadBalancer ${lb.type}`;
  const h = lb.hashOn;
  const on =
    h.type === 'Header'
      ? `header ${h.name}`
      : h.type === 'Cookie'
        ? `cookie ${h.name}${h.ttlMs === undefined ? '' : ` (set for ${duration(h.ttlMs)} when absent)`}`
        : h.type === 'SourceIP'
          ? 'source IP'
          : 'source identity';
  return `loadBalancer ConsistentHash on ${on} (Maglev, table ${lb.tableSize})`;
}

/** `healthCheck.passive consecutive5XxErrors=5 ...`. */
export function describePassiveHealthCheck(p: PassiveHealthCheck): string {
  const on = (n: number): string => (n === 0 ? 'off' : String(n));
  return `healthCheck.passive consecutive5XxErrors=${on(p.consecutive5xxErrors)} consecutiveGatewayErrors=${on(p.consecutiveGatewayErrors)}${
    p.splitExternalLocalOriginErrors
      ? ` consecutiveLocalOriginFailures=${on(p.consecutiveLocalOriginFailures)} (split)`
      : ''
  } interval=${duration(p.intervalMs)} baseEjectionTime=${duration(p.baseEjectionTimeMs)} maxEjectionPercent=${p.maxEjectionPercent}${
    p.alwaysEjectOneEndpoint ? ' alwaysEjectOneEndpoint' : ''
  } panicThreshold=${p.panicThreshold}`;
}
