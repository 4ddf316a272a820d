import { describe, expect, test } from 'vitest';
import type { RouteRetry, RouteTimeouts } from '../../src/gateway-api/types.js';
import {
  type AttemptResult,
  DEFAULT_BACKOFF_MS,
  DEFAULT_RETRY_ATTEMPTS,
  type RequestTimeouts,
  type RetryPolicy,
  retryDelayMs,
  retryPolicyOf,
  shouldRetry,
  timeoutsOf,
} from '../../src/mesh/http-retry.js';

/** A policy as plain data, so that a table can compare it whole. */
const shown = (p: RetryPolicy) => ({ ...p, codes: [...p.codes].sort((a, b) => a - b) });

describe('retryPolicyOf: the policy a route rule gives a request', () => {
  test.each<{ what: string; retry: RouteRetry | undefined; expected: ReturnType<typeof shown> }>([
    {
      what: 'no retry stanza: connect failures only, twice, with the default back-off',
      retry: undefined,
      expected: { retries: 2, codes: [], resets: false, backoffMs: 25, source: 'default' },
    },
    {
      what: 'a stanza with codes only: default attempts and back-off, resets retried',
      retry: { codes: [503, 502] },
      expected: { retries: 2, codes: [502, 503], resets: true, backoffMs: 25, source: 'route' },
    },
    {
      what: 'a stanza with attempts and back-off',
      retry: { codes: [500], attempts: 5, backoffMs: 100 },
      expected: { retries: 5, codes: [500], resets: true, backoffMs: 100, source: 'route' },
    },
    {
      what: 'attempts 0 turns retries off',
      retry: { codes: [503], attempts: 0 },
      expected: { retries: 0, codes: [503], resets: true, backoffMs: 25, source: 'route' },
    },
    {
      what: 'an empty stanza still retries resets',
      retry: { codes: [] },
      expected: { retries: 2, codes: [], resets: true, backoffMs: 25, source: 'route' },
    },
    {
      what: 'repeated codes count once',
      retry: { codes: [503, 503] },
      expected: { retries: 2, codes: [503], resets: true, backoffMs: 25, source: 'route' },
    },
  ])('$what', ({ retry, expected }) => {
    expect(shown(retryPolicyOf(retry))).toEqual(expected);
  });

  test('the defaults are the documented ones', () => {
    expect([DEFAULT_RETRY_ATTEMPTS, DEFAULT_BACKOFF_MS]).toEqual([2, 25]);
  });
});

const DEFAULT = retryPolicyOf(undefined);
const ROUTE = retryPolicyOf({ codes: [503, 504] });
const ROUTE_NO_504 = retryPolicyOf({ codes: [503] });

const response = (status: number): AttemptResult => ({ kind: 'response', status });
const CONNECT: AttemptResult = { kind: 'connect-failure' };
const RESET: AttemptResult = { kind: 'reset' };
const TIMEOUT: AttemptResult = { kind: 'attempt-timeout' };

type Body = 'none' | 'kept' | 'streamed';
type Row = [
  policy: 'default' | 'route' | 'route-no-504',
  result: AttemptResult,
  body: Body,
  retried: boolean,
];

const policies = { default: DEFAULT, route: ROUTE, 'route-no-504': ROUTE_NO_504 } as const;
const label = (r: AttemptResult): string => (r.kind === 'response' ? `response ${r.status}` : r.kind);

