import { pause } from '../clock.js';
import type { Random } from '../gateway-api/backend-pick.js';
import { type AttemptResult, retryDelayMs, shouldRetry } from '../mesh/http-retry.js';
import { type HttpFailure, RETRY_LIMIT_FLAG } from '../telemetry/http-outcomes.js';
import type { RequestTrace } from '../telemetry/tracing.js';
import type { CircuitBreakers, Release } from './circuit-breakers.js';
import type { EndpointPicker, RequestPicks } from './endpoint-picker.js';
import type { Plan } from './plan.js';
import type { RequestBody } from './request-body.js';
import type { RequestRecord } from './request-record.js';
import type { RetryBudgets } from './retry-budgets.js';
import { AttemptError, type UpstreamEndpoint, type UpstreamResponse, type Upstreams } from './upstream.js';

export interface AttemptsDeps {
  readonly upstreams: Upstreams;
  readonly picker: EndpointPicker;
  readonly random: Random;
  readonly breakers?: CircuitBreakers;
  readonly budgets?: RetryBudgets;
}

/** One request's attempts: what they send, and the state of the request they belong to. */
export interface AttemptsRequest {
  readonly plan: Plan;
  readonly body: RequestBody | undefined;
  readonly protocol: 'HTTP/1.1' | 'HTTP/2';
  /** The request's endpoint picks (its hash key is the same for every attempt). */
  readonly picks: RequestPicks;
  /** Aborts when the request's life ends: its client went away or its timeout expired (`ended` says which). */
  readonly signal: AbortSignal;
  ended(): 'client-gone' | 'timed-out' | undefined;
  readonly rec: RequestRecord;
  readonly trace?: RequestTrace;
  /** Keeps a circuit-breaker slot until the request ends. */
  hold(release: Release): void;
}

/** The answer the attempts chose, with `stop` (ends the attempt, once its body has been passed on). */
export type ChosenResponse = UpstreamResponse & { readonly stop: () => void; readonly timedOut: boolean };

export type AttemptsOutcome =
  | { readonly kind: 'response'; readonly resp: ChosenResponse }
  | {
      readonly kind: 'failed';
      readonly failure: HttpFailure;
      readonly reason: string;
      readonly flags: readonly string[];
    };

const failed = (failure: HttpFailure, reason: string, flags: readonly string[] = []): AttemptsOutcome => ({
  kind: 'failed',
  failure,
  reason,
  flags,
});

const ALL_EJECTED = 'every endpoint is ejected (healthCheck.panicThreshold 0)';

/**
 * The attempts of one request: an endpoint for each (the Service's load balancer, ejected endpoints
 * left out, a retry elsewhere when it can), each within its timeout and the request's, under the
 * circuit breaker's connection limit; retries as the route says, when the body can be sent again,
 * the policy's maxParallelRetries and the retry budget allow them, and there is an endpoint to take
 * them. A retry that is not made leaves the last answer standing, and the record says why.
 */
