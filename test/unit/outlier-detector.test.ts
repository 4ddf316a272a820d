import { describe, expect, test } from 'vitest';
import { OutlierDetector } from '../../src/l7-waypoint/outlier-detector.js';
import type { AttemptResult } from '../../src/mesh/http-retry.js';
import {
  inService,
  PASSIVE_HEALTH_CHECK_DEFAULTS,
  type PassiveHealthCheck,
} from '../../src/traffic-policy/balancing.js';

const cfg = (over: Partial<PassiveHealthCheck> = {}): PassiveHealthCheck => ({
  ...PASSIVE_HEALTH_CHECK_DEFAULTS,
  maxEjectionPercent: 100,
  ...over,
});
const r = (status: number): AttemptResult => ({ kind: 'response', status });
const CF: AttemptResult = { kind: 'connect-failure' };
const TO: AttemptResult = { kind: 'attempt-timeout' };

/** Feeds outcomes to endpoint `a` (of `total`) at t=0; what the last one did. */
function feed(c: PassiveHealthCheck, outcomes: readonly AttemptResult[], total = 3) {
  const d = new OutlierDetector(c);
  let last: ReturnType<OutlierDetector['record']>;
  for (const o of outcomes) last = d.record('a', o, 0, total);
  return { d, last };
}

describe('outlier detection: what ejects', () => {
  test.each([
    { rule: '5 x 500 (the default)', c: cfg(), o: [500, 500, 500, 500, 500].map(r), want: 'consecutive_5xx' },
    { rule: '4 x 500', c: cfg(), o: [500, 500, 500, 500].map(r), want: undefined },
    { rule: 'a 200 ends the run', c: cfg(), o: [500, 500, 500, 500, 200, 500].map(r), want: undefined },
    {
      rule: 'a 404 is no error',
      c: cfg({ consecutive5xxErrors: 2 }),
      o: [404, 404, 404].map(r),
      want: undefined,
    },
    {
      rule: 'connect failures count as 5xx when not split',
      c: cfg({ consecutive5xxErrors: 3 }),
      o: [CF, r(500), TO],
      want: 'consecutive_5xx',
    },
    {
      rule: 'gateway errors off by default: 3 x 503 with 5xx at 5',
      c: cfg(),
      o: [503, 503, 503].map(r),
      want: undefined,
    },
    {
      rule: 'consecutiveGatewayErrors 3: 502, 503, 504',
      c: cfg({ consecutiveGatewayErrors: 3 }),
      o: [502, 503, 504].map(r),
      want: 'consecutive_gateway_failure',
    },
    {
      rule: 'a 500 is not a gateway error',
      c: cfg({ consecutiveGatewayErrors: 3, consecutive5xxErrors: 0 }),
      o: [502, 500, 503, 504].map(r),
      want: undefined,
    },
    {
      rule: 'split: local failures do not count as 5xx',
      c: cfg({
        splitExternalLocalOriginErrors: true,
        consecutive5xxErrors: 2,
        consecutiveLocalOriginFailures: 3,
      }),
      o: [CF, CF, r(500), CF],
      want: undefined,
    },
    {
      rule: 'split: a response ends a run of local failures',
      c: cfg({ splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 3 }),
      o: [CF, CF, r(500), CF, CF],
      want: undefined,
    },
    {
      rule: 'split: consecutiveLocalOriginFailures 3',
      c: cfg({ splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 3 }),
      o: [CF, TO, { kind: 'reset' } as AttemptResult],
      want: 'consecutive_local_origin_failure',
    },
    {
      rule: 'consecutive5XxErrors 0 is off',
      c: cfg({ consecutive5xxErrors: 0 }),
      o: Array(9).fill(r(500)),
      want: undefined,
    },
  ])('$rule: $want', ({ c, o, want }) => {
    const { last } = feed(c, o);
    expect(last?.kind === 'ejected' ? last.reason : undefined).toBe(want);
  });
});

