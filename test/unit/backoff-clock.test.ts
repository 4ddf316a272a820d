import { describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { parseDuration } from '../../src/config/duration.js';
import { backoffDelay, RECONNECT_BACKOFF, RENEWAL_BACKOFF, RESTART_BACKOFF } from '../../src/net/backoff.js';

describe('backoffDelay: the one back-off', () => {
  test.each<[string, typeof RESTART_BACKOFF, number[]]>([
    [
      'container and daemon restarts: 0.5 s doubling to 16 s',
      RESTART_BACKOFF,
      [500, 1000, 2000, 4000, 8000, 16_000, 16_000],
    ],
    [
      'certificate renewal retries: 1 s doubling to 30 s',
      RENEWAL_BACKOFF,
      [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000],
    ],
  ])('%s', (_what, policy, delays) => {
    expect(delays.map((_, i) => backoffDelay(i, policy))).toEqual(delays);
  });

  test.each<[number, number, number]>([
    [0, 250, 500],
    [1, 500, 1000],
    [6, 15_000, 30_000],
    [60, 15_000, 30_000],
  ])('reconnects: attempt %i waits between %i and %i ms (equal jitter)', (attempt, lo, hi) => {
    expect(backoffDelay(attempt, RECONNECT_BACKOFF, () => 0)).toBe(lo);
    expect(backoffDelay(attempt, RECONNECT_BACKOFF, () => 1)).toBe(hi);
  });
});

describe('ManualClock', () => {
  test('timers fire in order as time is advanced, never before; a cancelled one never', () => {
    const clock = new ManualClock(new Date('2026-01-01T00:00:00Z'));
    const fired: string[] = [];
    clock.setTimer(() => fired.push('b'), 200);
    clock.setTimer(() => fired.push('a'), 100);
    const c = clock.setTimer(() => fired.push('cancelled'), 150);
    c.cancel();
    clock.advance(99);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual(['a']);
    // A timer set by a timer fires in the same advance when it comes due within it.
    clock.setTimer(() => clock.setTimer(() => fired.push('chained'), 10), 50);
    clock.advance(200);
    expect(fired).toEqual(['a', 'chained', 'b']);
    expect(clock.now().toISOString()).toBe('2026-01-01T00:00:00.300Z');
    expect(clock.pending).toBe(0);
  });
});

describe('parseDuration: Gateway API durations (and bare seconds)', () => {
  test.each<[string, number | undefined]>([
    ['10s', 10_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['1m1s1ms', 61_001],
    ['90', 90_000],
    ['0s', 0],
    ['', undefined],
    ['10', 10_000],
    ['1.5s', undefined],
    ['1d', undefined],
    ['1h1m1s1ms1h', undefined],
    ['-1s', undefined],
  ])('%j -> %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
});
