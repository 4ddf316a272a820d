/** A failed round is tried again after this long (and at the next change). */
export const RETRY_MS = 5_000;

/**
 * Coalesced reconcile rounds, one at a time: `schedule()` after any change starts a round after
 * `delayMs` (changes within that window share it); a change during a round causes exactly one more
 * round once it ends; a round that reports a failure is tried again after `retryMs` (or at the
 * next change). Nothing is scheduled while `ready()` is false or after `stop()`.
 */
export class ReconcileRounds {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private isStopped = false;

  /** @param round one reconcile round; resolves true when part of it failed (to be retried). */
  constructor(
    private readonly round: () => Promise<boolean>,
    private readonly ready: () => boolean,
    private readonly delayMs = 100,
    private readonly retryMs = RETRY_MS,
  ) {}

  /** True once stopped: a round in progress checks it between its steps and ends early. */
  get stopped(): boolean {
    return this.isStopped;
  }

  schedule(delay = this.delayMs): void {
    if (this.isStopped || !this.ready()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer === undefined) this.timer = setTimeout(() => void this.run(), delay);
  }

  stop(): void {
    this.isStopped = true;
    clearTimeout(this.timer);
  }

  private async run(): Promise<void> {
    this.timer = undefined;
    this.running = true;
    this.again = false;
    let failed = false;
    try {
      failed = await this.round();
    } finally {
      this.running = false;
    }
    if (this.isStopped) return;
    if (this.again) this.schedule();
    else if (failed) this.schedule(this.retryMs);
  }
}