describe('outlier detection: maxEjectionPercent (Envoy: with this ejection, at most that share out)', () => {
  test.each([
    { total: 3, max: 10, always: false, want: 'overflow' },
    { total: 3, max: 10, always: true, want: 'ejected' },
    { total: 3, max: 33, always: false, want: 'overflow' },
    { total: 3, max: 34, always: false, want: 'ejected' },
    { total: 10, max: 10, always: false, want: 'ejected' },
  ])('$total endpoints, max $max%, alwaysEjectOneEndpoint $always: $want', ({ total, max, always, want }) => {
    const { last } = feed(
      cfg({ consecutive5xxErrors: 1, maxEjectionPercent: max, alwaysEjectOneEndpoint: always }),
      [r(500)],
      total,
    );
    expect(last?.kind).toBe(want);
  });

  test('a second ejection over the limit is refused, even with alwaysEjectOneEndpoint', () => {
    const d = new OutlierDetector(
      cfg({ consecutive5xxErrors: 1, maxEjectionPercent: 40, alwaysEjectOneEndpoint: true }),
    );
    expect(d.record('a', r(500), 0, 3)?.kind).toBe('ejected');
    expect(d.record('b', r(500), 0, 3)?.kind).toBe('overflow');
    expect(d.isEjected('b')).toBe(false);
  });
});

describe('outlier detection: ejection time and return', () => {
  const c = cfg({ consecutive5xxErrors: 1, intervalMs: 1000, baseEjectionTimeMs: 3000 });

  test('an ejected endpoint comes back at the first sweep after base x times ejected, and each ejection in a row lasts longer', () => {
    const d = new OutlierDetector(c);
    d.advance(0); // the sweeps run at 1000, 2000, ...
    expect(d.record('a', r(500), 500, 3)).toEqual({
      kind: 'ejected',
      reason: 'consecutive_5xx',
      untilMs: 3500,
    });
    expect(d.ejected(3999).map((e) => e.key)).toEqual(['a']);
    expect(d.ejected(4000)).toEqual([]); // the sweep at 4000 is the first at or after 3500
    expect(d.record('a', r(500), 4100, 3)).toMatchObject({ kind: 'ejected', untilMs: 4100 + 6000 });
    expect(d.ejected(10_000).map((e) => e.times)).toEqual([2]);
    expect(d.ejected(11_000)).toEqual([]);
  });

  test('a healthy sweep forgives one ejection in a row', () => {
    const d = new OutlierDetector(c);
    d.advance(0);
    d.record('a', r(500), 0, 3); // until 3000
    d.advance(3000); // back
    d.advance(5000); // two healthy sweeps: 4000, 5000: times 1 -> 0
    expect(d.record('a', r(500), 5000, 3)).toMatchObject({ untilMs: 8000 });
  });

  test('ejection time is capped at 300 s (Envoy max_ejection_time)', () => {
    const d = new OutlierDetector(
      cfg({ consecutive5xxErrors: 1, intervalMs: 1000, baseEjectionTimeMs: 200_000 }),
    );
    d.advance(0);
    d.record('a', r(500), 0, 3);
    d.advance(200_000);
    expect(d.record('a', r(500), 200_000, 3)).toMatchObject({ untilMs: 500_000 });
  });

  test('outcomes of an ejected endpoint (panic) eject it no further', () => {
    const d = new OutlierDetector(c);
    d.record('a', r(500), 0, 3);
    expect(d.record('a', r(500), 10, 3)).toBeUndefined();
    expect(d.ejected(10)[0]?.untilMs).toBe(3000);
  });

  test('a long quiet spell costs no more sweeps than there are ejections to end', () => {
    const d = new OutlierDetector(c);
    d.advance(0);
    d.record('a', r(500), 0, 3);
    expect(d.advance(10 ** 12)).toEqual(['a']);
    expect(d.isEjected('a')).toBe(false);
  });
});

describe('the endpoints in service (Envoy panic mode under panicThreshold)', () => {
  const all = ['a', 'b', 'c', 'd'];
  test.each([
    { out: [], panic: 50, want: ['a', 'b', 'c', 'd'] },
    { out: ['a'], panic: 50, want: ['b', 'c', 'd'] },
    { out: ['a', 'b'], panic: 50, want: ['c', 'd'] },
    { out: ['a', 'b', 'c'], panic: 50, want: ['a', 'b', 'c', 'd'] },
    { out: ['a', 'b', 'c', 'd'], panic: 50, want: ['a', 'b', 'c', 'd'] },
    { out: ['a', 'b', 'c'], panic: 0, want: ['d'] },
    { out: ['a', 'b', 'c', 'd'], panic: 0, want: [] },
    { out: ['a'], panic: 100, want: ['a', 'b', 'c', 'd'] },
  ])('$out ejected, panicThreshold $panic: $want', ({ out, panic, want }) => {
    expect(inService(all, (e) => out.includes(e), panic)).toEqual(want);
  });
});
