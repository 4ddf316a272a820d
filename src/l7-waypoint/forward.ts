import { randomUUID } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import type { Counter } from 'prom-client';
import type { ServicePort } from '../config/kube-types.js';
import type { Random } from '../gateway-api/backend-pick.js';
import {
  applyHeaderModifier,
  type HeaderRecord,
  mirrorChosen,
  redirectLocation,
  rewriteRequest,
} from '../gateway-api/route-filters.js';
import type { HeaderModifier, RequestMirror } from '../gateway-api/types.js';
import {
  type AttemptResult,
  RETRY_BODY_LIMIT,
  type RetryPolicy,
  retryDelayMs,
  retryPolicyOf,
  shouldRetry,
} from '../mesh/http-retry.js';
import { decideL7, type L7Decision } from '../mesh/l7-route.js';
import { pickLeastRequest } from '../mesh/load-balancer-least-request.js';
import type { MeshService, Workload } from '../mesh/view.js';
import { isV6 } from '../net/ip.js';
import {
  grpcStatusOfHttp,
  HTTP_FAILURES,
  type HttpFailure,
  RETRY_LIMIT_FLAG,
} from '../telemetry/http-outcomes.js';
import type { IstioHttpMetrics } from '../telemetry/istio-http-metrics.js';
import type { Logger } from '../telemetry/logger.js';
import { type Tracing, traceIdOf } from '../telemetry/tracing.js';
import type { Downstream } from './downstream.js';
import { RequestRecord } from './request-record.js';
import type { RoutingState } from './routing-state.js';
import {
  AttemptError,
  type UpstreamEndpoint,
  type UpstreamRequest,
  type UpstreamResponse,
  type Upstreams,
} from './upstream.js';

/** Who sent a connection to the waypoint, and what it addressed: a Service port (VIP) or a pod. */
export interface ConnContext {
  readonly client: {
    /** The identity the client's node proxy proved for it (the source for L7 policy and telemetry). */
    readonly identity: string;
    readonly namespace: string;
    readonly address: string;
    readonly workload?: Workload;
  };
  readonly dst:
    | {
        readonly kind: 'service';
        readonly service: MeshService;
        readonly port: ServicePort;
        readonly vip: string;
      }
    | { readonly kind: 'workload'; readonly workload: Workload; readonly port: number };
}

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
}

/** Reads a body up to `limit` bytes: all of it (kept, so it can be sent again), or the part read and the rest. */
function keepBody(body: Readable, limit: number): Promise<{ kept: Buffer } | { stream: Readable }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onEnd = (): void => resolve({ kept: Buffer.concat(chunks) });
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (size <= limit) return;
      // Too big to keep: send what was read, then the rest as it comes, and never retry it.
      body.off('data', onData);
      body.off('end', onEnd);
      const rest = new PassThrough();
      for (const c of chunks) rest.write(c);
      body.pipe(rest);
      resolve({ stream: rest });
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', reject);
  });
}

function headerOf(h: HeaderRecord, name: string): string | undefined {
  const v = h[name];
  return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : v;
}

