import { type IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { HeaderRecord } from '../gateway-api/route-filters.js';
import type { RequestAttrs } from '../mesh/authz-l7.js';
import { endStream, resetSocket, splice } from '../net/splice.js';
import { FAULT_ABORT_FLAG, HTTP_FAILURES, type HttpFailure } from '../telemetry/http-outcomes.js';
import type { Release } from './circuit-breakers.js';
import { http1Downstream } from './downstream.js';
import { hashFactsOf } from './endpoint-picker.js';
import { authorizeAt, dstName, headerOf, type RequestHead } from './exchange.js';
import { type ForwardDeps, forward } from './forward.js';
import type { ConnSocket } from './inbound.js';
import { planRequest } from './plan.js';
import { protect } from './protect.js';
import { authenticate } from './request-authn.js';
import { RequestRecord } from './request-record.js';
import { answerStatus, relayAndClose, requestHeadText, rewriteHead } from './upgrade-relay.js';
import { openStream, type UpstreamsOptions } from './upstream.js';

/** The most bytes of an endpoint's answer head read before deciding whether it switched protocols. */
const MAX_ANSWER_HEAD = 16 * 1024;

/**
 * An HTTP/1.1 `Upgrade` (WebSocket): authenticated, authorized, routed and protected like any request
 * (the same plan, its request header filters and URL rewrite, a redirect answered as such; the
 * backend's faults, rate limit and circuit breaker), then the request head goes to the endpoint
 * and its answer is read. Only a `101 Switching Protocols` makes the two connections one: any other
 * answer is passed back with `connection: close` and the connection ends, so that nothing after it
 * can reach the endpoint without being routed. `Upgrade: h2c` (curl --http2 on http://) is served as
 * an ordinary request. One access line and one count when the connection ends.
 */
export function handleUpgrade(
  deps: ForwardDeps & { readonly dial: UpstreamsOptions },
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): void {
  // node:http stops listening for errors on an upgraded socket: a client that goes away must not crash us.
  socket.on('error', () => undefined);
  const ctx = (socket as ConnSocket).ctx;
  const protocols = String(req.headers.upgrade ?? '').toLowerCase();
  if (protocols.split(',').some((p) => p.trim() === 'h2c')) {
    // Not an upgrade we make: answer the request itself over HTTP/1.1, then close.
    if (head.length > 0) socket.unshift(head);
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as Socket);
    res.once('finish', () => socket.end());
    void forward(deps, ctx, http1Downstream(req, res)).catch(() => socket.destroy());
    return;
  }
  const state = deps.routing();
  const rec = new RequestRecord(
    { metrics: deps.metrics, retries: deps.retries, log: deps.accessLog },
    ctx.client,
    {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      authority: req.headers.host ?? '',
      protocol: 'HTTP/1.1',
      grpc: false,
      requestId: String(req.headers['x-request-id'] ?? ''),
    },
    ctx.dst.kind === 'service' ? ctx.dst.service : undefined,
    dstName(ctx),
  );
  let done = false;
  /** Circuit-breaker slots the upgrade holds until its connection ends. */
  const held: Release[] = [];
  const hold = (r: Release): void => {
    held.push(r);
  };
  // Aborts when the client goes away (ends an injected delay, a wait for a connection slot).
  const gone = new AbortController();
  if (socket.destroyed) gone.abort();
  else socket.once('close', () => gone.abort());
  const finish = (): void => {
    if (done) return;
    done = true;
    for (const r of held) r();
    rec.finish();
  };
  const answer = (status: number, reason: string, headers: HeaderRecord = {}): void => {
    rec.status = status;
    let text = `HTTP/1.1 ${status} ${reason}\r\n`;
    for (const [k, v] of Object.entries({ 'content-length': '0', ...headers, connection: 'close' }))
      for (const one of Array.isArray(v) ? v : [v]) text += `${k}: ${one}\r\n`;
    socket.end(`${text}\r\n`);
    finish();
  };
  const fail = (failure: HttpFailure, reason: string, extra: HeaderRecord = {}): void => {
    const info = HTTP_FAILURES[failure];
    rec.flags.push(info.flag);
    rec.reason = reason;
    if (failure === 'downstream-reset') {
      rec.status = 0;
      socket.destroy();
      finish();
      return;
    }
    answer(info.status, info.message, extra);
  };
  if (state === undefined) {
    fail('no-healthy-upstream', 'no config yet');
    return;
  }
  // The head as it came (raw names kept), for routing and to send on.
  const headers: HeaderRecord = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const k = req.rawHeaders[i]!.toLowerCase();
    const v = req.rawHeaders[i + 1]!;
    const had = headers[k];
    headers[k] = had === undefined ? v : [...(Array.isArray(had) ? had : [had]), v];
  }
  const asSent: RequestHead = {
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    authority: req.headers.host ?? '',
    headers,
  };
  if (deps.jwt === undefined || state.requestAuthn.length === 0) {
    proceed(asSent, undefined);
    return;
  }
  authenticate(state, ctx, asSent, deps.jwt.jwks, deps.jwt.counter).then(
    (step) => {
      const o = step.outcome;
      if (o.kind === 'denied') {
        rec.reason = o.reason;
        answer(o.status, o.status === 401 ? 'Unauthorized' : 'Forbidden', {
          'www-authenticate': `Bearer realm="http://${asSent.authority}${asSent.path.split('?')[0]}", error="invalid_token"`,
        });
        return;
      }
      if (o.kind === 'authenticated') rec.requestPrincipal = o.principal;
      proceed(
        step.head,
        o.kind === 'authenticated' ? { principal: o.principal, claims: o.claims } : undefined,
      );
    },
    (err: Error) => fail('internal', err.message),
  );

  function proceed(reqHead: RequestHead, auth: RequestAttrs['auth']): void {
    void carry(reqHead, auth).catch((err: Error) => {
      if (!done) fail('internal', err.message);
    });
  }

  async function carry(reqHead: RequestHead, auth: RequestAttrs['auth']): Promise<void> {
    if (state === undefined) return;
    const requestId = headerOf(headers, 'x-request-id') ?? '';
    const authz = authorizeAt(state, ctx, reqHead, auth);
    if (authz.audited.length > 0) rec.audited = authz.audited;
    if (authz.decidedBy.length > 0) rec.policy = authz.decidedBy.join(',');
    if (!authz.allowed) return fail('rbac-denied', authz.reason);
    // The upgrade's own headers (upgrade, connection) go on: the endpoint must see the request.
    const planned = planRequest(state, ctx, reqHead, requestId || 'upgrade', deps.random, ['upgrade']);
    if (planned.route !== undefined) rec.route = planned.route;
    if (planned.kind === 'refuse') return fail(planned.failure, planned.reason);
    if (planned.kind === 'redirect') return answer(planned.status, 'Redirect', planned.headers);
    const plan = planned.plan;
    const sent = plan.head;
    sent.headers.connection = headers.connection ?? 'upgrade';
    if (plan.backend !== undefined) rec.backend = plan.backend;
    // The backend's protections hold for an upgrade as for any request: faults, rate limit, and the
    // circuit breaker's request and connection limits (held while the upgraded connection lasts).
    /** Headers the waypoint adds to the endpoint's answer (the rate limit's state, an affinity cookie). */
    const added: Record<string, string> = {};
    if (plan.policy !== undefined) {
      const p = await protect(deps, plan.policy, {
        ctx,
        headers: reqHead.headers,
        route: rec.route,
        flags: rec.flags,
        signal: gone.signal,
        hold,
      });
      if (p.kind === 'refuse') return fail(p.failure, p.reason, p.rateHeaders);
      if (gone.signal.aborted) return fail('downstream-reset', 'the client went away');
      if (p.kind === 'abort') {
        rec.flags.push(FAULT_ABORT_FLAG);
        rec.reason = p.reason;
        // An upgrade is no gRPC call: an abort by gRPC status refuses it as unavailable.
        const status = 'httpStatus' in p.abort ? p.abort.httpStatus : 503;
        return answer(status, 'fault filter abort');
      }
      Object.assign(added, p.rateHeaders);
    }
    // Until the endpoint's answer head, the upgrade waits (for a connection slot, the connection, the
    // answer) at most the route's timeout, and no longer once the client has gone.
    const waiting = new AbortController();
    const onGone = (): void => waiting.abort();
    if (gone.signal.aborted) waiting.abort();
    else gone.signal.addEventListener('abort', onGone, { once: true });
    const limitMs = plan.timeouts.requestMs ?? plan.timeouts.attemptMs;
    let timedOut = false;
    const timer =
      limitMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            waiting.abort();
          }, limitMs);
    const answered = (): void => {
      clearTimeout(timer);
      gone.signal.removeEventListener('abort', onGone);
    };
    /** The wait ended before an answer: the route's timeout (504), or the client left. */
    const waitEnded = (): void => {
      answered();
      if (timedOut)
        fail(
          'upstream-timeout',
          `the endpoint did not answer the upgrade within ${limitMs} ms (the route's timeouts)`,
          added,
        );
      else fail('downstream-reset', 'the client went away');
    };
    const cb = plan.policy?.applied.circuitBreaker;
    if (plan.policy !== undefined && cb !== undefined && deps.breakers !== undefined) {
      const conn = await deps.breakers.connection(plan.policy.hostname, cb, waiting.signal);
      if (conn === undefined) return waitEnded();
      if (typeof conn === 'string') {
        answered();
        return fail(
          'upstream-overflow',
          `circuitBreaker.maxConnections (${cb.maxConnections}) in use and maxPendingRequests (${cb.maxPendingRequests}) waiting, BackendTrafficPolicy ${plan.policy.applied.policy}`,
          added,
        );
      }
      hold(conn);
    }
    const picks = deps.picker.request(plan.policy, hashFactsOf(ctx, reqHead.headers));
    // A WebSocket that reconnects comes back to the same endpoint (ConsistentHash on a cookie).
    if (picks.setCookie !== undefined) added['set-cookie'] = picks.setCookie;
    const ep = picks.next(plan.endpoints);
    if (ep === undefined) {
      answered();
      return fail('no-healthy-upstream', 'no ready endpoint', added);
    }
    rec.attempts = 1;
    rec.endpoint = ep.workload;
    rec.upstreamHost = ep.key;
    openStream(deps.dial, ep).then(
      (up) => {
        up.on('error', () => undefined);
        if (waiting.signal.aborted) {
          up.destroy();
          return waitEnded();
        }
        waiting.signal.addEventListener(
          'abort',
          () => {
            if (done || rec.status !== 0) return;
            up.destroy();
            waitEnded();
          },
          { once: true },
        );
        up.write(requestHeadText(sent));
        if (head.length > 0) up.write(head);
        // Read the endpoint's answer head before deciding what the connection becomes.
        let answerHead: Buffer = Buffer.alloc(0);
        const onData = (chunk: Buffer): void => {
          answerHead = Buffer.concat([answerHead, chunk]);
          const end = answerHead.indexOf('\r\n\r\n');
          if (end === -1 && answerHead.length < MAX_ANSWER_HEAD) return;
          up.off('data', onData);
          up.pause();
          answered();
          rec.status = answerStatus(answerHead);
          answerHead = rewriteHead(answerHead, plan.responseHeaders, added);
          if (rec.status === 101) {
            if (socket.destroyed) {
              // The client left while the endpoint was switching: nothing to join.
              up.destroy();
              rec.flags.push(HTTP_FAILURES['downstream-reset'].flag);
              finish();
              return;
            }
            socket.write(answerHead);
            splice(socket, up, { down: resetSocket, up: endStream }, (err) => {
              if (err !== undefined) rec.flags.push(HTTP_FAILURES['upstream-reset'].flag);
              finish();
            });
            return;
          }
          // Not switched: the answer goes back, and the connection ends with it.
          relayAndClose(socket, up, answerHead, finish);
        };
        up.on('data', onData);
        up.once('close', () => {
          if (done || rec.status !== 0) return;
          answered();
          rec.flags.push(HTTP_FAILURES['upstream-reset'].flag);
          socket.destroy();
          finish();
        });
      },
      (err: Error) => {
        if (waiting.signal.aborted) return waitEnded();
        answered();
        fail('upstream-connect-failure', err.message, added);
      },
    );
  }
}
