/**
 * Exponential back-off, the one implementation for every retry loop in Ambit (config stream
 * reconnects, certificate renewal retries, container and daemon restarts in local mode).
 */
export interface BackoffPolicy {
  /** Delay before the first retry. */
  readonly initialMs: number;
  readonly maxMs: number;
  /**
   * `none`: exactly initial x 2^attempt, capped. `equal`: half of that plus a random part up to the
   * other half, so that many clients that lost the same server do not return in step (AWS's "equal
   * jitter": never less than half the delay, never more than all of it).
   */
  readonly jitter: 'none' | 'equal';
}

/** The delay before retry number `attempt` (0 for the first retry). */
export function backoffDelay(attempt: number, p: BackoffPolicy, random: () => number = Math.random): number {
  // 2 ** 40 is far past any cap; clamping the exponent keeps the arithmetic exact.
  const cap = Math.min(p.maxMs, p.initialMs * 2 ** Math.min(Math.max(0, attempt), 40));
  return p.jitter === 'none' ? cap : Math.round(cap / 2 + (random() * cap) / 2);
}

/** Reconnecting to the control plane: 0.5 s doubling to 30 s, jittered. */
export const RECONNECT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000, jitter: 'equal' };
/** Retrying a failed certificate renewal while the current one is still valid: 1 s doubling to 30 s. */
export const RENEWAL_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 30_000, jitter: 'none' };
/** The kubelet's CrashLoopBackOff, shortened for local mode: 0.5 s doubling to 16 s. */
export const RESTART_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 16_000, jitter: 'none' };
/** A restarted process that ran this long without failing starts its back-off over. */
export const RESTART_RESET_AFTER_MS = 10_000;
