import { randomUUID } from 'node:crypto';
import type { Counter } from 'prom-client';
import type { Random } from '../gateway-api/backend-pick.js';
import { applyHeaderModifier, type HeaderRecord, mirrorChosen } from '../gateway-api/route-filters.js';
import type { HeaderModifier, RequestMirror } from '../gateway-api/types.js';
import {
  type AttemptResult,
  RETRY_BODY_LIMIT,
  type RequestTimeouts,
  type RetryPolicy,
  retryDelayMs,
  retryPolicyOf,
  shouldRetry,
} from '../mesh/http-retry.js';
import { resolveBackend } from '../mesh/l7-route.js';
import {
  FAULT_ABORT_FLAG,
  FAULT_DELAY_FLAG,
  grpcStatusOfHttp,
  HTTP_FAILURES,
  type HttpFailure,
  RETRY_LIMIT_FLAG,
} from '../telemetry/http-outcomes.js';
import type { IstioHttpMetrics } from '../telemetry/istio-http-metrics.js';
import type { Logger } from '../telemetry/logger.js';
import { traceIdOf } from '../telemetry/traceparent.js';
import type { RequestTrace, Tracing } from '../telemetry/tracing.js';
import { chooseFault } from '../traffic-policy/fault-injection.js';
import { rateLimitHeaders } from '../traffic-policy/rate-limit.js';
import type { AppliedTrafficPolicy } from '../traffic-policy/types.js';
import type { CircuitBreakers, Release } from './circuit-breakers.js';
import type { Downstream } from './downstream.js';
import { type EndpointPicker, hashFactsOf, targetOf } from './endpoint-picker.js';
import {
  authorizeAt,
  type ConnContext,
  decide,
  dstIsV6,
  dstName,
  headerOf,
  isGrpc,
  type RequestHead,
  redirectFor,
  upstreamHead,
} from './exchange.js';
import type { JwksCache } from './jwks.js';
import type { RateLimits } from './rate-limits.js';
import { authenticate } from './request-authn.js';
import { bodyMode, RequestBody } from './request-body.js';
import { RequestRecord } from './request-record.js';
import type { RetryBudgets } from './retry-budgets.js';
import type { RoutingState } from './routing-state.js';
import { AttemptError, type UpstreamEndpoint, type UpstreamResponse, type Upstreams } from './upstream.js';

export type { ConnContext } from './exchange.js';

/** Mirrored requests in flight at once; more are dropped (a slow mirror must not hold the waypoint's memory). */
export const MAX_MIRRORS_IN_FLIGHT = 64;

