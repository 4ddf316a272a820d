import { describe, expect, test } from 'vitest';
import { pickLeastRequest } from '../../src/mesh/load-balancer-least-request.js';

/** mulberry32: a small seeded PRNG, so that the statistical tests give the same answer every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MAX_RANDOM = 1 - Number.EPSILON;

/** Endpoints by name with their requests in flight. */
type Load = Readonly<Record<string, number>>;

/** How often each endpoint is picked in `draws` picks. */
function counts(load: Load, random: () => number, draws: number): Record<string, number> {
  const names = Object.keys(load);
  const out: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (let i = 0; i < draws; i++) {
    const p = pickLeastRequest(names, (n) => load[n]!, random)!;
    out[p]!++;
  }
  return out;
}

describe('pickLeastRequest', () => {
  test.each<{ what: string; candidates: string[]; expected: string | undefined }>([
    { what: 'no candidate: nothing', candidates: [], expected: undefined },
    { what: 'one candidate: that one, however busy', candidates: ['busy'], expected: 'busy' },
  ])('$what', ({ candidates, expected }) => {
    const random = () => {
      throw new Error('no draw is needed');
    };
    expect(pickLeastRequest(candidates, () => 1000, random)).toBe(expected);
  });

  test.each<{ what: string; load: Load; random: number }>([
    { what: 'random 0', load: { a: 3, b: 1 }, random: 0 },
    { what: 'random 0.5', load: { a: 3, b: 1 }, random: 0.5 },
    { what: 'random just below 1', load: { a: 3, b: 1 }, random: MAX_RANDOM },
    { what: 'the less loaded listed first', load: { b: 1, a: 3 }, random: 0 },
    { what: 'the less loaded listed first, random just below 1', load: { b: 1, a: 3 }, random: MAX_RANDOM },
  ])('two candidates are both drawn, so the less loaded always wins ($what)', ({ load, random }) => {
    expect(
      pickLeastRequest(
        Object.keys(load),
        (n) => load[n]!,
        () => random,
      ),
    ).toBe('b');
  });

  test('it compares two distinct candidates and takes the less loaded of them', () => {
    const load: Load = { a: 4, b: 0, c: 7, d: 2, e: 5, f: 1 };
    const names = Object.keys(load);
    const random = seeded(11);
    for (let i = 0; i < 2000; i++) {
      const asked = new Set<string>();
      const picked = pickLeastRequest(
        names,
        (n) => {
          asked.add(n);
          return load[n]!;
        },
        random,
      )!;
      expect(asked.size).toBe(2);
      expect(asked.has(picked)).toBe(true);
      expect(load[picked]).toBe(Math.min(...[...asked].map((n) => load[n]!)));
    }
  });

  test.each<{ what: string; random: () => number }>([
    { what: 'random always 0', random: () => 0 },
    { what: 'random always just below 1', random: () => MAX_RANDOM },
  ])('the two drawn are distinct even at the edges of random ($what)', ({ random }) => {
    for (const n of [2, 3, 10]) {
      const names = Array.from({ length: n }, (_, i) => `e${i}`);
      const asked = new Set<string>();
      const picked = pickLeastRequest(
        names,
        (c) => {
          asked.add(c);
          return 0;
        },
        random,
      );
      expect(asked.size).toBe(2);
      expect(names).toContain(picked);
    }
  });

  test('a tie between two goes either way, about evenly', () => {
    const got = counts({ a: 2, b: 2 }, seeded(3), 4000);
    expect(got.a).toBeGreaterThan(1800);
    expect(got.b).toBeGreaterThan(1800);
  });

  test('equally loaded endpoints share the picks about evenly', () => {
    const got = counts({ a: 0, b: 0, c: 0, d: 0 }, seeded(5), 8000);
    for (const n of Object.values(got)) {
      expect(n).toBeGreaterThan(1800);
      expect(n).toBeLessThan(2200);
    }
  });

  test('the most loaded of three is never picked; the least loaded whenever it is drawn (2 draws in 3)', () => {
    const got = counts({ idle: 0, some: 1, busy: 2 }, seeded(9), 6000);
    expect(got.busy).toBe(0);
    expect(got.idle).toBeGreaterThan(3800);
    expect(got.idle).toBeLessThan(4200);
    expect(got.some).toBe(6000 - got.idle!);
  });

  test('one endpoint much busier than the rest is never picked, and the idle ones share the load', () => {
    const load: Load = {
      busy: 500,
      ...Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`idle-${i}`, 0])),
    };
    const got = counts(load, seeded(42), 9000);
    expect(got.busy).toBe(0);
    for (const [name, n] of Object.entries(got)) {
      if (name === 'busy') continue;
      expect(n, name).toBeGreaterThan(800);
      expect(n, name).toBeLessThan(1200);
    }
  });

  test('an endpoint that never completes gets at most one request while the others keep up', () => {
    // The others answer before the next request arrives; the stuck one holds every request it gets.
    const inFlight: Record<string, number> = { stuck: 0, a: 0, b: 0, c: 0 };
    const random = seeded(21);
    const sent: Record<string, number> = { stuck: 0, a: 0, b: 0, c: 0 };
    for (let i = 0; i < 1000; i++) {
      const p = pickLeastRequest(Object.keys(inFlight), (n) => inFlight[n]!, random)!;
      sent[p]!++;
      if (p === 'stuck') inFlight.stuck!++;
    }
    expect(sent.stuck).toBeLessThanOrEqual(1);
    expect(sent.a! + sent.b! + sent.c!).toBeGreaterThanOrEqual(999);
  });
});
