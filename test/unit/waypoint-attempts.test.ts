import { Counter, Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { sendAttempts } from '../../src/l7-waypoint/attempts.js';
import { EndpointPicker } from '../../src/l7-waypoint/endpoint-picker.js';
import { Outliers } from '../../src/l7-waypoint/outliers.js';
import type { Plan } from '../../src/l7-waypoint/plan.js';
import { RequestRecord } from '../../src/l7-waypoint/request-record.js';
import { RetryBudgets } from '../../src/l7-waypoint/retry-budgets.js';
import {
  AttemptError,
  type UpstreamEndpoint,
  type UpstreamResponse,
  type Upstreams,
} from '../../src/l7-waypoint/upstream.js';
import { retryPolicyOf } from '../../src/mesh/http-retry.js';
import type { MeshService, Workload } from '../../src/mesh/view.js';
import { PASSIVE_HEALTH_CHECK_DEFAULTS } from '../../src/traffic-policy/balancing.js';
import type { AppliedTrafficPolicy } from '../../src/traffic-policy/types.js';

/*
 * The attempts of one request, against endpoints that answer as each case says: which answer the
 * client gets when a retry cannot be made, and what the record says about why.
 */

const HOST = 'web.shop.svc.cluster.local';
const ep = (i: number): UpstreamEndpoint => ({
  key: `10.0.0.${i}:8080`,
  ip: `10.0.0.${i}`,
  port: 8080,
  workload: { name: `web-${i}` } as Workload,
});

function response(status: number): UpstreamResponse {
  return {
    status,
    headers: {},
    endOfStream: false,
    pipe: (sink) => sink.end(undefined),
    discard: () => undefined,
  };
}

/** Runs one request's attempts; `answer` is what each endpoint does with the nth attempt. */
async function run(opts: {
  readonly endpoints: number;
  readonly applied: AppliedTrafficPolicy;
  readonly retry?: Parameters<typeof retryPolicyOf>[0];
  readonly answer: (e: UpstreamEndpoint, n: number) => UpstreamResponse | AttemptError;
  /** Endpoints that answered a 500 before this request. */
  readonly failedBefore?: readonly number[];
}) {
  const registry = new Registry();
  const counter = <L extends string>(name: string, labelNames: L[]) =>
    new Counter({ name, help: name, labelNames, registers: [registry] });
  const outliers = new Outliers({
    ejections: counter('ejections', ['destination_service', 'endpoint', 'reason']),
    overflows: counter('overflows', ['destination_service', 'reason']),
  });
  const sent: string[] = [];
  const upstreams = {
    inFlight: () => 0,
    send: async (e: UpstreamEndpoint) => {
      sent.push(e.key);
      const a = opts.answer(e, sent.length);
      if (a instanceof AttemptError) throw a;
      return a;
    },
  } as unknown as Upstreams;
  const picker = new EndpointPicker(upstreams, Math.random, outliers);
  const rec = new RequestRecord(
    {} as never,
    { identity: 'spiffe://cluster.local/ns/shop/sa/client', address: '10.0.1.1' },
    { method: 'GET', path: '/', authority: 'web', protocol: 'HTTP/1.1', grpc: false, requestId: 'r' },
    undefined,
    HOST,
  );
  const endpoints = Array.from({ length: opts.endpoints }, (_, i) => ep(i + 1));
  const plan: Plan = {
    endpoints,
    head: { method: 'GET', path: '/', authority: 'web', headers: {} },
    retry: { ...retryPolicyOf(opts.retry), backoffMs: 0 },
    timeouts: {},
    responseHeaders: [],
    mirrors: [],
    routeNamespace: 'shop',
    backend: { hostname: HOST } as MeshService,
    policy: { hostname: HOST, applied: opts.applied },
  };
  for (const i of opts.failedBefore ?? [])
    picker.outcome(plan.policy, ep(i), { kind: 'response', status: 500 }, endpoints.length);
  const out = await sendAttempts(
    {
      upstreams,
      picker,
      random: Math.random,
      budgets: new RetryBudgets(counter('budget', ['destination_service', 'reason'])),
    },
    {
      plan,
      body: undefined,
      protocol: 'HTTP/1.1',
      picks: picker.request(plan.policy, {
        header: () => undefined,
        cookies: undefined,
        sourceAddress: '10.0.1.1',
        identity: '',
      }),
      signal: new AbortController().signal,
      ended: () => undefined,
      rec,
      hold: () => undefined,
    },
  );
  return { out, rec, sent };
}

const ejectOnFirst5xx: AppliedTrafficPolicy = {
  policy: 'shop/p',
  passiveHealthCheck: {
    ...PASSIVE_HEALTH_CHECK_DEFAULTS,
    consecutive5xxErrors: 1,
    maxEjectionPercent: 100,
    panicThreshold: 0,
  },
};

describe('sendAttempts: when a retry cannot be made, the last answer stands', () => {
  test('every endpoint ejected by the time of the retry (panicThreshold 0): the endpoint’s 500, not 503 UH', async () => {
    const { out, rec, sent } = await run({
      endpoints: 2,
      applied: ejectOnFirst5xx,
      retry: { codes: [500], attempts: 3 },
      answer: () => response(500),
    });
    // Each 500 ejects its endpoint: the first retry goes to the other one, the next finds none left.
    expect([...sent].sort()).toEqual(['10.0.0.1:8080', '10.0.0.2:8080']);
    expect(out.kind).toBe('response');
    expect(out.kind === 'response' && out.resp.status).toBe(500);
    expect(rec.attempts).toBe(2);
    expect(rec.reason).toBe('retry not made: every endpoint is ejected (healthCheck.panicThreshold 0)');
  });

  test('every endpoint ejected before the first attempt (panicThreshold 0): 503 UH, no attempt made', async () => {
    const { out, sent } = await run({
      endpoints: 2,
      applied: ejectOnFirst5xx,
      failedBefore: [1, 2],
      answer: () => response(200),
    });
    expect(sent).toEqual([]);
    expect(out).toMatchObject({ kind: 'failed', failure: 'no-healthy-upstream' });
  });

  test('a connect failure whose retry the budget refuses keeps the connect error in the reason, and says why it was not retried', async () => {
    const { out, sent } = await run({
      endpoints: 2,
      applied: {
        policy: 'shop/p',
        retryConstraint: {
          budgetPercent: 0,
          budgetIntervalMs: 10_000,
          minRetryCount: 0,
          minRetryIntervalMs: 1000,
        },
      },
      answer: (e) => new AttemptError('connect-failure', `connect ECONNREFUSED ${e.key}`),
    });
    expect(sent).toHaveLength(1);
    expect(out).toEqual({
      kind: 'failed',
      failure: 'upstream-connect-failure',
      reason: `connect ECONNREFUSED ${sent[0]}; retry not made: the retry budget of ${HOST} is spent (retryConstraint of BackendTrafficPolicy shop/p)`,
      flags: [],
    });
  });

  test('a connect failure retried elsewhere within the budget: the other endpoint’s answer', async () => {
    const { out, sent, rec } = await run({
      endpoints: 2,
      applied: {
        policy: 'shop/p',
        retryConstraint: {
          budgetPercent: 0,
          budgetIntervalMs: 10_000,
          minRetryCount: 5,
          minRetryIntervalMs: 1000,
        },
      },
      // Whichever endpoint the first attempt goes to cannot be reached; the other answers.
      answer: (_e, n) =>
        n === 1 ? new AttemptError('connect-failure', 'connect ECONNREFUSED') : response(200),
    });
    expect(sent).toHaveLength(2);
    expect(new Set(sent).size).toBe(2);
    expect(out.kind === 'response' && out.resp.status).toBe(200);
    expect(rec.reason).toBeUndefined();
    expect(rec.retried).toEqual(['connect-failure']);
  });
});