export interface ForwardDeps {
  readonly routing: () => RoutingState | undefined;
  readonly upstreams: Upstreams;
  readonly metrics: IstioHttpMetrics;
  /** Retries made, by why (a status code or a connection outcome): Envoy's upstream_rq_retry. */
  readonly retries: Counter<'destination_service' | 'reason'>;
  readonly accessLog: Logger;
  readonly log: Logger;
  readonly tracing?: Tracing;
  readonly random: Random;
  /** Picks each attempt's endpoint by the Service's load balancer and passive health check. */
  readonly picker: EndpointPicker;
  /** Requests in progress (what shutdown drains). */
  readonly active: { count: number; mirrors: number };
  /** What is in flight to each backend, bounded by its BackendTrafficPolicy circuitBreaker. */
  readonly breakers?: CircuitBreakers;
  /** Faults injected by a BackendTrafficPolicy, by kind (abort, delay). */
  readonly faults?: Counter<'destination_service' | 'fault'>;
  /** Each backend Service's retry budget (where its policy sets retryConstraint). */
  readonly budgets?: RetryBudgets;
  /** The BackendTrafficPolicy rateLimit buckets, and the requests they limited (429, flag RL). */
  readonly rateLimits?: RateLimits;
  readonly rateLimited?: Counter<'destination_service' | 'policy'>;
  /** RequestAuthentication: the key sets, and requests by result (allowed, denied, missing). */
  readonly jwt?: { readonly jwks: JwksCache; readonly counter: Counter<'destination_service' | 'result'> };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

/** What the waypoint does with one request, carried out: where it goes and how. */
interface Plan {
  readonly endpoints: readonly UpstreamEndpoint[];
  readonly head: RequestHead;
  readonly retry: RetryPolicy;
  readonly timeouts: RequestTimeouts;
  readonly responseHeaders: readonly HeaderModifier[];
  readonly mirrors: readonly RequestMirror[];
  readonly routeNamespace: string;
  /** The backend Service's hostname (the retry budget's key); undefined for a request to a pod. */
  readonly service?: string;
  /** The backend Service's BackendTrafficPolicy, and the Service's hostname (the metrics' label). */
  readonly policy?: { readonly hostname: string; readonly applied: AppliedTrafficPolicy };
}

/**
 * One request through the waypoint: the pure decision (`decide`), then its carrying-out: filters,
 * an endpoint per attempt (the Service's load balancer, ejected endpoints left out), retries and timeouts, the response streamed back with its
 * trailers, mirrors sent aside, and one record (metrics and access log) at the end. Whatever goes
 * wrong, the client gets an answer or a reset and the record is written once.
 */
export async function forward(deps: ForwardDeps, ctx: ConnContext, down: Downstream): Promise<void> {
  deps.active.count++;
  const grpc = isGrpc(down.headers);
  const requestId = headerOf(down.headers, 'x-request-id') ?? randomUUID();
  const rec = new RequestRecord(
    { metrics: deps.metrics, retries: deps.retries, log: deps.accessLog },
    ctx.client,
    {
      method: down.method,
      path: down.path,
      authority: down.authority,
      protocol: down.protocol,
      grpc,
      requestId,
      ...(down.headers['user-agent'] === undefined
        ? {}
        : { userAgent: headerOf(down.headers, 'user-agent')! }),
    },
    ctx.dst.kind === 'service' ? ctx.dst.service : undefined,
    dstName(ctx),
  );
  rec.requestBytes = down.headerBytes;
  const trace = deps.tracing?.request(
    `${down.method} ${down.path.split('?')[0]}`,
    down.headers,
    {
      'http.request.method': down.method,
      'url.path': down.path.split('?')[0] ?? '/',
      'server.address': down.authority,
      'network.protocol.version': down.protocol === 'HTTP/2' ? '2' : '1.1',
      'source.principal': ctx.client.identity,
      'ambit.request_id': requestId,
    },
    Date.now(),
  );
  rec.traceId = trace?.traceId ?? traceIdOf(down.headers);
  const r = new Exchange(deps, ctx, down, rec, trace, grpc);
  try {
    await r.run(requestId);
  } catch (err) {
    // The one rescue: a bug or an unexpected failure still answers (or resets) and is recorded.
    deps.log.error({ err, request_id: requestId }, 'request failed in the waypoint');
    r.localReply('internal', (err as Error).message ?? String(err));
  } finally {
    r.finish();
    deps.active.count--;
  }
}

/** The carrying-out of one request, with the state its steps share. */
class Exchange {
  private readonly controller = new AbortController();
  private clientGone = false;
  private timedOut = false;
  private requestTimer: NodeJS.Timeout | undefined;
  private finished = false;
  private body: RequestBody | undefined;
  /** Circuit-breaker slots this request holds, given back when it ends. */
  private readonly releases: Release[] = [];
  /**
   * The request's headers as the waypoint's steps read them: after authentication (claim headers
   * set, forged ones removed), so that faults, rate limits and hashing see what the backend will.
   */
  private headers: HeaderRecord;
  /** The session cookie a consistent hash on a cookie wants set (the request had none). */
  private setCookie: string | undefined;
  /** The x-ratelimit-* headers of every response, when a rateLimit rule counted the request. */
  private rateHeaders: Record<string, string> = {};

