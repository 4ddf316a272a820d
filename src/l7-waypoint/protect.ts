import type { Counter } from 'prom-client';
import { pause } from '../clock.js';
import type { Random } from '../gateway-api/backend-pick.js';
import type { HeaderRecord } from '../gateway-api/route-filters.js';
import type { RuleRef } from '../mesh/l7-route.js';
import { FAULT_DELAY_FLAG } from '../telemetry/http-outcomes.js';
import { type AbortAnswer, chooseFault } from '../traffic-policy/fault-injection.js';
import { rateLimitHeaders } from '../traffic-policy/rate-limit.js';
import type { AppliedTrafficPolicy } from '../traffic-policy/types.js';
import type { CircuitBreakers, Release } from './circuit-breakers.js';
import { type ConnContext, headerOf } from './exchange.js';
import type { RateLimits } from './rate-limits.js';

/** What the protections of a BackendTrafficPolicy need from the waypoint. */
export interface ProtectDeps {
  readonly random: Random;
  /** What is in flight to each backend, bounded by its BackendTrafficPolicy circuitBreaker. */
  readonly breakers?: CircuitBreakers;
  /** Faults injected by a BackendTrafficPolicy, by kind (abort, delay). */
  readonly faults?: Counter<'destination_service' | 'fault'>;
  /** The BackendTrafficPolicy rateLimit buckets, and the requests they limited (429, flag RL). */
  readonly rateLimits?: RateLimits;
  readonly rateLimited?: Counter<'destination_service' | 'policy'>;
}

/** A backend Service with its BackendTrafficPolicy: what the protections apply to. */
export interface Protected {
  readonly hostname: string;
  readonly applied: AppliedTrafficPolicy;
}

/** The request, as the protections read it: after authentication (see Exchange's `headers`). */
export interface ProtectedRequest {
  readonly ctx: ConnContext;
  readonly headers: HeaderRecord;
  readonly route: RuleRef | undefined;
  /** The response flags of the request's record (an injected delay adds DI, and the request goes on). */
  readonly flags: string[];
  /** Ends an injected delay early: the client went away. */
  readonly signal: AbortSignal;
  /** Keeps a circuit-breaker slot until the request ends. */
  hold(release: Release): void;
}

/**
 * What the protections made of a request. `rateHeaders` are the x-ratelimit-* headers every answer
 * carries (the waypoint's or the endpoint's) when a rateLimit rule counted the request.
 */
export type Protection =
  | { readonly kind: 'pass'; readonly rateHeaders: Readonly<Record<string, string>> }
  | { readonly kind: 'abort'; readonly abort: AbortAnswer; readonly reason: string }
  | {
      readonly kind: 'refuse';
      readonly failure: 'rate-limited' | 'upstream-overflow' | 'downstream-reset';
      readonly reason: string;
      readonly rateHeaders: Readonly<Record<string, string>>;
    };

const NONE: Readonly<Record<string, string>> = {};

/**
 * The BackendTrafficPolicy's faults, then its rate limit, then its request limit (Envoy's fault
 * filter, then local_ratelimit, then the router's circuit breakers), for every request to a Service
 * with a policy: ordinary requests and HTTP/1.1 upgrades alike, so that no kind of request goes
 * around them. An injected abort or a 429 is the waypoint's own answer: no attempt is made, so no
 * route retry can hide it.
 */
export async function protect(deps: ProtectDeps, p: Protected, req: ProtectedRequest): Promise<Protection> {
  const fi = p.applied.faultInjection;
  if (fi !== undefined) {
    const fault = chooseFault(fi, { header: (n) => headerOf(req.headers, n) }, deps.random);
    if (fault.delayMs !== undefined) {
      req.flags.push(FAULT_DELAY_FLAG);
      deps.faults?.inc({ destination_service: p.hostname, fault: 'delay' });
      await pause(fault.delayMs, req.signal);
      if (req.signal.aborted)
        return {
          kind: 'refuse',
          failure: 'downstream-reset',
          reason: 'the client went away during an injected delay',
          rateHeaders: NONE,
        };
    }
    if (fault.abort !== undefined) {
      deps.faults?.inc({ destination_service: p.hostname, fault: 'abort' });
      return {
        kind: 'abort',
        abort: fault.abort,
        reason: `fault injected by BackendTrafficPolicy ${p.applied.policy}`,
      };
    }
  }
  let rateHeaders = NONE;
  const rl = p.applied.rateLimit;
  if (rl !== undefined && deps.rateLimits !== undefined) {
    const v = deps.rateLimits.check(p.applied.policy, rl, p.hostname, req.ctx, req.headers, req.route);
    if (v.status !== undefined) rateHeaders = rateLimitHeaders(v.status);
    if (!v.allowed) {
      deps.rateLimited?.inc({ destination_service: p.hostname, policy: p.applied.policy });
      return {
        kind: 'refuse',
        failure: 'rate-limited',
        reason: `rateLimit rule ${v.rule} of BackendTrafficPolicy ${p.applied.policy}: no token left`,
        // As Envoy's local_ratelimit marks its 429.
        rateHeaders: { ...rateHeaders, 'x-envoy-ratelimited': 'true' },
      };
    }
  }
  const cb = p.applied.circuitBreaker;
  if (cb !== undefined && deps.breakers !== undefined) {
    const got = deps.breakers.request(p.hostname, cb);
    if (typeof got === 'string')
      return {
        kind: 'refuse',
        failure: 'upstream-overflow',
        reason: `circuitBreaker.${got} (${cb[got]}) of BackendTrafficPolicy ${p.applied.policy} reached`,
        rateHeaders,
      };
    req.hold(got);
  }
  return { kind: 'pass', rateHeaders };
}
