import { setTimeout as sleepFor } from 'node:timers/promises';

/**
 * Time behind an interface: wall-clock reads and timers. Certificate issue and renewal, and anything
 * else that waits, take a Clock, so that tests drive time instead of sleeping.
 */
export interface Clock {
  now(): Date;
  /** Runs `fn` after `ms`; the timer never keeps the process alive. */
  setTimer(fn: () => void, ms: number): Timer;
}

export interface Timer {
  cancel(): void;
}

/** setTimeout takes at most a signed 32-bit delay; longer waits are capped (and re-armed by callers). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => new Date(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, Math.max(0, Math.min(ms, MAX_TIMER_MS)));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * A clock that moves only when told to: `advance(ms)` fires, in order, every timer that comes due.
 * For tests of renewal and back-off schedules.
 */
export class ManualClock implements Clock {
  private t: number;
  private readonly timers = new Set<{ at: number; seq: number; fn: () => void }>();
  private seq = 0;

  constructor(start: Date = new Date('2026-01-01T00:00:00Z')) {
    this.t = start.getTime();
  }

  now(): Date {
    return new Date(this.t);
  }

  setTimer(fn: () => void, ms: number): Timer {
    const entry = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.add(entry);
    return { cancel: () => this.timers.delete(entry) };
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing due timers one at a time (a timer may set new ones). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: { at: number; seq: number; fn: () => void } | undefined;
      for (const e of this.timers) {
        if (e.at <= end && (next === undefined || e.at < next.at || (e.at === next.at && e.seq < next.seq)))
          next = e;
      }
      if (next === undefined) break;
      this.timers.delete(next);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }
}

/** Waits `ms`, or until `signal` aborts: resolves either way (the caller reads `signal` after). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return sleepFor(ms, undefined, { signal }).catch(() => undefined);
}