  constructor(
    private readonly deps: ForwardDeps,
    private readonly ctx: ConnContext,
    private readonly down: Downstream,
    private readonly rec: RequestRecord,
    private readonly trace: RequestTrace | undefined,
    private readonly grpc: boolean,
  ) {
    this.headers = down.headers;
    down.onClose((completed) => {
      if (!completed && !this.finished) {
        this.clientGone = true;
        this.controller.abort();
      }
    });
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.requestTimer);
    for (const r of this.releases) r();
    const rec = this.rec;
    rec.requestBytes += this.body?.bytes ?? 0;
    this.trace?.end(
      { 'http.response.status_code': rec.status, 'ambit.response_flags': rec.flags.join(',') || '-' },
      rec.status >= 500 || rec.status === 0,
    );
    rec.finish();
  }

  /** A response the waypoint makes itself: a failure, with its status and flag (gRPC: grpc-status). */
  localReply(failure: HttpFailure, reason: string, extraFlags: readonly string[] = []): void {
    const { rec, down } = this;
    const info = HTTP_FAILURES[failure];
    rec.flags.push(info.flag, ...extraFlags);
    rec.reason = reason;
    if (failure === 'downstream-reset' || this.clientGone) {
      rec.status = 0;
      if (!rec.flags.includes('DC')) rec.flags.push('DC');
      return;
    }
    rec.status = info.status;
    if (down.responseStarted) {
      down.reset();
      return;
    }
    if (this.grpc) {
      const g = grpcStatusOfHttp(info.status);
      rec.status = 200;
      rec.grpcStatus = g;
      down.respond(
        200,
        {
          'content-type': 'application/grpc',
          'grpc-status': String(g),
          'grpc-message': encodeURIComponent(info.message),
          ...this.rateHeaders,
        },
        { end: true, trailers: false },
      );
      return;
    }
    const body = Buffer.from(`${info.message}\n`);
    rec.responseBytes = body.length;
    down.respond(
      info.status,
      { 'content-type': 'text/plain', 'content-length': String(body.length), ...this.rateHeaders },
      { end: false, trailers: false },
    );
    down.write(body);
    down.end();
  }

  /**
   * Envoy jwt_authn's answer to a refused token: 401 (403 for audiences), its status text as the body,
   * `www-authenticate: Bearer realm=...`, and no response flag (Envoy sets none; the reason says why).
   */
  private authnReply(status: 401 | 403, message: string, reason: string): void {
    const { rec, down } = this;
    rec.reason = reason;
    rec.status = status;
    if (this.clientGone) {
      rec.status = 0;
      rec.flags.push('DC');
      return;
    }
    const auth = `Bearer realm="http://${down.authority}${down.path.split('?')[0]}", error="invalid_token"`;
    if (this.grpc) {
      rec.status = 200;
      rec.grpcStatus = grpcStatusOfHttp(status);
      down.respond(
        200,
        {
          'content-type': 'application/grpc',
          'grpc-status': String(rec.grpcStatus),
          'grpc-message': encodeURIComponent(message),
          'www-authenticate': auth,
        },
        { end: true, trailers: false },
      );
      return;
    }
    const body = Buffer.from(message);
    rec.responseBytes = body.length;
    down.respond(
      status,
      { 'content-type': 'text/plain', 'content-length': String(body.length), 'www-authenticate': auth },
      { end: false, trailers: false },
    );
    down.write(body);
    down.end();
  }

