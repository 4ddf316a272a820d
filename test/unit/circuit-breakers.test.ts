import { Counter, Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { CircuitBreakers, type Release } from '../../src/l7-waypoint/circuit-breakers.js';
import type { CircuitBreaker } from '../../src/traffic-policy/types.js';

const limits: CircuitBreaker = {
  maxConnections: 2,
  maxPendingRequests: 1,
  maxParallelRequests: 3,
  maxParallelRetries: 1,
};

function breakers() {
  const registry = new Registry();
  const overflows = new Counter({
    name: 'overflows_total',
    help: 'x',
    labelNames: ['destination_service', 'reason'],
    registers: [registry],
  });
  const count = async (reason: string) =>
    (await overflows.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
  return { b: new CircuitBreakers(overflows), count };
}

describe("the waypoint's circuit breakers, carried out", () => {
  test('requests over maxParallelRequests overflow until one ends; a release twice gives back one', async () => {
    const { b, count } = breakers();
    const held = [1, 2, 3].map(() => b.request('web', limits));
    expect(held.every((h) => typeof h === 'function')).toBe(true);
    expect(b.request('web', limits)).toBe('maxParallelRequests');
    expect(await count('maxParallelRequests')).toBe(1);
    (held[0] as Release)();
    (held[0] as Release)();
    expect(b.inFlight('web').requests).toBe(2);
    expect(typeof b.request('web', limits)).toBe('function');
    expect(b.request('web', limits)).toBe('maxParallelRequests');
    // Another Service has its own counts.
    expect(typeof b.request('api', limits)).toBe('function');
  });

  test('connections: two at once, one waits and gets the first given back, a further one overflows', async () => {
    const { b, count } = breakers();
    const signal = new AbortController().signal;
    const a = (await b.connection('web', limits, signal)) as Release;
    await b.connection('web', limits, signal);
    let got: unknown;
    const waiting = b.connection('web', limits, signal).then((r) => {
      got = r;
    });
    await Promise.resolve();
    expect(b.inFlight('web')).toMatchObject({ connections: 2, pending: 1 });
    expect(await b.connection('web', limits, signal)).toBe('maxPendingRequests');
    expect(await count('maxPendingRequests')).toBe(1);
    expect(got).toBeUndefined();
    a();
    await waiting;
    expect(typeof got).toBe('function');
    expect(b.inFlight('web')).toMatchObject({ connections: 2, pending: 0 });
  });

  test('a wait for a connection ends when the request ends (client gone, timeout): undefined, no longer pending', async () => {
    const { b } = breakers();
    const signal = new AbortController().signal;
    const a = (await b.connection('web', limits, signal)) as Release;
    await b.connection('web', limits, signal);
    const ac = new AbortController();
    const waiting = b.connection('web', limits, ac.signal);
    ac.abort();
    expect(await waiting).toBeUndefined();
    expect(b.inFlight('web')).toMatchObject({ connections: 2, pending: 0 });
    a();
    expect(b.inFlight('web').connections).toBe(1);
  });

  test('retries over maxParallelRetries are refused and counted', async () => {
    const { b, count } = breakers();
    const r = b.retry('web', limits) as Release;
    expect(b.retry('web', limits)).toBe('maxParallelRetries');
    expect(await count('maxParallelRetries')).toBe(1);
    r();
    expect(typeof b.retry('web', limits)).toBe('function');
  });
});