/** The query of a path as decoded name/value pairs, in order. */
function queryOf(path: string): [string, string][] {
  const q = path.indexOf('?');
  return q === -1 ? [] : [...new URLSearchParams(path.slice(q + 1))];
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

/**
 * One request through the waypoint: the pure decision (`decideL7`), then its carrying-out: filters,
 * an endpoint per attempt (least request), retries and timeouts, the response streamed back with its
 * trailers, mirrors sent aside, and one record (metrics and access log) at the end.
 */
export async function forward(deps: ForwardDeps, ctx: ConnContext, down: Downstream): Promise<void> {
  const state = deps.routing();
  const grpc = (headerOf(down.headers, 'content-type') ?? '').startsWith('application/grpc');
  const requestId = headerOf(down.headers, 'x-request-id') ?? randomUUID();
  const addressed = ctx.dst.kind === 'service' ? ctx.dst.service : undefined;
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
    addressed,
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
  const controller = new AbortController();
  let clientGone = false;
  down.onClose((completed) => {
    if (!completed && !clientGone) {
      clientGone = true;
      controller.abort();
    }
  });

  const done = (): void => {
    trace?.end(
      { 'http.response.status_code': rec.status, 'ambit.response_flags': rec.flags.join(',') || '-' },
      rec.status >= 500 || rec.status === 0,
    );
    rec.finish();
  };
  /** A response the waypoint makes itself: a failure, with its status and flag (gRPC: grpc-status). */
  const localReply = (failure: HttpFailure, reason: string, extraFlags: readonly string[] = []): void => {
    const info = HTTP_FAILURES[failure];
    rec.flags.push(info.flag, ...extraFlags);
    rec.reason = reason;
    rec.status = failure === 'downstream-reset' ? 0 : info.status;
    if (failure === 'downstream-reset' || clientGone) {
      done();
      return;
    }
    if (down.responseStarted) {
      down.reset();
      done();
      return;
    }
    if (grpc) {
      const g = grpcStatusOfHttp(info.status);
      rec.status = 200;
      rec.grpcStatus = g;
      down.respond(
        200,
        {
          'content-type': 'application/grpc',
          'grpc-status': String(g),
          'grpc-message': encodeURIComponent(info.message),
        },
        { end: true, trailers: false },
      );
    } else {
      const body = Buffer.from(`${info.message}\n`);
      rec.responseBytes = body.length;
      down.respond(
        info.status,
        {
          'content-type': 'text/plain',
          'content-length': String(body.length),
          'x-ambit-reason': reason.slice(0, 200),
        },
        { end: false, trailers: false },
      );
      down.write(body);
      down.end();
    }
    done();
  };

  if (state === undefined) return localReply('no-healthy-upstream', 'the waypoint has no config yet');
  const v6 = isV6(ctx.dst.kind === 'service' ? ctx.dst.vip : (ctx.dst.workload.ips[0] ?? ''));
  // Traffic addressed to a pod (a waypoint for workloads) is never routed by Service routes.
  let decision: L7Decision | undefined;
  if (ctx.dst.kind === 'service') {
    const routes = state.routesFor(ctx.dst.service, ctx.dst.port, ctx.client.namespace);
    const h = down.headers;
    decision = decideL7(
      state.mesh,
      routes,
      ctx.dst.service,
      ctx.dst.port,
      {
        method: down.method,
        path: down.path.split('?')[0] ?? '/',
        query: queryOf(down.path),
        header: (name) => (name === 'host' ? down.authority : headerOf(h, name)),
        grpc,
      },
      deps.random,
    );
    if (decision.route !== undefined) rec.route = decision.route;
    if (decision.kind === 'refuse') return localReply(decision.failure, decision.reason);
    if (decision.kind === 'redirect') {
      const [host, portText] = splitAuthority(down.authority);
      const q = down.path.indexOf('?');
      const r = redirectLocation(
        {
          scheme: 'http',
          host,
          port: portText ?? ctx.dst.port.port,
          path: q === -1 ? down.path : down.path.slice(0, q),
          query: q === -1 ? '' : down.path.slice(q),
        },
        decision.redirect,
        decision.match,
      );
      const headers: HeaderRecord = { location: r.location, 'content-length': '0' };
      for (const m of decision.responseHeaders) applyHeaderModifier(headers, m);
      rec.status = r.status;
      down.respond(r.status, headers, { end: true, trailers: false });
      return done();
    }
  }

  // What to send, and where.
  const headers: HeaderRecord = { ...down.headers };
  let path = down.path;
  let authority = down.authority;
  let endpoints: readonly UpstreamEndpoint[];
  let retry: RetryPolicy;
  let timeouts: { requestMs?: number; attemptMs?: number } = {};
  let responseModifiers: readonly HeaderModifier[] = [];
  let mirrors: readonly RequestMirror[] = [];
  let routeNamespace = ctx.dst.kind === 'service' ? ctx.dst.service.namespace : ctx.dst.workload.namespace;
  if (decision?.kind === 'forward') {
    if (decision.route !== undefined) routeNamespace = decision.route.namespace;
    rec.backend = decision.backend.service;
    for (const m of decision.requestHeaders) applyHeaderModifier(headers, m);
    if (decision.rewrite !== undefined) {
      const q = path.indexOf('?');
      const r = rewriteRequest(
        { host: splitAuthority(authority)[0], path: q === -1 ? path : path.slice(0, q) },
        decision.rewrite.rewrite,
        decision.rewrite.match,
      );
      path = r.path + (q === -1 ? '' : path.slice(q));
      if (decision.rewrite.rewrite.hostname !== undefined) authority = r.host;
    }
    endpoints = state.endpoints(decision.backend.service, decision.backend.port, v6);
    retry = decision.retry;
    timeouts = decision.timeouts;
    responseModifiers = decision.responseHeaders;
    mirrors = decision.mirrors;
  } else {
    // Addressed to a pod (a waypoint for workloads): that pod, as it is; Service routes never apply.
    const dst = ctx.dst as Extract<ConnContext['dst'], { kind: 'workload' }>;
    endpoints = [state.endpointOf(dst.workload, dst.port, v6)];
    retry = retryPolicyOf(undefined);
  }
  headers['x-request-id'] = requestId;
  if (headers['x-forwarded-proto'] === undefined) headers['x-forwarded-proto'] = 'http';
  if (endpoints.length === 0) {
    return localReply('no-healthy-upstream', `${rec.backend?.hostname ?? authority} has no ready endpoint`);
  }

  // The body: kept when it may be sent again (a retry or a mirror), within the bound; else streamed.
  let body: Buffer | Readable | undefined;
  let bodyKind: 'none' | 'kept' | 'streamed' = 'none';
  if (down.body !== undefined) {
    // A body of known, bounded size is kept even under the default policy (so that a connect failure
    // can be retried); one of unknown size (chunked, a gRPC stream) only when the route asks for
    // retries or mirrors, since keeping it means waiting for its end before sending anything.
    const length = Number(headerOf(down.headers, 'content-length') ?? Number.NaN);
    const bounded = Number.isFinite(length) && length <= RETRY_BODY_LIMIT;
    const wantKept =
      retry.retries > 0 && (bounded || retry.codes.size > 0 || retry.resets || mirrors.length > 0);
    if (wantKept) {
      const k = await keepBody(down.body, RETRY_BODY_LIMIT).catch(() => undefined);
      if (k === undefined)
        return localReply('downstream-reset', 'the client went away while sending the body');
      if ('kept' in k) {
        body = k.kept;
        bodyKind = 'kept';
        rec.requestBytes += k.kept.length;
      } else {
        body = countBytes(k.stream, (n) => (rec.requestBytes += n));
        bodyKind = 'streamed';
      }
    } else {
      body = countBytes(down.body, (n) => (rec.requestBytes += n));
      bodyKind = 'streamed';
    }
  }
  if (body instanceof Buffer) headers['content-length'] = String(body.length);

  // Mirrors: a copy of the request to another backend, its response dropped (only a kept or empty body).
  for (const m of mirrors) {
    if (bodyKind === 'streamed' || !mirrorChosen(m.fraction, deps.random)) continue;
    sendMirror(deps, state, m, routeNamespace, v6, down.protocol, {
      method: down.method,
      path,
      authority,
      headers: { ...headers },
      body,
    });
  }

  const deadline = timeouts.requestMs === undefined ? undefined : Date.now() + timeouts.requestMs;
  let requestTimer: NodeJS.Timeout | undefined;
  let timedOut = false;
  if (timeouts.requestMs !== undefined) {
    requestTimer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeouts.requestMs);
  }
  const tried = new Set<string>();
  let last: AttemptResult | undefined;
  let lastResponse: UpstreamResponse | undefined;
  /** The wait before the next attempt, when one may still be made before the deadline. */
  const nextWait = (made: number): number | undefined => {
    const wait = retryDelayMs(retry, made, deps.random);
    return deadline !== undefined && Date.now() + wait >= deadline ? undefined : wait;
  };
  for (let made = 0, wait = 0; ; ) {
    if (wait > 0) await sleep(wait, controller.signal);
    if (controller.signal.aborted) break;
    // A retry goes to another endpoint when there is one (Envoy's previous-hosts predicate).
    const fresh = endpoints.filter((e) => !tried.has(e.key));
    const ep = pickLeastRequest(
      fresh.length > 0 ? fresh : endpoints,
      (e) => deps.upstreams.inFlight(e.key),
      deps.random,
    )!;
    tried.add(ep.key);
    made++;
    rec.attempts = made;
    rec.endpoint = ep.workload;
    rec.upstreamHost = ep.key;
    const attemptHeaders: HeaderRecord = { ...headers };
    const span = trace?.attempt('upstream', { 'server.address': ep.key, 'ambit.attempt': made });
    span?.inject(attemptHeaders);
    const attempt = new AbortController();
    const onAbort = (): void => attempt.abort();
    controller.signal.addEventListener('abort', onAbort, { once: true });
    let attemptTimedOut = false;
    const attemptTimer =
      timeouts.attemptMs === undefined
        ? undefined
        : setTimeout(() => {
            attemptTimedOut = true;
            attempt.abort();
          }, timeouts.attemptMs);
    try {
      const resp = await deps.upstreams.send(
        ep,
        down.protocol,
        { method: down.method, path, authority, headers: attemptHeaders, body },
        attempt.signal,
      );
      last = { kind: 'response', status: resp.status };
      span?.end({ 'http.response.status_code': resp.status }, resp.status >= 500);
      const w = shouldRetry(retry, made, last, bodyKind) ? nextWait(made) : undefined;
      if (w !== undefined && !controller.signal.aborted) {
        resp.discard();
        rec.retried.push(String(resp.status));
        wait = w;
        continue;
      }
      lastResponse = resp;
      break;
    } catch (err) {
      const failed: AttemptResult = attemptTimedOut
        ? { kind: 'attempt-timeout' }
        : err instanceof AttemptError
          ? { kind: err.kind }
          : { kind: 'reset' };
      last = failed;
      span?.end({ 'ambit.error': String((err as Error).message) }, true);
      rec.reason = (err as Error).message;
      if (clientGone || timedOut) break;
      const w = shouldRetry(retry, made, failed, bodyKind) ? nextWait(made) : undefined;
      if (w === undefined) break;
      rec.retried.push(failed.kind);
      wait = w;
    } finally {
      clearTimeout(attemptTimer);
      controller.signal.removeEventListener('abort', onAbort);
    }
  }
  if (lastResponse === undefined) clearTimeout(requestTimer);

  if (clientGone) return localReply('downstream-reset', 'the client went away');
  const retried = rec.attempts > 1 ? [RETRY_LIMIT_FLAG] : [];
  if (lastResponse === undefined) {
    if (timedOut)
      return localReply('upstream-timeout', `timeouts.request (${timeouts.requestMs} ms) expired`, retried);
    switch (last?.kind) {
      case 'attempt-timeout':
        return localReply(
          'upstream-timeout',
          `timeouts.backendRequest (${timeouts.attemptMs} ms) expired`,
          retried,
        );
      case 'connect-failure':
        return localReply('upstream-connect-failure', rec.reason ?? 'connect failed', retried);
      default:
        return localReply('upstream-reset', rec.reason ?? 'the upstream connection broke', retried);
    }
  }

  // The response: its head (with the route's response modifiers), then the body and trailers.
  const resp = lastResponse;
  const out: HeaderRecord = { ...resp.headers };
  for (const m of responseModifiers) applyHeaderModifier(out, m);
  rec.status = resp.status;
  if (rec.attempts > 1 && retry.codes.has(resp.status)) rec.flags.push(RETRY_LIMIT_FLAG);
  const gs = headerOf(resp.headers, 'grpc-status');
  if (gs !== undefined) rec.grpcStatus = Number(gs);
  for (const [k, v] of Object.entries(out)) rec.responseBytes += k.length + String(v).length + 4;
  const h2 = down.protocol === 'HTTP/2';
  if (resp.endOfStream) {
    // Trailers-Only (a gRPC error answered in the head): one HEADERS frame that ends the stream.
    clearTimeout(requestTimer);
    down.respond(resp.status, out, { end: true, trailers: false });
    return done();
  }
  down.respond(resp.status, out, { end: false, trailers: h2 && grpc });
  await new Promise<void>((resolve) => {
    resp.pipe({
      data: (chunk) => {
        rec.responseBytes += chunk.length;
        return down.write(chunk);
      },
      onResume: (resume) => down.onDrain(resume),
      end: (trailers) => {
        clearTimeout(requestTimer);
        if (trailers !== undefined) {
          const t = headerOf(trailers, 'grpc-status');
          if (t !== undefined) rec.grpcStatus = Number(t);
        }
        down.end(h2 ? trailers : undefined);
        resolve();
      },
      error: (err) => {
        clearTimeout(requestTimer);
        rec.flags.push(timedOut ? 'UT' : 'UC');
        rec.reason = err.message;
        down.reset();
        resolve();
      },
    });
  });
  done();
}