  /** What to send, and where, from the decision; undefined when the request was answered already. */
  private plan(state: RoutingState, requestId: string, head: RequestHead): Plan | undefined {
    const { ctx, down, rec } = this;
    const v6 = dstIsV6(ctx);
    const decision = decide(state, ctx, head, this.deps.random);
    if (decision === undefined) {
      // Addressed to a pod (a waypoint for workloads): that pod, as it is.
      const dst = ctx.dst as Extract<ConnContext['dst'], { kind: 'workload' }>;
      const ep = state.endpointOf(dst.workload, dst.port, v6);
      return {
        endpoints: ep === undefined ? [] : [ep],
        head: upstreamHead(undefined, head, requestId),
        retry: retryPolicyOf(undefined),
        timeouts: {},
        responseHeaders: [],
        mirrors: [],
        routeNamespace: dst.workload.namespace,
      };
    }
    if (decision.route !== undefined) rec.route = decision.route;
    if (decision.kind === 'refuse') {
      this.localReply(decision.failure, decision.reason);
      return undefined;
    }
    if (decision.kind === 'redirect') {
      const r = redirectFor(decision, ctx.dst as Extract<ConnContext['dst'], { kind: 'service' }>, head);
      rec.status = r.status;
      down.respond(r.status, r.headers, { end: true, trailers: false });
      return undefined;
    }
    rec.backend = decision.backend.service;
    return {
      endpoints: state.endpoints(decision.backend.service, decision.backend.port, v6),
      head: upstreamHead(decision, head, requestId),
      retry: decision.retry,
      timeouts: decision.timeouts,
      responseHeaders: decision.responseHeaders,
      mirrors: decision.mirrors,
      routeNamespace: decision.route?.namespace ?? decision.backend.namespace,
      service: decision.backend.service.hostname,
      ...(decision.backend.service.trafficPolicy === undefined
        ? {}
        : {
            policy: {
              hostname: decision.backend.service.hostname,
              applied: decision.backend.service.trafficPolicy,
            },
          }),
    };
  }

  /**
   * The BackendTrafficPolicy's faults, then its rate limit, then its request limit (Envoy's fault
   * filter, then local_ratelimit, then the router's circuit breakers); false when the request was
   * answered here. An injected abort or a 429 is the waypoint's own answer: no attempt is made, so no
   * route retry can hide it.
   */
  private async protect(plan: Plan): Promise<boolean> {
    const { deps, down, rec } = this;
    const p = plan.policy;
    if (p === undefined) return true;
    const fi = p.applied.faultInjection;
    if (fi !== undefined) {
      const fault = chooseFault(fi, { header: (n) => headerOf(this.headers, n) }, deps.random);
      if (fault.delayMs !== undefined) {
        rec.flags.push(FAULT_DELAY_FLAG);
        deps.faults?.inc({ destination_service: p.hostname, fault: 'delay' });
        await sleep(fault.delayMs, this.controller.signal);
        if (this.clientGone) {
          this.localReply('downstream-reset', 'the client went away during an injected delay');
          return false;
        }
      }
      if (fault.abort !== undefined) {
        deps.faults?.inc({ destination_service: p.hostname, fault: 'abort' });
        this.faultReply(fault.abort, p.applied.policy);
        return false;
      }
    }
    const rl = p.applied.rateLimit;
    if (rl !== undefined && deps.rateLimits !== undefined) {
      const v = deps.rateLimits.check(p.applied.policy, rl, p.hostname, this.ctx, this.headers, rec.route);
      if (v.status !== undefined) this.rateHeaders = rateLimitHeaders(v.status);
      if (!v.allowed) {
        deps.rateLimited?.inc({ destination_service: p.hostname, policy: p.applied.policy });
        this.rateHeaders['x-envoy-ratelimited'] = 'true'; // as Envoy's local_ratelimit marks its 429
        this.localReply(
          'rate-limited',
          `rateLimit rule ${v.rule} of BackendTrafficPolicy ${p.applied.policy}: no token left`,
        );
        return false;
      }
    }
    const cb = p.applied.circuitBreaker;
    if (cb !== undefined && deps.breakers !== undefined) {
      const got = deps.breakers.request(p.hostname, cb);
      if (typeof got === 'string') {
        this.localReply(
          'upstream-overflow',
          `circuitBreaker.${got} (${cb[got]}) of BackendTrafficPolicy ${p.applied.policy} reached`,
        );
        return false;
      }
      this.releases.push(got);
    }
    return true;
  }

