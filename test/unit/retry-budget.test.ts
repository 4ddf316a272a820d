import { describe, expect, test } from 'vitest';
import { decodeTrafficPolicy, encodeTrafficPolicy } from '../../src/api/config-traffic-policy.js';
import { RetryBudgets } from '../../src/l7-waypoint/retry-budgets.js';
import { describeTrafficPolicy } from '../../src/traffic-policy/describe.js';
import {
  RETRY_CONSTRAINT_DEFAULT,
  RetryBudget,
  type RetryConstraint,
  retryFits,
  WindowCount,
} from '../../src/traffic-policy/retry-budget.js';
import type { AppliedTrafficPolicy } from '../../src/traffic-policy/types.js';
import { loadTrafficPolicy, overTheWire, TARGET_WEB } from './traffic-policy-fixtures.js';

const C: RetryConstraint = {
  budgetPercent: 20,
  budgetIntervalMs: 10_000,
  minRetryCount: 2,
  minRetryIntervalMs: 1_000,
};

describe('retryFits: under the share of requests, else under the minimum rate', () => {
  test.each([
    { what: 'no requests, no recent retry: the minimum rate', counts: [0, 0, 0], want: 'minRetryRate' },
    { what: 'the minimum rate spent', counts: [0, 2, 2], want: 'exhausted' },
    { what: '20% of 10 requests is 2 retries: the first', counts: [10, 0, 2], want: 'budget' },
    { what: 'the second', counts: [10, 1, 2], want: 'budget' },
    { what: 'a third is over the share and the minimum', counts: [10, 2, 2], want: 'exhausted' },
    { what: 'over the share, under the minimum', counts: [10, 2, 1], want: 'minRetryRate' },
    { what: 'a large volume: 20 of 100', counts: [100, 19, 5], want: 'budget' },
    { what: '21 of 100', counts: [100, 20, 5], want: 'exhausted' },
  ])('$what', ({ counts, want }) => {
    const [requests, retries, recentRetries] = counts as [number, number, number];
    expect(retryFits(C, { requests, retries, recentRetries })).toBe(want);
  });

  test('0% with no minimum never retries', () => {
    expect(
      retryFits(
        { ...C, budgetPercent: 0, minRetryCount: 0 },
        { requests: 1000, retries: 0, recentRetries: 0 },
      ),
    ).toBe('exhausted');
  });
});

describe('WindowCount: a sliding window in ten slots', () => {
  test('events age out a slot at a time', () => {
    const w = new WindowCount(10_000);
    w.add(0, 5);
    w.add(4_999, 3);
    expect(w.total(5_000)).toBe(8);
    expect(w.total(9_999)).toBe(8);
    // The slot of t=0 leaves the window at 10 s; that of 4.999 s at 14 s.
    expect(w.total(10_000)).toBe(3);
    expect(w.total(14_999)).toBe(0);
  });
  test('a slot reused after a full turn starts from zero', () => {
    const w = new WindowCount(1_000);
    w.add(50, 7);
    w.add(1_050, 1);
    expect(w.total(1_060)).toBe(1);
  });
});

describe('RetryBudget: an outage cannot multiply the load by the attempts', () => {
  test('a steady 100 req/s with every attempt failing: retries stay at 20% once the window fills', () => {
    const b = new RetryBudget(RETRY_CONSTRAINT_DEFAULT);
    let made = 0;
    let wanted = 0;
    // 20 s at 100 requests per second, each wanting 2 retries (a route with attempts: 3).
    for (let t = 0; t < 20_000; t += 10) {
      b.request(t);
      for (let r = 0; r < 2; r++) {
        wanted++;
        if (b.retry(t)) made++;
      }
    }
    expect(wanted).toBe(4000);
    // 20% of 2000 requests (plus at most the minimum rate's share at the start).
    expect(made).toBeGreaterThanOrEqual(400);
    expect(made).toBeLessThanOrEqual(400 + 10);
  });

  test('a quiet Service keeps the minimum rate', () => {
    const b = new RetryBudget(C);
    b.request(0);
    expect([b.retry(0), b.retry(1), b.retry(2)]).toEqual([true, true, false]);
    expect(b.retry(1_500)).toBe(true);
  });
});