describe('shouldRetry: after the first attempt, by how it ended, what body it had, and whose policy', () => {
  test.each(
    (
      [
        // The request never reached a backend: safe to send again, unless its body was streamed away.
        // (A streamed body is never resent, even on a connect failure: the body stream may already be read.)
        ['default', CONNECT, 'none', true],
        ['default', CONNECT, 'kept', true],
        ['default', CONNECT, 'streamed', false],
        ['route', CONNECT, 'none', true],
        ['route', CONNECT, 'kept', true],
        ['route', CONNECT, 'streamed', false],
        // The connection broke after the request went out: only a route's stanza retries it.
        ['default', RESET, 'none', false],
        ['default', RESET, 'kept', false],
        ['default', RESET, 'streamed', false],
        ['route', RESET, 'none', true],
        ['route', RESET, 'kept', true],
        ['route', RESET, 'streamed', false],
        // backendRequest expired: retried when the stanza retries 504.
        ['default', TIMEOUT, 'none', false],
        ['default', TIMEOUT, 'kept', false],
        ['default', TIMEOUT, 'streamed', false],
        ['route', TIMEOUT, 'none', true],
        ['route', TIMEOUT, 'kept', true],
        ['route', TIMEOUT, 'streamed', false],
        ['route-no-504', TIMEOUT, 'none', false],
        ['route-no-504', TIMEOUT, 'kept', false],
        // A response: retried when its code is in the stanza.
        ['default', response(503), 'none', false],
        ['default', response(503), 'kept', false],
        ['default', response(503), 'streamed', false],
        ['default', response(200), 'none', false],
        ['route', response(503), 'none', true],
        ['route', response(503), 'kept', true],
        ['route', response(503), 'streamed', false],
        ['route', response(504), 'none', true],
        ['route', response(500), 'none', false],
        ['route', response(502), 'kept', false],
        ['route', response(200), 'none', false],
        ['route', response(404), 'kept', false],
        ['route-no-504', response(504), 'none', false],
      ] satisfies Row[]
    ).map(([policy, result, body, retried]) => ({ policy, kind: label(result), result, body, retried })),
  )('$policy policy, $kind, body $body: retried $retried', ({ policy, result, body, retried }) => {
    expect(shouldRetry(policies[policy], 1, result, body)).toBe(retried);
  });

  test.each<{ what: string; policy: RetryPolicy; results: AttemptResult[]; attempts: number }>([
    {
      what: 'default policy, the endpoint keeps refusing: 1 + 2 attempts',
      policy: DEFAULT,
      results: [CONNECT],
      attempts: 3,
    },
    {
      what: 'route policy, 503 after 503: 1 + 2 attempts',
      policy: ROUTE,
      results: [response(503)],
      attempts: 3,
    },
    {
      what: 'route with attempts 4, resets: 1 + 4 attempts',
      policy: retryPolicyOf({ codes: [], attempts: 4 }),
      results: [RESET],
      attempts: 5,
    },
    {
      what: 'attempts 0: one attempt, even for a connect failure',
      policy: retryPolicyOf({ codes: [503], attempts: 0 }),
      results: [CONNECT],
      attempts: 1,
    },
    {
      what: 'a retriable failure then a success stops at the success',
      policy: ROUTE,
      results: [response(503), response(200)],
      attempts: 2,
    },
    {
      what: 'a retriable failure then a non-retriable one stops there',
      policy: ROUTE,
      results: [CONNECT, response(500)],
      attempts: 2,
    },
  ])('$what', ({ policy, results, attempts }) => {
    // Simulates the forwarding loop: the n-th attempt ends with results[n-1] (the last one repeats).
    let made = 0;
    for (;;) {
      made++;
      const result = results[Math.min(made, results.length) - 1]!;
      if (!shouldRetry(policy, made, result, 'none')) break;
      if (made > 100) throw new Error('never stops');
    }
    expect(made).toBe(attempts);
  });

  test.each([CONNECT, RESET, TIMEOUT, response(503)].map((result) => ({ kind: label(result), result })))(
    'no attempt is made past the last one ($kind)',
    ({ result }) => {
      expect(shouldRetry(ROUTE, ROUTE.retries, result, 'kept')).toBe(true);
      expect(shouldRetry(ROUTE, ROUTE.retries + 1, result, 'kept')).toBe(false);
    },
  );
});