  /** The answer of an injected abort: its status (gRPC: in grpc-status), flag FI. */
  private faultReply(
    abort: { readonly httpStatus: number } | { readonly grpcStatus: number },
    policy: string,
  ): void {
    const { rec, down } = this;
    rec.flags.push(FAULT_ABORT_FLAG);
    rec.reason = `fault injected by BackendTrafficPolicy ${policy}`;
    if (this.grpc || 'grpcStatus' in abort) {
      const g = 'grpcStatus' in abort ? abort.grpcStatus : grpcStatusOfHttp(abort.httpStatus);
      rec.status = 200;
      rec.grpcStatus = g;
      down.respond(
        rec.status,
        {
          'content-type': 'application/grpc',
          'grpc-status': String(g),
          'grpc-message': 'fault%20filter%20abort',
        },
        { end: true, trailers: false },
      );
      return;
    }
    const body = Buffer.from('fault filter abort\n');
    rec.status = abort.httpStatus;
    rec.responseBytes = body.length;
    down.respond(
      abort.httpStatus,
      { 'content-type': 'text/plain', 'content-length': String(body.length) },
      { end: false, trailers: false },
    );
    down.write(body);
    down.end();
  }

  async run(requestId: string): Promise<void> {
    const { deps, down, rec } = this;
    const state = deps.routing();
    if (state === undefined) return this.localReply('no-healthy-upstream', 'the waypoint has no config yet');
    let head: RequestHead = {
      method: down.method,
      path: down.path,
      authority: down.authority,
      headers: down.headers,
    };
    let auth: { principal: string; claims: Readonly<Record<string, unknown>> } | undefined;
    if (deps.jwt !== undefined) {
      const authn = await authenticate(state, this.ctx, head, deps.jwt.jwks, deps.jwt.counter);
      const o = authn.outcome;
      if (o.kind === 'denied') return this.authnReply(o.status, o.message, o.reason);
      if (o.kind === 'authenticated') {
        auth = { principal: o.principal, claims: o.claims };
        rec.requestPrincipal = o.principal;
      }
      head = authn.head;
      this.headers = head.headers;
    }
    const authz = authorizeAt(state, this.ctx, head, auth);
    if (authz.audited.length > 0) rec.audited = authz.audited;
    if (authz.decidedBy.length > 0) rec.policy = authz.decidedBy.join(',');
    if (!authz.allowed) return this.localReply('rbac-denied', authz.reason);
    const plan = this.plan(state, requestId, head);
    if (plan === undefined) return;
    if (plan.endpoints.length === 0)
      return this.localReply(
        'no-healthy-upstream',
        `${rec.backend?.hostname ?? dstName(this.ctx)} has no ready endpoint`,
      );
    if (!(await this.protect(plan))) return;

    let body: RequestBody | undefined;
    if (down.body !== undefined) {
      const cl = headerOf(down.headers, 'content-length');
      const mode = bodyMode({
        contentLength: cl === undefined ? undefined : Number(cl),
        limit: RETRY_BODY_LIMIT,
        retries: plan.retry.retries,
        needsCopy: plan.retry.source === 'route' || plan.mirrors.length > 0,
      });
      body = new RequestBody(down.body, mode, RETRY_BODY_LIMIT);
      this.body = body;
      if (!(await body.ready()))
        return this.localReply('downstream-reset', 'the client went away while sending the body');
    }
    if (plan.timeouts.requestMs !== undefined) {
      this.requestTimer = setTimeout(() => {
        this.timedOut = true;
        this.controller.abort();
      }, plan.timeouts.requestMs);
    }
    this.mirror(state, plan, body);

    const resp = await this.attempts(plan, body);
    if (resp === undefined) return;
    await this.respond(resp, plan);
  }