describe('RetryBudgets: one per Service', () => {
  test('a changed constraint starts afresh; forgotten Services are dropped', () => {
    let t = 0;
    const bs = new RetryBudgets(undefined, () => t);
    const tight = { ...C, minRetryCount: 0, budgetPercent: 0 };
    bs.request('web', tight);
    expect(bs.retry('web', tight)).toBe(false);
    // The defaults allow 10 per second whatever the traffic.
    expect(bs.retry('web', RETRY_CONSTRAINT_DEFAULT)).toBe(true);
    t = 5;
    expect(bs.snapshot()).toEqual({
      web: { constraint: RETRY_CONSTRAINT_DEFAULT, requests: 0, retries: 1, recentRetries: 1 },
    });
    bs.retain(() => false);
    expect(bs.snapshot()).toEqual({});
  });
});

/** A policy on Service web with `spec` beside its targetRefs. */
const load = (spec: string) => loadTrafficPolicy(`${TARGET_WEB}\n${spec}`);

describe('retryConstraint parsing (Gateway API GEP-3388 fields)', () => {
  test('unset fields get the defaults', () => {
    const r = load('retryConstraint: {budget: {percent: 5}}');
    expect(r.errors).toEqual([]);
    expect(r.value?.retryConstraint).toEqual({ ...RETRY_CONSTRAINT_DEFAULT, budgetPercent: 5 });
  });
  test('every field', () => {
    const r = load(
      'retryConstraint: {budget: {percent: 50, interval: 1m}, minRetryRate: {count: 3, interval: 2s}}',
    );
    expect(r.value?.retryConstraint).toEqual({
      budgetPercent: 50,
      budgetIntervalMs: 60_000,
      minRetryCount: 3,
      minRetryIntervalMs: 2_000,
    });
  });
  test.each([
    {
      rule: 'a percent over 100',
      spec: 'retryConstraint: {budget: {percent: 120}}',
      issue: /p\.yaml:8 spec\.retryConstraint\.budget\.percent: .*120/,
    },
    {
      rule: 'an interval under 1s',
      spec: 'retryConstraint: {budget: {interval: 500ms}}',
      issue: /spec\.retryConstraint\.budget\.interval: 500 ms is not from 1s to 1h/,
    },
    {
      rule: 'an interval over 1h',
      spec: 'retryConstraint: {minRetryRate: {interval: 2h}}',
      issue: /spec\.retryConstraint\.minRetryRate\.interval: 7200000 ms is not from 1s to 1h/,
    },
    {
      rule: 'a typo',
      spec: 'retryConstraint: {budgets: {percent: 1}}',
      issue: /spec\.retryConstraint\.budgets: /,
    },
    {
      rule: "Envoy Gateway's retry, with where retries are set instead",
      spec: 'retry: {numRetries: 3}',
      issue: /spec\.retry: is not supported by Ambit yet .*set retries on the HTTPRoute rule/,
    },
  ])('$rule is rejected', ({ spec, issue }) => {
    const r = load(spec);
    expect(r.value).toBeUndefined();
    expect(r.errors.join('\n')).toMatch(issue);
  });
});

describe('retryConstraint over the wire and for people', () => {
  const a: AppliedTrafficPolicy = {
    policy: 'shop/budget',
    retryConstraint: {
      budgetPercent: 10,
      budgetIntervalMs: 5_000,
      minRetryCount: 1,
      minRetryIntervalMs: 1_000,
    },
  };
  test('survives protobuf', () => {
    expect(overTheWire(a)).toEqual(a);
  });
  test('a bad wire interval is refused with the field', () => {
    const w = encodeTrafficPolicy(a);
    w.retry_constraint!.budget_interval_ms = 10;
    expect(() => decodeTrafficPolicy(w)).toThrow(/retry_constraint\.budget_interval_ms: 10 /);
  });
  test('described', () => {
    expect(describeTrafficPolicy(a)).toBe(
      'BackendTrafficPolicy shop/budget: retryConstraint budget 10% of requests over 5s, at least 1 per 1s (a retry over it is not made)',
    );
  });
});
