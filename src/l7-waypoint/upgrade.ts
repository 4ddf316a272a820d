import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { applyHeaderModifier, type HeaderRecord } from '../gateway-api/route-filters.js';
import { decideL7 } from '../mesh/l7-route.js';
import { pickLeastRequest } from '../mesh/load-balancer-least-request.js';
import { isV6 } from '../net/ip.js';
import { endStream, resetSocket, splice } from '../net/splice.js';
import { HTTP_FAILURES } from '../telemetry/http-outcomes.js';
import type { ForwardDeps } from './forward.js';
import type { ConnSocket } from './inbound.js';
import { RequestRecord } from './request-record.js';
import { openStream, type UpstreamEndpoint, type UpstreamsOptions } from './upstream.js';

/**
 * An HTTP/1.1 `Upgrade` (WebSocket): routed like any request (the same decision, request header
 * filters included), then the request head goes to the endpoint as it came and the two connections
 * are spliced: whatever the endpoint answers (101, or a refusal) and every frame after it pass
 * through. One access-log line and one count when the connection ends, with the endpoint's status.
 */
export function handleUpgrade(
  deps: ForwardDeps & { readonly dial: UpstreamsOptions },
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): void {
  const ctx = (socket as ConnSocket).ctx;
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
  );
  const fail = (failure: keyof typeof HTTP_FAILURES, reason: string): void => {
    const info = HTTP_FAILURES[failure];
    rec.status = info.status;
    rec.flags.push(info.flag);
    rec.reason = reason;
    socket.end(`HTTP/1.1 ${info.status} ${info.message}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
    rec.finish();
  };
  if (state === undefined) {
    fail('no-healthy-upstream', 'no config yet');
    return;
  }
  const headers: HeaderRecord = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const k = req.rawHeaders[i]!.toLowerCase();
    const v = req.rawHeaders[i + 1]!;
    const had = headers[k];
    headers[k] = had === undefined ? v : [...(Array.isArray(had) ? had : [had]), v];
  }
  let endpoints: readonly UpstreamEndpoint[];
  const v6 = isV6(ctx.dst.kind === 'service' ? ctx.dst.vip : (ctx.dst.workload.ips[0] ?? ''));
  if (ctx.dst.kind === 'service') {
    const path = req.url ?? '/';
    const q = path.indexOf('?');
    const d = decideL7(
      state.mesh,
      state.routesFor(ctx.dst.service, ctx.dst.port, ctx.client.namespace),
      ctx.dst.service,
      ctx.dst.port,
      {
        method: req.method ?? 'GET',
        path: q === -1 ? path : path.slice(0, q),
        query: q === -1 ? [] : [...new URLSearchParams(path.slice(q + 1))],
        header: (name) => {
          const v = headers[name];
          return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : v;
        },
        grpc: false,
      },
      deps.random,
    );
    if (d.route !== undefined) rec.route = d.route;
    if (d.kind === 'refuse') {
      fail(d.failure, d.reason);
      return;
    }
    if (d.kind === 'redirect') {
      fail('no-route', 'a redirect rule does not take an upgrade');
      return;
    }
    for (const m of d.requestHeaders) applyHeaderModifier(headers, m);
    rec.backend = d.backend.service;
    endpoints = state.endpoints(d.backend.service, d.backend.port, v6);
  } else {
    endpoints = [state.endpointOf(ctx.dst.workload, ctx.dst.port, v6)];
  }
  const ep = pickLeastRequest(endpoints, (e) => deps.upstreams.inFlight(e.key), deps.random);
  if (ep === undefined) {
    fail('no-healthy-upstream', 'no ready endpoint');
    return;
  }
  rec.attempts = 1;
  rec.endpoint = ep.workload;
  rec.upstreamHost = ep.key;
  openStream(deps.dial, ep).then(
    (up) => {
      let headText = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (const [k, v] of Object.entries(headers))
        for (const one of Array.isArray(v) ? v : [v]) headText += `${k}: ${one}\r\n`;
      up.write(`${headText}\r\n`);
      if (head.length > 0) up.write(head);
      up.once('data', (first: Buffer) => {
        rec.status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(first.toString('latin1', 0, 16))?.[1] ?? 0);
      });
      splice(socket, up, { down: resetSocket, up: endStream }, (err) => {
        if (err !== undefined) rec.flags.push('UC');
        rec.finish();
      });
    },
    (err: Error) => fail('upstream-connect-failure', err.message),
  );
}