  /** Sends the attempts; resolves to the response to give the client, or undefined when answered already. */
  private async attempts(
    plan: Plan,
    body: RequestBody | undefined,
  ): Promise<(UpstreamResponse & { stop: () => void }) | undefined> {
    const { deps, rec, controller } = this;
    const deadline = plan.timeouts.requestMs === undefined ? undefined : Date.now() + plan.timeouts.requestMs;
    const tried = new Set<string>();
    let last: AttemptResult | undefined;
    const cb = plan.policy?.applied.circuitBreaker;
    const breakers = deps.breakers;
    let retrySlot: Release | undefined;
    const picks = deps.picker.request(plan.policy, hashFactsOf(this.ctx, this.headers));
    this.setCookie = picks.setCookie;
    const budget = plan.policy?.applied.retryConstraint;
    if (plan.service !== undefined && budget !== undefined) deps.budgets?.request(plan.service, budget);
    /**
     * A retry within the policy's maxParallelRetries and the Service's retry budget; false: it is not
     * made (the last answer stands).
     */
    const retryAllowed = (): boolean => {
      let got: Release | undefined;
      if (cb !== undefined && breakers !== undefined) {
        const slot = breakers.retry(plan.policy!.hostname, cb);
        if (typeof slot === 'string') return false;
        got = slot;
      }
      if (
        plan.service !== undefined &&
        budget !== undefined &&
        deps.budgets !== undefined &&
        !deps.budgets.retry(plan.service, budget)
      ) {
        got?.();
        rec.reason = `retry not made: the retry budget of ${plan.service} is spent (retryConstraint of BackendTrafficPolicy ${plan.policy!.applied.policy})`;
        return false;
      }
      if (got !== undefined) {
        retrySlot = got;
        this.releases.push(got);
      }
      return true;
    };
    /** The wait before the next attempt, when one may still be made before the deadline. */
    const nextWait = (made: number): number | undefined => {
      const wait = retryDelayMs(plan.retry, made, deps.random);
      return deadline !== undefined && Date.now() + wait >= deadline ? undefined : wait;
    };
    for (let made = 0, wait = 0; ; ) {
      if (wait > 0) await sleep(wait, controller.signal);
      if (controller.signal.aborted) break;
      // A body that cannot be sent again (it streamed past the bound, or has not ended) ends the retries.
      const payload = body?.forAttempt();
      if (body !== undefined && payload === undefined) break;
      // A retry goes to another endpoint when there is one (Envoy's previous-hosts predicate).
      const ep = picks.next(plan.endpoints, tried);
      if (ep === undefined) {
        this.localReply('no-healthy-upstream', 'every endpoint is ejected (healthCheck.panicThreshold 0)');
        return undefined;
      }
      tried.add(ep.key);
      made++;
      rec.attempts = made;
      rec.endpoint = ep.workload;
      rec.upstreamHost = ep.key;
      const span = this.trace?.attempt('upstream', { 'server.address': ep.key, 'ambit.attempt': made });
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
      controller.signal.addEventListener('abort', onAbort, { once: true });
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
        controller.signal.removeEventListener('abort', onAbort);
        for (const r of held) r();
      };
      if (cb !== undefined && breakers !== undefined) {
        const conn = await breakers.connection(plan.policy!.hostname, cb, attempt.signal);
        if (conn === undefined) {
          // The wait ended with the attempt: its timeout, or the request's end (client gone, timeout).
          stop();
          if (attemptTimedOut) last = { kind: 'attempt-timeout' };
          break;
        }
        if (typeof conn === 'string') {
          stop();
          this.localReply(
            'upstream-overflow',
            `circuitBreaker.maxConnections (${cb.maxConnections}) in use and maxPendingRequests (${cb.maxPendingRequests}) waiting, BackendTrafficPolicy ${plan.policy!.applied.policy}`,
          );
          return undefined;
        }
        held.push(conn);
        this.releases.push(conn);
      }
      try {
        const resp = await deps.upstreams.send(
          ep,
          this.down.protocol,
          { ...plan.head, headers, body: payload },
          attempt.signal,
        );
        last = { kind: 'response', status: resp.status };
        deps.picker.outcome(plan.policy, ep, last, plan.endpoints.length);
        span?.end({ 'http.response.status_code': resp.status }, resp.status >= 500);
        const w = shouldRetry(plan.retry, made, last, body?.state ?? 'none') ? nextWait(made) : undefined;
        if (w !== undefined && !controller.signal.aborted && retryAllowed()) {
          stop();
          resp.discard();
          rec.retried.push(String(resp.status));
          wait = w;
          continue;
        }
        // The attempt's timeout and the request's abort stay armed until the response has ended.
        attempt.signal.addEventListener('abort', () => resp.discard(), { once: true });
        return {
          ...resp,
          stop,
          get timedOut() {
            return attemptTimedOut;
          },
        } as UpstreamResponse & { stop: () => void };
      } catch (err) {
        stop();
        const failed: AttemptResult = attemptTimedOut
          ? { kind: 'attempt-timeout' }
          : err instanceof AttemptError
            ? { kind: err.kind }
            : { kind: 'reset' };
        last = failed;
        // The client leaving says nothing about the endpoint; the request's timeout is a timeout there.
        if (!this.clientGone)
          deps.picker.outcome(
            plan.policy,
            ep,
            this.timedOut ? { kind: 'attempt-timeout' } : failed,
            plan.endpoints.length,
          );
        span?.end({ 'ambit.error': (err as Error).message }, true);
        rec.reason = (err as Error).message;
        if (this.clientGone || this.timedOut) break;
        const w = shouldRetry(plan.retry, made, failed, body?.state ?? 'none') ? nextWait(made) : undefined;
        if (w === undefined || !retryAllowed()) break;
        rec.retried.push(failed.kind);
        wait = w;
      }
    }
    const retried = rec.attempts > 1 ? [RETRY_LIMIT_FLAG] : [];
    if (this.clientGone) this.localReply('downstream-reset', 'the client went away');
    else if (this.timedOut)
      this.localReply(
        'upstream-timeout',
        `timeouts.request (${plan.timeouts.requestMs} ms) expired`,
        retried,
      );
    else if (last?.kind === 'attempt-timeout')
      this.localReply(
        'upstream-timeout',
        `timeouts.backendRequest (${plan.timeouts.attemptMs} ms) expired`,
        retried,
      );
    else if (last?.kind === 'connect-failure')
      this.localReply('upstream-connect-failure', rec.reason ?? 'connect failed', retried);
    else if (last === undefined) this.localReply('downstream-reset', 'the request body could not be sent');
    else this.localReply('upstream-reset', rec.reason ?? 'the upstream connection broke', retried);
    return undefined;
  }

  /** The response: its head (with the route's response modifiers), then the body and trailers, until it ends or is cut. */
  private respond(
    resp: UpstreamResponse & { stop: () => void; timedOut?: boolean },
    plan: Plan,
  ): Promise<void> {
    const { down, rec } = this;
    const out: HeaderRecord = { ...resp.headers };
    for (const m of plan.responseHeaders) applyHeaderModifier(out, m);
    if (this.setCookie !== undefined) {
      const had = out['set-cookie'];
      out['set-cookie'] = had === undefined ? this.setCookie : [...[had].flat(), this.setCookie];
    }
    Object.assign(out, this.rateHeaders);
    rec.status = resp.status;
    if (rec.attempts > 1 && plan.retry.codes.has(resp.status)) rec.flags.push(RETRY_LIMIT_FLAG);
    const gs = headerOf(resp.headers, 'grpc-status');
    if (gs !== undefined) rec.grpcStatus = Number(gs);
    for (const k in out) rec.responseBytes += k.length + String(out[k]).length + 4;
    const h2 = down.protocol === 'HTTP/2';
    if (resp.endOfStream) {
      // Trailers-Only (a gRPC error answered in the head): one HEADERS frame that ends the stream.
      resp.stop();
      down.respond(resp.status, out, { end: true, trailers: false });
      return Promise.resolve();
    }
    down.respond(resp.status, out, { end: false, trailers: h2 && this.grpc });
    return new Promise<void>((resolve) => {
      let settled = false;
      const settle = (): void => {
        if (settled) return;
        settled = true;
        resp.stop();
        this.controller.signal.removeEventListener('abort', cut);
        resolve();
      };
      // The client left or the request timed out mid-body: cut the upstream and the client's stream.
      const cut = (): void => {
        if (settled) return;
        resp.discard();
        rec.flags.push(
          this.timedOut ? HTTP_FAILURES['upstream-timeout'].flag : HTTP_FAILURES['downstream-reset'].flag,
        );
        if (!this.clientGone) down.reset();
        settle();
      };
      this.controller.signal.addEventListener('abort', cut, { once: true });
      let resume: (() => void) | undefined;
      resp.pipe({
        data: (chunk) => {
          rec.responseBytes += chunk.length;
          const ok = down.write(chunk);
          if (!ok && resume !== undefined) down.onDrain(resume);
          return ok;
        },
        onResume: (r) => {
          resume = r;
        },
        end: (trailers) => {
          if (settled) return;
          if (trailers !== undefined) {
            const t = headerOf(trailers, 'grpc-status');
            if (t !== undefined) rec.grpcStatus = Number(t);
          }
          down.end(h2 ? trailers : undefined);
          settle();
        },
        error: (err) => {
          if (settled) return;
          // Cut by a timeout or by the client leaving, or broken by the endpoint.
          const why: HttpFailure =
            resp.timedOut === true || this.timedOut
              ? 'upstream-timeout'
              : this.clientGone
                ? 'downstream-reset'
                : 'upstream-reset';
          rec.flags.push(HTTP_FAILURES[why].flag);
          rec.reason = err.message;
          if (!this.clientGone) down.reset();
          settle();
        },
      });
    });
  }

  /** Mirrors: a copy of the request to each mirror backend (chosen by its fraction); answers are dropped. */
  private mirror(state: RoutingState, plan: Plan, body: RequestBody | undefined): void {
    const { deps } = this;
    for (const m of plan.mirrors) {
      if (!mirrorChosen(m.fraction, deps.random)) continue;
      const target = resolveBackend(state.mesh, plan.routeNamespace, { ...m.backendRef, weight: 1 });
      if (target.service === undefined) continue;
      const ep = deps.picker
        .request(targetOf(target.service), hashFactsOf(this.ctx, plan.head.headers))
        .next(state.endpoints(target.service, target.port, dstIsV6(this.ctx)));
      if (ep === undefined) continue;
      const send = (payload: Buffer | undefined): void => {
        if (deps.active.mirrors >= MAX_MIRRORS_IN_FLIGHT) {
          deps.log.debug({ mirror: ep.key }, 'mirror dropped: too many mirrored requests in flight');
          return;
        }
        deps.active.mirrors++;
        const headers: HeaderRecord = { ...plan.head.headers };
        if (payload !== undefined) headers['content-length'] = String(payload.length);
        let released = false;
        const release = (): void => {
          if (released) return;
          released = true;
          deps.active.mirrors--;
        };
        deps.upstreams
          .send(ep, this.down.protocol, { ...plan.head, headers, body: payload }, AbortSignal.timeout(30_000))
          .then(
            (r) => r.pipe({ data: () => true, onResume: () => undefined, end: release, error: release }),
            (err: unknown) => {
              release();
              deps.log.debug({ err, mirror: ep.key }, 'mirror request failed');
            },
          );
      };
      // Only a body that ends within the bound is mirrored (it is sent once it is whole).
      if (body === undefined) send(undefined);
      else void body.whole().then((b) => b !== undefined && send(b));
    }
  }
}