export async function sendAttempts(deps: AttemptsDeps, req: AttemptsRequest): Promise<AttemptsOutcome> {
  const { plan, body, rec, picks } = req;
  const deadline = plan.timeouts.requestMs === undefined ? undefined : Date.now() + plan.timeouts.requestMs;
  const tried = new Set<string>();
  let last: AttemptResult | undefined;
  /** The last attempt's error, and why a retry the route wanted was not made. */
  let lastError: string | undefined;
  let notRetried: string | undefined;
  const policy = plan.policy;
  const cb = policy?.applied.circuitBreaker;
  const breakers = deps.breakers;
  const service = plan.backend?.hostname;
  const budget = policy?.applied.retryConstraint;
  if (service !== undefined && budget !== undefined) deps.budgets?.request(service, budget);
  let retrySlot: Release | undefined;

  /** Why a retry is not allowed (maxParallelRetries, the retry budget); undefined: allowed, its slot held. */
  const retryRefused = (): string | undefined => {
    let got: Release | undefined;
    if (cb !== undefined && breakers !== undefined) {
      const slot = breakers.retry(policy!.hostname, cb);
      if (typeof slot === 'string')
        return `circuitBreaker.${slot} (${cb[slot]}) of BackendTrafficPolicy ${policy!.applied.policy} reached`;
      got = slot;
    }
    if (
      service !== undefined &&
      budget !== undefined &&
      deps.budgets !== undefined &&
      !deps.budgets.retry(service, budget)
    ) {
      got?.();
      return `the retry budget of ${service} is spent (retryConstraint of BackendTrafficPolicy ${policy!.applied.policy})`;
    }
    if (got !== undefined) {
      retrySlot = got;
      req.hold(got);
    }
    return undefined;
  };
  /** The next attempt after `result`, if the route retries it and one can be made. */
  const retryAfter = (
    made: number,
    result: AttemptResult,
  ): { ep: UpstreamEndpoint; wait: number } | undefined => {
    if (!shouldRetry(plan.retry, made, result, body?.state ?? 'none') || req.signal.aborted) return undefined;
    const wait = retryDelayMs(plan.retry, made, deps.random);
    if (deadline !== undefined && Date.now() + wait >= deadline) return undefined;
    // Picked now, so that a retry with nowhere to go (all ejected) leaves the last answer standing.
    const ep = picks.next(plan.endpoints, tried);
    const why = ep === undefined ? ALL_EJECTED : retryRefused();
    if (why !== undefined) {
      notRetried = `retry not made: ${why}`;
      return undefined;
    }
    return { ep: ep!, wait };
  };
  const because = (reason: string): string =>
    notRetried === undefined ? reason : `${reason}; ${notRetried}`;

  let ep = picks.next(plan.endpoints);
  if (ep === undefined) return failed('no-healthy-upstream', ALL_EJECTED);
  for (let made = 0, wait = 0; ; ) {
    if (wait > 0) await pause(wait, req.signal);
    if (req.signal.aborted) break;
    // A body that cannot be sent again (it streamed past the bound, or has not ended) ends the retries.
    const payload = body?.forAttempt();
    if (body !== undefined && payload === undefined) break;
    tried.add(ep.key);
    made++;
    rec.attempts = made;
    rec.endpoint = ep.workload;
    rec.upstreamHost = ep.key;
    const span = req.trace?.attempt('upstream', { 'server.address': ep.key, 'ambit.attempt': made });
    // The head is copied only when this attempt adds to it (its span, a kept body's length).
    let headers = plan.head.headers;
    if (span !== undefined || Buffer.isBuffer(payload)) {
      headers = { ...headers };
      if (Buffer.isBuffer(payload)) headers['content-length'] = String(payload.length);
      span?.inject(headers);
    }
    // The attempt ends when its own timeout fires, or the request's life ends (client gone, timeout).
    const attempt = new AbortController();
    const onAbort = (): void => attempt.abort();
    req.signal.addEventListener('abort', onAbort, { once: true });
    let attemptTimedOut = false;
    const attemptTimer =
      plan.timeouts.attemptMs === undefined
        ? undefined
        : setTimeout(() => {
            attemptTimedOut = true;
            attempt.abort();
          }, plan.timeouts.attemptMs);
    // A circuit breaker's connection for this attempt (and a retry's slot), held until it ends.
    const held: Release[] = [];
    if (retrySlot !== undefined) held.push(retrySlot);
    retrySlot = undefined;
    const stop = (): void => {
      clearTimeout(attemptTimer);
      req.signal.removeEventListener('abort', onAbort);
      for (const r of held) r();
    };
    if (cb !== undefined && breakers !== undefined) {
      const conn = await breakers.connection(policy!.hostname, cb, attempt.signal);
      if (conn === undefined) {
        // The wait ended with the attempt: its timeout, or the request's end (client gone, timeout).
        stop();
        if (attemptTimedOut) last = { kind: 'attempt-timeout' };
        break;
      }
      if (typeof conn === 'string') {
        stop();
        return failed(
          'upstream-overflow',
          `circuitBreaker.maxConnections (${cb.maxConnections}) in use and maxPendingRequests (${cb.maxPendingRequests}) waiting, BackendTrafficPolicy ${policy!.applied.policy}`,
        );
      }
      held.push(conn);
      req.hold(conn);
    }
    try {
      const resp = await deps.upstreams.send(
        ep,
        req.protocol,
        { ...plan.head, headers, body: payload },
        attempt.signal,
      );
      last = { kind: 'response', status: resp.status };
      deps.picker.outcome(policy, ep, last, plan.endpoints.length);
      span?.end({ 'http.response.status_code': resp.status }, resp.status >= 500);
      const next = retryAfter(made, last);
      if (next !== undefined) {
        stop();
        resp.discard();
        rec.retried.push(String(resp.status));
        ({ ep, wait } = next);
        continue;
      }
      if (notRetried !== undefined) rec.reason = notRetried;
      // The attempt's timeout and the request's abort stay armed until the response has ended.
      attempt.signal.addEventListener('abort', () => resp.discard(), { once: true });
      return {
        kind: 'response',
        resp: {
          ...resp,
          stop,
          get timedOut() {
            return attemptTimedOut;
          },
        },
      };
    } catch (err) {
      stop();
      const result: AttemptResult = attemptTimedOut
        ? { kind: 'attempt-timeout' }
        : err instanceof AttemptError
          ? { kind: err.kind }
          : { kind: 'reset' };
      last = result;
      const ended = req.ended();
      // The client leaving says nothing about the endpoint; the request's timeout is a timeout there.
      if (ended !== 'client-gone')
        deps.picker.outcome(
          policy,
          ep,
          ended === 'timed-out' ? { kind: 'attempt-timeout' } : result,
          plan.endpoints.length,
        );
      span?.end({ 'ambit.error': (err as Error).message }, true);
      lastError = (err as Error).message;
      if (ended !== undefined) break;
      const next = retryAfter(made, result);
      if (next === undefined) break;
      rec.retried.push(result.kind);
      ({ ep, wait } = next);
    }
  }
  const retried = rec.attempts > 1 ? [RETRY_LIMIT_FLAG] : [];
  const ended = req.ended();
  if (ended === 'client-gone') return failed('downstream-reset', 'the client went away');
  if (ended === 'timed-out')
    return failed('upstream-timeout', `timeouts.request (${plan.timeouts.requestMs} ms) expired`, retried);
  if (last?.kind === 'attempt-timeout')
    return failed(
      'upstream-timeout',
      because(`timeouts.backendRequest (${plan.timeouts.attemptMs} ms) expired`),
      retried,
    );
  if (last?.kind === 'connect-failure')
    return failed('upstream-connect-failure', because(lastError ?? 'connect failed'), retried);
  if (last === undefined) return failed('downstream-reset', 'the request body could not be sent');
  return failed('upstream-reset', because(lastError ?? 'the upstream connection broke'), retried);
}
