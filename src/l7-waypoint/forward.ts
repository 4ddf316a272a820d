import { randomUUID } from 'node:crypto';
import type { Counter } from 'prom-client';
import { applyHeaderModifier, type HeaderRecord } from '../gateway-api/route-filters.js';
import { RETRY_BODY_LIMIT } from '../mesh/http-retry.js';
import { HTTP_FAILURES, type HttpFailure, RETRY_LIMIT_FLAG } from '../telemetry/http-outcomes.js';
import type { IstioHttpMetrics } from '../telemetry/istio-http-metrics.js';
import type { Logger } from '../telemetry/logger.js';
import { traceIdOf } from '../telemetry/traceparent.js';
import type { RequestTrace, Tracing } from '../telemetry/tracing.js';
import { type AttemptsDeps, type ChosenResponse, sendAttempts } from './attempts.js';
import type { Release } from './circuit-breakers.js';
import type { Downstream } from './downstream.js';
import { hashFactsOf } from './endpoint-picker.js';
import { authorizeAt, type ConnContext, dstName, headerOf, isGrpc, type RequestHead } from './exchange.js';
import type { JwksCache } from './jwks.js';
import { authnReply, failureReply, faultReply, type ReplyTo } from './local-reply.js';
import { type MirrorDeps, sendMirrors } from './mirror.js';
import { type Plan, planRequest } from './plan.js';
import { type ProtectDeps, protect } from './protect.js';
import { authenticate } from './request-authn.js';
import { bodyMode, RequestBody } from './request-body.js';
import { RequestRecord } from './request-record.js';
import type { RoutingState } from './routing-state.js';

export type { ConnContext } from './exchange.js';

export interface ForwardDeps extends AttemptsDeps, ProtectDeps, MirrorDeps {
  readonly routing: () => RoutingState | undefined;
  readonly metrics: IstioHttpMetrics;
  /** Retries made, by why (a status code or a connection outcome): Envoy's upstream_rq_retry. */
  readonly retries: Counter<'destination_service' | 'reason'>;
  readonly accessLog: Logger;
  readonly tracing?: Tracing;
  /** Requests in progress (what shutdown drains). */
  readonly active: { count: number; mirrors: number };
  /** RequestAuthentication: the key sets, and requests by result (allowed, denied, missing). */
  readonly jwt?: { readonly jwks: JwksCache; readonly counter: Counter<'destination_service' | 'result'> };
}

/**
 * One request through the waypoint, in Envoy's filter order: authentication (RequestAuthentication),
 * authorization, the route's plan (`planRequest`), the backend's protections (`protect`: faults,
 * rate limit, circuit breaker), the body, mirrors sent aside, the attempts (`sendAttempts`), and
 * the response streamed back with its trailers; one record (metrics and access log) at the end.
 * Whatever goes wrong, the client gets an answer or a reset and the record is written once.
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
  private rateHeaders: Readonly<Record<string, string>> = {};

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

  private get to(): ReplyTo {
    return { down: this.down, rec: this.rec, grpc: this.grpc, clientGone: this.clientGone };
  }

  /** A response the waypoint makes itself: a failure, with its status and flag (gRPC: grpc-status). */
  localReply(failure: HttpFailure, reason: string, extraFlags: readonly string[] = []): void {
    failureReply(this.to, failure, reason, extraFlags, this.rateHeaders);
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
      if (o.kind === 'denied') return authnReply(this.to, o.status, o.message, o.reason);
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
    const planned = planRequest(state, this.ctx, head, requestId, deps.random);
    if (planned.route !== undefined) rec.route = planned.route;
    if (planned.kind === 'refuse') return this.localReply(planned.failure, planned.reason);
    if (planned.kind === 'redirect') {
      rec.status = planned.status;
      down.respond(planned.status, planned.headers, { end: true, trailers: false });
      return;
    }
    const plan = planned.plan;
    if (plan.backend !== undefined) rec.backend = plan.backend;
    if (plan.endpoints.length === 0)
      return this.localReply(
        'no-healthy-upstream',
        `${rec.backend?.hostname ?? dstName(this.ctx)} has no ready endpoint`,
      );
    if (plan.policy !== undefined) {
      const p = await protect(deps, plan.policy, {
        ctx: this.ctx,
        headers: this.headers,
        route: rec.route,
        flags: rec.flags,
        signal: this.controller.signal,
        hold: (r) => this.releases.push(r),
      });
      if (p.kind === 'abort') return faultReply(this.to, p.abort, p.reason);
      this.rateHeaders = p.rateHeaders;
      if (p.kind === 'refuse') return this.localReply(p.failure, p.reason);
    }

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
    sendMirrors(deps, state, this.ctx, down.protocol, plan, body);

    const picks = deps.picker.request(plan.policy, hashFactsOf(this.ctx, this.headers));
    this.setCookie = picks.setCookie;
    const out = await sendAttempts(deps, {
      plan,
      body,
      protocol: down.protocol,
      picks,
      signal: this.controller.signal,
      ended: () => (this.clientGone ? 'client-gone' : this.timedOut ? 'timed-out' : undefined),
      rec,
      ...(this.trace === undefined ? {} : { trace: this.trace }),
      hold: (r) => this.releases.push(r),
    });
    if (out.kind === 'failed') return this.localReply(out.failure, out.reason, out.flags);
    await this.respond(out.resp, plan);
  }

  /** The response: its head (with the route's response modifiers), then the body and trailers, until it ends or is cut. */
  private respond(resp: ChosenResponse, plan: Plan): Promise<void> {
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
}
