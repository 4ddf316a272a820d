import type { AttemptResult } from '../mesh/http-retry.js';
import { MAX_EJECTION_TIME_MS, type PassiveHealthCheck } from '../traffic-policy/balancing.js';

/*
 * Outlier detection for one Service at one waypoint replica, as Envoy does it: consecutive errors
 * eject an endpoint inline (within maxEjectionPercent); a sweep every `interval` brings back those
 * whose ejection time has passed. The state machine is pure: time is passed in, nothing is timed.
 */

/** What made an endpoint an outlier (the `reason` label; Envoy's ejections_enforced_* stats). */
export type EjectionReason =
  | 'consecutive_5xx'
  | 'consecutive_gateway_failure'
  | 'consecutive_local_origin_failure';

/** What one attempt's outcome did: nothing, an ejection, or an ejection refused by maxEjectionPercent. */
export type Verdict =
  | undefined
  | { readonly kind: 'ejected'; readonly reason: EjectionReason; readonly untilMs: number }
  | { readonly kind: 'overflow'; readonly reason: EjectionReason };

interface EndpointState {
  consecutive5xx: number;
  consecutiveGateway: number;
  consecutiveLocal: number;
  /** Ejections in a row (Envoy's backoff): the next one lasts base x this; a healthy sweep lowers it. */
  times: number;
  ejectedAtMs?: number;
  ejectedUntilMs?: number;
}

/** An endpoint ejected now, and from when it may come back (at the first sweep at or after). */
export interface Ejected {
  readonly key: string;
  readonly sinceMs: number;
  readonly untilMs: number;
  readonly times: number;
}

const GATEWAY_ERRORS = new Set([502, 503, 504]);

export class OutlierDetector {
  private readonly endpoints = new Map<string, EndpointState>();
  private lastSweepMs: number | undefined;

  constructor(private config: PassiveHealthCheck) {}

  /** A changed policy applies from now on; what was counted and ejected stays. */
  configure(config: PassiveHealthCheck): void {
    this.config = config;
  }

  private state(key: string): EndpointState {
    let s = this.endpoints.get(key);
    if (s === undefined) {
      s = { consecutive5xx: 0, consecutiveGateway: 0, consecutiveLocal: 0, times: 0 };
      this.endpoints.set(key, s);
    }
    return s;
  }

  /**
   * One attempt's outcome at `key`, which is one of `total` endpoints of the Service. A response
   * ends a run of failures of its kind; with splitExternalLocalOriginErrors false the waypoint's own
   * failures (connect failure, reset, timeout) count as the endpoint's 5xx and gateway errors, as Envoy
   * maps them to 503 and 504.
   */
  record(key: string, outcome: AttemptResult, nowMs: number, total: number): Verdict {
    this.advance(nowMs);
    const c = this.config;
    const s = this.state(key);
    if (outcome.kind === 'response') {
      s.consecutiveLocal = 0;
      if (outcome.status >= 500 && outcome.status <= 599) {
        s.consecutive5xx++;
        s.consecutiveGateway = GATEWAY_ERRORS.has(outcome.status) ? s.consecutiveGateway + 1 : 0;
      } else {
        s.consecutive5xx = 0;
        s.consecutiveGateway = 0;
      }
    } else if (c.splitExternalLocalOriginErrors) {
      s.consecutiveLocal++;
    } else {
      s.consecutive5xx++;
      s.consecutiveGateway++;
    }
    // An endpoint already out is not ejected again (its results arrive only in panic or from late attempts).
    if (s.ejectedUntilMs !== undefined) return undefined;
    const reason: EjectionReason | undefined =
      c.consecutiveGatewayErrors > 0 && s.consecutiveGateway >= c.consecutiveGatewayErrors
        ? 'consecutive_gateway_failure'
        : c.consecutive5xxErrors > 0 && s.consecutive5xx >= c.consecutive5xxErrors
          ? 'consecutive_5xx'
          : c.splitExternalLocalOriginErrors &&
              c.consecutiveLocalOriginFailures > 0 &&
              s.consecutiveLocal >= c.consecutiveLocalOriginFailures
            ? 'consecutive_local_origin_failure'
            : undefined;
    if (reason === undefined) return undefined;
    // The run is over whether or not the ejection is allowed: the next run is counted afresh.
    s.consecutive5xx = 0;
    s.consecutiveGateway = 0;
    s.consecutiveLocal = 0;
    if (!this.mayEject(total)) return { kind: 'overflow', reason };
    s.times++;
    const base = c.baseEjectionTimeMs;
    const duration = Math.min(base * s.times, Math.max(MAX_EJECTION_TIME_MS, base));
    s.ejectedAtMs = nowMs;
    s.ejectedUntilMs = nowMs + duration;
    return { kind: 'ejected', reason, untilMs: s.ejectedUntilMs };
  }

  /**
   * Envoy's rule (since always_eject_one_host): one more ejection is allowed when, with it, at most
   * maxEjectionPercent of the endpoints are out; or when none is out and alwaysEjectOneEndpoint is set.
   */
  private mayEject(total: number): boolean {
    const out = this.ejectedCount();
    if (total > 0 && ((out + 1) * 100) / total <= this.config.maxEjectionPercent) return true;
    return this.config.alwaysEjectOneEndpoint && out === 0;
  }

  private ejectedCount(): number {
    let n = 0;
    for (const s of this.endpoints.values()) if (s.ejectedUntilMs !== undefined) n++;
    return n;
  }

  /**
   * Runs the sweeps due by `nowMs` (one per interval since the first outcome): an ejected endpoint
   * whose time has passed comes back; one that stayed in lowers its ejections-in-a-row by one.
   * Returns the endpoints that came back.
   */
  advance(nowMs: number): string[] {
    const back: string[] = [];
    const interval = this.config.intervalMs;
    if (this.lastSweepMs === undefined) {
      this.lastSweepMs = nowMs;
      return back;
    }
    while (this.lastSweepMs + interval <= nowMs) {
      this.lastSweepMs += interval;
      const t = this.lastSweepMs;
      let busy = false;
      for (const [key, s] of this.endpoints) {
        if (s.ejectedUntilMs !== undefined) {
          if (s.ejectedUntilMs <= t) {
            delete s.ejectedUntilMs;
            delete s.ejectedAtMs;
            back.push(key);
          }
        } else if (s.times > 0) s.times--;
        if (s.ejectedUntilMs === undefined && s.times === 0) {
          if (s.consecutive5xx + s.consecutiveGateway + s.consecutiveLocal === 0) this.endpoints.delete(key);
        } else busy = true;
      }
      // Nothing left to bring back or forgive: the sweeps still to come would change nothing.
      if (!busy) this.lastSweepMs += Math.floor((nowMs - this.lastSweepMs) / interval) * interval;
    }
    return back;
  }

  isEjected(key: string): boolean {
    return this.endpoints.get(key)?.ejectedUntilMs !== undefined;
  }

  /** The endpoints ejected now (after the sweeps due by `nowMs`). */
  ejected(nowMs: number): Ejected[] {
    this.advance(nowMs);
    const out: Ejected[] = [];
    for (const [key, s] of this.endpoints)
      if (s.ejectedUntilMs !== undefined)
        out.push({ key, sinceMs: s.ejectedAtMs!, untilMs: s.ejectedUntilMs, times: s.times });
    return out;
  }
}
