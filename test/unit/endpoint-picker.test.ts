import { Counter, Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { EndpointPicker, type PickTarget } from '../../src/l7-waypoint/endpoint-picker.js';
import { Outliers } from '../../src/l7-waypoint/outliers.js';
import type { UpstreamEndpoint } from '../../src/l7-waypoint/upstream.js';
import type { Workload } from '../../src/mesh/view.js';
import { PASSIVE_HEALTH_CHECK_DEFAULTS } from '../../src/traffic-policy/balancing.js';

const ep = (i: number): UpstreamEndpoint => ({
  key: `10.0.0.${i}:8080`,
  ip: `10.0.0.${i}`,
  port: 8080,
  workload: { name: `pod-${i}` } as Workload,
});
const EPS = [1, 2, 3, 4].map(ep);
const facts = (headers: Record<string, string> = {}) => ({
  header: (n: string) => headers[n],
  cookies: headers.cookie,
  sourceAddress: '10.9.9.9:5000',
  identity: 'spiffe://cluster.local/ns/shop/sa/client',
});

function setup(panicThreshold = 50, maxEjectionPercent = 50) {
  const registry = new Registry();
  let now = 0;
  const ejections = new Counter({
    name: 'e',
    help: 'e',
    labelNames: ['destination_service', 'endpoint', 'reason'],
    registers: [registry],
  });
  const overflows = new Counter({
    name: 'o',
    help: 'o',
    labelNames: ['destination_service', 'reason'],
    registers: [registry],
  });
  const outliers = new Outliers({ ejections, overflows }, () => now);
  const picker = new EndpointPicker({ inFlight: () => 0 }, Math.random, outliers);
  const target: PickTarget = {
    hostname: 'web.shop.svc.cluster.local',
    applied: {
      policy: 'shop/p',
      loadBalancer: { type: 'RoundRobin' },
      passiveHealthCheck: {
        ...PASSIVE_HEALTH_CHECK_DEFAULTS,
        consecutive5xxErrors: 2,
        maxEjectionPercent,
        intervalMs: 1000,
        baseEjectionTimeMs: 5000,
        panicThreshold,
      },
    },
  };
  const fail = (e: UpstreamEndpoint) => {
    for (let i = 0; i < 2; i++) picker.outcome(target, e, { kind: 'response', status: 500 }, EPS.length);
  };
  return { picker, target, fail, ejections, at: (ms: number) => (now = ms) };
}

describe('the endpoint picker: load balancer over the endpoints in service', () => {
  test('an ejected endpoint gets no picks until its ejection ends, and is counted once', async () => {
    const { picker, target, fail, ejections, at } = setup();
    fail(EPS[0]!);
    const picks = picker.request(target, facts());
    const seen = new Set(Array.from({ length: 12 }, () => picks.next(EPS)!.key));
    expect(seen).toEqual(new Set([EPS[1]!.key, EPS[2]!.key, EPS[3]!.key]));
    expect((await ejections.get()).values.map((v) => [v.labels.endpoint, v.labels.reason, v.value])).toEqual([
      [EPS[0]!.key, 'consecutive_5xx', 1],
    ]);
    at(5000);
    const back = new Set(Array.from({ length: 12 }, () => picks.next(EPS)!.key));
    expect(back.has(EPS[0]!.key)).toBe(true);
  });

  test('a retry goes to an endpoint not tried yet; when all were tried, to any in service', () => {
    const { picker, target } = setup();
    const picks = picker.request(target, facts());
    const tried = new Set([EPS[0]!.key, EPS[1]!.key, EPS[2]!.key]);
    expect(picks.next(EPS, tried)).toBe(EPS[3]);
    expect(picks.next(EPS, new Set(EPS.map((e) => e.key)))).toBeDefined();
  });

  test.each([
    { panic: 75, want: 4 },
    { panic: 50, want: 2 },
    { panic: 0, want: 2 },
  ])('two of four ejected, panicThreshold $panic: picks over $want endpoints', ({ panic, want }) => {
    const { picker, target, fail } = setup(panic);
    fail(EPS[0]!);
    fail(EPS[1]!);
    const picks = picker.request(target, facts());
    expect(new Set(Array.from({ length: 16 }, () => picks.next(EPS)?.key)).size).toBe(want);
  });

  test('panicThreshold 0 and every endpoint ejected: no endpoint (the waypoint answers 503 UH)', () => {
    const { picker, target } = setup(0, 100);
    const two = EPS.slice(0, 2);
    for (const e of two)
      for (let i = 0; i < 2; i++) picker.outcome(target, e, { kind: 'response', status: 500 }, two.length);
    expect(picker.request(target, facts()).next(two)).toBeUndefined();
  });

  test('no policy: least request over all, no cookie', () => {
    const picker = new EndpointPicker({ inFlight: (k) => (k === EPS[0]!.key ? 0 : 9) }, Math.random);
    const picks = picker.request({ hostname: 'x' }, facts());
    expect(picks.setCookie).toBeUndefined();
    expect(
      Array.from({ length: 20 }, () => picks.next(EPS)).filter((e) => e === EPS[0]).length,
    ).toBeGreaterThan(0);
  });

  test('a cookie hash without the cookie sets one and keeps the pick; with it, the same endpoint', () => {
    const picker = new EndpointPicker({ inFlight: () => 0 }, Math.random);
    const target: PickTarget = {
      hostname: 'web',
      applied: {
        policy: 'shop/p',
        loadBalancer: {
          type: 'ConsistentHash',
          hashOn: { type: 'Cookie', name: 'sid', ttlMs: 60_000, attributes: {} },
          tableSize: 65537,
        },
      },
    };
    const first = picker.request(target, facts());
    expect(first.setCookie).toMatch(/^sid=[0-9a-f]{16}; Max-Age=60; HttpOnly$/);
    const value = first.setCookie!.split(';')[0]!;
    const chosen = first.next(EPS);
    for (let i = 0; i < 10; i++) {
      const again = picker.request(target, facts({ cookie: `other=1; ${value}` }));
      expect(again.setCookie).toBeUndefined();
      expect(again.next(EPS)).toBe(chosen);
    }
  });
});