function countBytes(body: Readable, add: (n: number) => void): Readable {
  const counter = new PassThrough();
  counter.on('data', (c: Buffer) => add(c.length));
  // `data` on the PassThrough would start it flowing early: count through a second pipe instead.
  const out = new PassThrough();
  body.pipe(counter).pipe(out);
  return out;
}

function splitAuthority(a: string): [string, number | undefined] {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(a);
  if (m === null) return [a, undefined];
  return [m[1]!.replace(/^\[|\]$/g, ''), m[2] === undefined ? undefined : Number(m[2])];
}

/** Sends a mirrored copy and drops whatever comes back (errors included): the client never waits for it. */
function sendMirror(
  deps: ForwardDeps,
  state: RoutingState,
  m: RequestMirror,
  routeNamespace: string,
  v6: boolean,
  protocol: 'HTTP/1.1' | 'HTTP/2',
  req: UpstreamRequest,
): void {
  const ref = m.backendRef;
  const service = state.mesh.service(ref.namespace ?? routeNamespace, ref.name);
  if (service === undefined || ref.port === undefined) return;
  const eps = state.endpoints(service, ref.port, v6);
  const ep = pickLeastRequest(eps, (e) => deps.upstreams.inFlight(e.key), deps.random);
  if (ep === undefined) return;
  const signal = AbortSignal.timeout(30_000);
  deps.upstreams.send(ep, protocol, req, signal).then(
    (r) =>
      r.pipe({
        data: () => true,
        onResume: () => undefined,
        end: () => undefined,
        error: () => undefined,
      }),
    (err: unknown) => deps.log.debug({ err, mirror: ep.key }, 'mirror request failed'),
  );
}
