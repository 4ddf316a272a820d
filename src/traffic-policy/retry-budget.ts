import type { Fields } from '../config/field-reader.js';
import { gatewayDuration } from '../gateway-api/parse-common.js';

/*
 * Retry budgets (Gateway API GEP-3388, `retryConstraint` of the experimental BackendTrafficPolicy;
 * Finagle's and Linkerd's budgets): retries to a Service may be at most `budget.percent` of the
 * requests sent to it over the last `budget.interval`, and `minRetryRate` retries per its interval are
 * always allowed, so that a quiet Service can still retry. During an outage a route's `retry.attempts`
 * would multiply the load on the failing backend by the number of attempts; under a budget it grows by
 * at most the percentage. The arithmetic is pure (time passed in); the waypoint keeps one per Service.
 */

export interface RetryConstraint {
  /** Retries as a share of requests, 0 to 100. */
  readonly budgetPercent: number;
  /** The window over which requests and retries are counted, in ms (1 s to 1 h). */
  readonly budgetIntervalMs: number;
  /** Retries always allowed per `minRetryIntervalMs`, whatever the budget. */
  readonly minRetryCount: number;
  readonly minRetryIntervalMs: number;
}

/** GEP-3388's defaults, and what applies to a Service whose policy sets no `retryConstraint`. */
export const RETRY_CONSTRAINT_DEFAULT: RetryConstraint = {
  budgetPercent: 20,
  budgetIntervalMs: 10_000,
  minRetryCount: 10,
  minRetryIntervalMs: 1_000,
};

const SLOTS = 10;

/** Events in a sliding window, counted in `SLOTS` slots (the window slides a slot at a time). */
export class WindowCount {
  private readonly slot: number;
  private readonly counts = new Array<number>(SLOTS).fill(0);
  /** The slot index (time / slot length) each entry of `counts` holds. */
  private readonly epochs = new Array<number>(SLOTS).fill(-1);

  constructor(windowMs: number) {
    this.slot = Math.max(1, windowMs / SLOTS);
  }

  add(now: number, n = 1): void {
    const e = Math.floor(now / this.slot);
    const i = e % SLOTS;
    if (this.epochs[i] !== e) {
      this.epochs[i] = e;
      this.counts[i] = 0;
    }
    this.counts[i]! += n;
  }

  /** Events in the window that ends now. */
  total(now: number): number {
    const e = Math.floor(now / this.slot);
    let sum = 0;
    for (let i = 0; i < SLOTS; i++) {
      const age = e - this.epochs[i]!;
      if (age >= 0 && age < SLOTS) sum += this.counts[i]!;
    }
    return sum;
  }
}

/** Whether one more retry fits: under the budget's share of requests, or under the minimum rate. */
export function retryFits(
  c: RetryConstraint,
  counts: { readonly requests: number; readonly retries: number; readonly recentRetries: number },
): 'budget' | 'minRetryRate' | 'exhausted' {
  if ((counts.retries + 1) * 100 <= c.budgetPercent * counts.requests) return 'budget';
  if (counts.recentRetries < c.minRetryCount) return 'minRetryRate';
  return 'exhausted';
}

/** One Service's budget: requests deposit, retries withdraw. */
export class RetryBudget {
  private readonly requests: WindowCount;
  private readonly retries: WindowCount;
  private readonly recent: WindowCount;

  constructor(readonly constraint: RetryConstraint) {
    this.requests = new WindowCount(constraint.budgetIntervalMs);
    this.retries = new WindowCount(constraint.budgetIntervalMs);
    this.recent = new WindowCount(constraint.minRetryIntervalMs);
  }

  request(now: number): void {
    this.requests.add(now);
  }

  /** A retry wanted now: true (and counted) when it fits. */
  retry(now: number): boolean {
    const fits = retryFits(this.constraint, this.state(now));
    if (fits === 'exhausted') return false;
    this.retries.add(now);
    this.recent.add(now);
    return true;
  }

  /** The counts in the windows ending now (proxy-config). */
  state(now: number): { requests: number; retries: number; recentRetries: number } {
    return {
      requests: this.requests.total(now),
      retries: this.retries.total(now),
      recentRetries: this.recent.total(now),
    };
  }
}

const HOUR = 3_600_000;

/** `retryConstraint` of a BackendTrafficPolicy spec, every default applied. */
export function parseRetryConstraint(f: Fields, unknown: string): RetryConstraint {
  f.rejectUnknown(['budget', 'minRetryRate'], unknown);
  const d = RETRY_CONSTRAINT_DEFAULT;
  const interval = (g: Fields, dflt: number, min: number, max: number): number => {
    const ms = gatewayDuration(g, 'interval');
    if (ms === undefined) return dflt;
    if (ms < min || ms > max) {
      g.error('interval', `${ms} ms is not from ${min / 1000}s to ${max === HOUR ? '1h' : `${max / 1000}s`}`);
      return dflt;
    }
    return ms;
  };
  const b = f.object('budget');
  if (b !== undefined) b.rejectUnknown(['percent', 'interval'], unknown);
  const m = f.object('minRetryRate');
  if (m !== undefined) m.rejectUnknown(['count', 'interval'], unknown);
  return {
    budgetPercent: b?.int('percent', { min: 0, max: 100 }) ?? d.budgetPercent,
    budgetIntervalMs: b === undefined ? d.budgetIntervalMs : interval(b, d.budgetIntervalMs, 1000, HOUR),
    minRetryCount: m?.int('count', { min: 0, max: 1_000_000 }) ?? d.minRetryCount,
    minRetryIntervalMs:
      m === undefined ? d.minRetryIntervalMs : interval(m, d.minRetryIntervalMs, 1000, HOUR),
  };
}

/** For proxy-config: `retryConstraint budget 20% of requests over 10s, at least 10 per 1s`. */
export function describeRetryConstraint(c: RetryConstraint): string {
  const s = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);
  return `retryConstraint budget ${c.budgetPercent}% of requests over ${s(c.budgetIntervalMs)}, at least ${c.minRetryCount} per ${s(c.minRetryIntervalMs)} (a retry over it is not made)`;
}
