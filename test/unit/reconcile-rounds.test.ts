import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { ReconcileRounds } from '../../src/control-plane/reconcile-rounds.js';

/** A round the test ends by hand, recording how many run at once. */
function harness(ready = () => true) {
  const ends: Array<(failed: boolean) => void> = [];
  let active = 0;
  let maxActive = 0;
  const rounds = new ReconcileRounds(
    () => {
      active++;
      maxActive = Math.max(maxActive, active);
      return new Promise<boolean>((resolve) => {
        ends.push((failed) => {
          active--;
          resolve(failed);
        });
      });
    },
    ready,
    100,
    5_000,
  );
  return { rounds, ends, started: () => ends.length, maxActive: () => maxActive };
}

describe('ReconcileRounds: coalesced reconcile rounds, one at a time', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  test('changes within the delay share one round; nothing runs before it', async () => {
    const h = harness();
    h.rounds.schedule();
    h.rounds.schedule();
    await vi.advanceTimersByTimeAsync(99);
    expect(h.started()).toBe(0);
    h.rounds.schedule();
    await vi.advanceTimersByTimeAsync(1);
    expect(h.started()).toBe(1);
  });

  test('a change during a round causes exactly one more round, never overlapping', async () => {
    const h = harness();
    h.rounds.schedule();
    await vi.advanceTimersByTimeAsync(100);
    expect(h.started()).toBe(1);
    h.rounds.schedule();
    h.rounds.schedule();
    h.rounds.schedule();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(h.started()).toBe(1);
    h.ends[0]?.(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(h.started()).toBe(2);
    h.ends[1]?.(false);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(h.started()).toBe(2);
    expect(h.maxActive()).toBe(1);
  });

  test('a failed round is retried after the back-off, not before', async () => {
    const h = harness();
    h.rounds.schedule();
    await vi.advanceTimersByTimeAsync(100);
    h.ends[0]?.(true);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(h.started()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.started()).toBe(2);
    h.ends[1]?.(false);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(h.started()).toBe(2);
  });

  test('nothing is scheduled until ready', async () => {
    let ready = false;
    const h = harness(() => ready);
    h.rounds.schedule();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(h.started()).toBe(0);
    ready = true;
    h.rounds.schedule();
    await vi.advanceTimersByTimeAsync(100);
    expect(h.started()).toBe(1);
  });

  test('stop() cancels a pending round, the retry, and the round asked for meanwhile', async () => {
    const pending = harness();
    pending.rounds.schedule();
    pending.rounds.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(pending.started()).toBe(0);

    const running = harness();
    running.rounds.schedule();
    await vi.advanceTimersByTimeAsync(100);
    running.rounds.schedule();
    running.rounds.stop();
    expect(running.rounds.stopped).toBe(true);
    running.ends[0]?.(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(running.started()).toBe(1);
  });
});