/** A fixed stand-in for Math.random. */
const always = (v: number) => () => v;
const MAX_RANDOM = 1 - Number.EPSILON;

describe('retryDelayMs: the wait before retry n', () => {
  test.each<{ what: string; backoffMs: number; n: number; random: number; expected: number }>([
    { what: 'first retry, no jitter: the back-off', backoffMs: 25, n: 1, random: 0, expected: 25 },
    {
      what: 'first retry, most jitter: under twice the back-off',
      backoffMs: 25,
      n: 1,
      random: MAX_RANDOM,
      expected: 49,
    },
    { what: 'second retry doubles', backoffMs: 25, n: 2, random: 0, expected: 50 },
    { what: 'third retry doubles again', backoffMs: 25, n: 3, random: 0, expected: 100 },
    { what: 'jitter adds up to one back-off', backoffMs: 25, n: 3, random: 0.5, expected: 112 },
    { what: 'fourth retry: 8x', backoffMs: 25, n: 4, random: 0, expected: 200 },
    {
      what: 'fourth retry with jitter is capped at 10x',
      backoffMs: 25,
      n: 4,
      random: MAX_RANDOM,
      expected: 224,
    },
    { what: 'fifth retry is capped at 10x', backoffMs: 25, n: 5, random: 0, expected: 250 },
    { what: 'a far retry stays capped', backoffMs: 25, n: 50, random: MAX_RANDOM, expected: 250 },
    { what: 'a route back-off', backoffMs: 100, n: 1, random: 0.25, expected: 125 },
    { what: 'a route back-off, capped', backoffMs: 100, n: 9, random: 0.25, expected: 1000 },
  ])('$what', ({ backoffMs, n, random, expected }) => {
    const p = retryPolicyOf({ codes: [503], backoffMs });
    expect(retryDelayMs(p, n, always(random))).toBe(expected);
  });

  test.each([25, 100, 1000])(
    'never below the back-off, never above 10x, and never shorter than the retry before (%i ms)',
    (backoffMs) => {
      const p = retryPolicyOf({ codes: [503], backoffMs });
      for (const r of [0, 0.3, 0.7, MAX_RANDOM]) {
        const waits = Array.from({ length: 12 }, (_, i) => retryDelayMs(p, i + 1, always(r)));
        for (const w of waits) {
          expect(w).toBeGreaterThanOrEqual(backoffMs);
          expect(w).toBeLessThanOrEqual(backoffMs * 10);
        }
        expect(waits).toEqual([...waits].sort((a, b) => a - b));
        expect(waits.at(-1)).toBe(backoffMs * 10);
      }
    },
  );
});

describe('timeoutsOf: the deadlines of a request', () => {
  test.each<{ what: string; t: RouteTimeouts | undefined; expected: RequestTimeouts }>([
    { what: 'no timeouts stanza: no deadline', t: undefined, expected: {} },
    { what: 'an empty stanza: no deadline', t: {}, expected: {} },
    { what: 'request only', t: { requestMs: 2000 }, expected: { requestMs: 2000 } },
    {
      what: 'backendRequest only bounds each attempt',
      t: { backendRequestMs: 500 },
      expected: { attemptMs: 500 },
    },
    {
      what: 'both',
      t: { requestMs: 2000, backendRequestMs: 500 },
      expected: { requestMs: 2000, attemptMs: 500 },
    },
    {
      what: 'request 0s disables it',
      t: { requestMs: 0, backendRequestMs: 500 },
      expected: { attemptMs: 500 },
    },
    {
      what: 'backendRequest 0s disables it',
      t: { requestMs: 2000, backendRequestMs: 0 },
      expected: { requestMs: 2000 },
    },
    { what: 'both 0s: no deadline', t: { requestMs: 0, backendRequestMs: 0 }, expected: {} },
  ])('$what', ({ t, expected }) => {
    expect(timeoutsOf(t)).toStrictEqual(expected);
  });
});
