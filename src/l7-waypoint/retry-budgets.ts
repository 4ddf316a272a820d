import type { Counter } from 'prom-client';
import { RetryBudget, type RetryConstraint } from '../traffic-policy/retry-budget.js';

/**
 * This waypoint replica's retry budget for each backend Service whose BackendTrafficPolicy sets a
 * `retryConstraint` (src/traffic-policy/retry-budget.ts). A changed constraint starts afresh.
 */
export class RetryBudgets {
  private readonly budgets = new Map<string, RetryBudget>();

  constructor(
    /** Retries not made, by limit: `reason="retryConstraint"` here (the circuit breakers' counter). */
    private readonly overflows?: Counter<'destination_service' | 'reason'>,
    private readonly now: () => number = Date.now,
  ) {}

  private of(service: string, want: RetryConstraint): RetryBudget {
    let b = this.budgets.get(service);
    if (b === undefined || !sameConstraint(b.constraint, want)) {
      b = new RetryBudget(want);
      this.budgets.set(service, b);
    }
    return b;
  }

  /** A request sent to the Service (its first attempt): a deposit. */
  request(service: string, c: RetryConstraint): void {
    this.of(service, c).request(this.now());
  }

  /** Whether a retry to the Service fits its budget now (it is then counted). */
  retry(service: string, c: RetryConstraint): boolean {
    if (this.of(service, c).retry(this.now())) return true;
    this.overflows?.inc({ destination_service: service, reason: 'retryConstraint' });
    return false;
  }

  /** Services no longer in the config are forgotten. */
  retain(keep: (service: string) => boolean): void {
    for (const s of this.budgets.keys()) if (!keep(s)) this.budgets.delete(s);
  }

  /** The counts in each Service's windows now (proxy-config). */
  snapshot(): Record<
    string,
    { constraint: RetryConstraint; requests: number; retries: number; recentRetries: number }
  > {
    const out: Record<
      string,
      { constraint: RetryConstraint; requests: number; retries: number; recentRetries: number }
    > = {};
    const t = this.now();
    for (const [s, b] of this.budgets) out[s] = { constraint: b.constraint, ...b.state(t) };
    return out;
  }
}

function sameConstraint(a: RetryConstraint, b: RetryConstraint): boolean {
  return (
    a.budgetPercent === b.budgetPercent &&
    a.budgetIntervalMs === b.budgetIntervalMs &&
    a.minRetryCount === b.minRetryCount &&
    a.minRetryIntervalMs === b.minRetryIntervalMs
  );
}
