import type { Server as Http1Server } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { HboneRequest } from '../hbone/server.js';
import { declaredProtocol, type Sniffed, sniffProtocol } from '../mesh/protocol.js';
import { hostPort } from '../net/ip.js';
import { endStream, splice } from '../net/splice.js';
import { StreamSocket } from '../net/stream-socket.js';
import { HTTP_FAILURES, type HttpFailure } from '../telemetry/http-outcomes.js';
import type { Logger } from '../telemetry/logger.js';
import { type EndpointPicker, hashFactsOf, targetOf } from './endpoint-picker.js';
import { type ConnContext, dstIsV6, dstName } from './exchange.js';
import type { RoutingState } from './routing-state.js';
import { openStream, type Upstreams, type UpstreamsOptions } from './upstream.js';

/** A client connection's socket for the HTTP servers, carrying who sent it and what it addressed. */
export class ConnSocket extends StreamSocket {
  constructor(
    inner: Duplex,
    peer: { ip: string; port: number },
    head: Buffer | undefined,
    readonly ctx: ConnContext,
  ) {
    super(inner, peer, head);
  }
}

export interface InboundDeps {
  readonly routing: () => RoutingState | undefined;
  readonly http1: Http1Server;
  /** Serves HTTP/2 on one client connection (a session of its own, which knows its context). */
  readonly http2: (socket: ConnSocket) => void;
  readonly upstreams: Upstreams;
  readonly dial: UpstreamsOptions;
  readonly accessLog: Logger;
  readonly log: Logger;
  readonly random: () => number;
  readonly picker: EndpointPicker;
  /** Counts a TCP pass-through connection by its flag (`ambit_waypoint_tcp_connections_total`). */
  readonly tcp: (flag: string) => void;
  /** Counts a refused CONNECT by its flag (`ambit_hbone_refused_total`). */
  readonly refused: (flag: string) => void;
}

/** How long a stream with no declared protocol may stay silent before it is taken as TCP (server-first protocols). */
export const SNIFF_TIMEOUT_MS = 200;
/** A port declared HTTP gets longer: its client is expected to speak first. */
const DECLARED_HTTP_TIMEOUT_MS = 10_000;

/**
 * Reads the first bytes of a stream until they tell the protocol, or the time runs out (TCP).
 * Resolves `closed` when the client went away first: nothing is opened for it.
 */
function sniff(stream: Duplex, timeoutMs: number): Promise<{ proto: Sniffed | 'closed'; head: Buffer }> {
  return new Promise((resolve) => {
    let head: Buffer = Buffer.alloc(0);
    const finish = (proto: Sniffed | 'closed'): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onClose);
      if (proto !== 'closed') stream.pause();
      resolve({ proto, head });
    };
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const p = sniffProtocol(head);
      if (p !== 'more') finish(p);
    };
    const onEnd = (): void => finish('tcp');
    const onClose = (): void => finish('closed');
    const timer = setTimeout(() => finish(stream.destroyed ? 'closed' : 'tcp'), timeoutMs);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onClose);
  });
}

/**
 * One HBONE CONNECT to the waypoint: the authority names a Service VIP and port whose traffic is
 * bound to this waypoint (or a pod, for a waypoint that takes workload traffic); anything else is
 * refused. The stream is then read as HTTP/1.1, HTTP/2 or TCP (the Service port's declared protocol,
 * else sniffed) and handed to the HTTP servers with its context, or passed through.
 */
export function handleConnect(deps: InboundDeps, req: HboneRequest, stream: ServerHttp2Stream): void {
  const state = deps.routing();
  const target = req.target!;
  const refuse = (status: number, reason: string): void => {
    deps.refused(status === 503 ? HTTP_FAILURES['no-healthy-upstream'].flag : HTTP_FAILURES['no-route'].flag);
    deps.log.warn({ peer: req.peer.toString(), authority: req.authority, reason }, 'CONNECT refused');
    if (!stream.destroyed) stream.respond({ ':status': status }, { endStream: true });
  };
  if (state === undefined) {
    refuse(503, 'no config yet');
    return;
  }
  const clientIp = req.forwardedFor?.ip ?? req.tlsPeer.ip;
  const claimed = state.mesh.workloadByIp(clientIp);
  const identity = req.peer.toString();
  const client: ConnContext['client'] = {
    identity,
    namespace: req.peer.namespace,
    address: hostPort(clientIp, req.forwardedFor?.port ?? 0),
    ...(claimed !== undefined && claimed.identity === identity ? { workload: claimed } : {}),
  };
  let ctx: ConnContext;
  const service = state.mesh.serviceByVip(target.ip);
  if (service !== undefined) {
    const port = service.ports.find((p) => p.port === target.port && p.protocol === 'TCP');
    if (port === undefined) {
      refuse(400, `Service ${service.hostname} has no TCP port ${target.port}`);
      return;
    }
    if (!state.serves(service)) {
      refuse(400, `Service ${service.hostname} does not use this waypoint`);
      return;
    }
    ctx = { client, dst: { kind: 'service', service, port, vip: target.ip } };
  } else {
    const workload = state.mesh.workloadByIp(target.ip);
    if (workload === undefined || !state.serves(workload)) {
      refuse(400, `${req.authority} is not a Service or pod that uses this waypoint`);
      return;
    }
    ctx = { client, dst: { kind: 'workload', workload, port: target.port } };
  }
  stream.respond({ ':status': 200 });
  const declared = ctx.dst.kind === 'service' ? declaredProtocol(ctx.dst.port) : 'sniff';
  const peer = { ip: clientIp, port: req.forwardedFor?.port ?? 0 };
  const toHttp1 = (head?: Buffer): void => {
    deps.http1.emit('connection', new ConnSocket(stream, peer, head, ctx));
  };
  const toHttp2 = (head?: Buffer): void => {
    deps.http2(new ConnSocket(stream, peer, head, ctx));
  };
  if (declared === 'tcp') {
    passThrough(deps, ctx, stream, undefined);
    return;
  }
  if (declared === 'http2' || declared === 'grpc') {
    toHttp2();
    return;
  }
  void sniff(stream, declared === 'http' ? DECLARED_HTTP_TIMEOUT_MS : SNIFF_TIMEOUT_MS).then(
    ({ proto, head }) => {
      if (proto === 'http2') toHttp2(head);
      else if (proto === 'http1' || declared === 'http') toHttp1(head);
      else passThrough(deps, ctx, stream, head);
    },
  );
}

/** A stream that is not HTTP: to an endpoint of the Service (or the pod), bytes as they are. */
function passThrough(
  deps: InboundDeps,
  ctx: ConnContext,
  stream: ServerHttp2Stream,
  head: Buffer | undefined,
): void {
  const state = deps.routing();
  const started = performance.now();
  let logged = false;
  const log = (flag: string, extra: Record<string, unknown>): void => {
    if (logged) return;
    logged = true;
    deps.tcp(flag);
    deps.accessLog.info(
      {
        src: ctx.client.address,
        src_identity: ctx.client.identity,
        dst: dstName(ctx),
        protocol: 'tcp',
        flags: flag,
        duration_ms: Math.round(performance.now() - started),
        ...extra,
      },
      'connection',
    );
  };
  const fail = (failure: HttpFailure, reason: string, extra: Record<string, unknown> = {}): void => {
    if (!stream.destroyed) stream.close();
    log(HTTP_FAILURES[failure].flag, { reason, ...extra });
  };
  if (state === undefined) {
    fail('no-route', 'no config yet');
    return;
  }
  const v6 = dstIsV6(ctx);
  const endpoints =
    ctx.dst.kind === 'service'
      ? state.endpoints(ctx.dst.service, ctx.dst.port.port, v6)
      : [state.endpointOf(ctx.dst.workload, ctx.dst.port, v6)].filter((e) => e !== undefined);
  const ep = deps.picker
    .request(targetOf(ctx.dst.kind === 'service' ? ctx.dst.service : undefined), hashFactsOf(ctx, {}))
    .next(endpoints);
  if (ep === undefined) {
    fail('no-healthy-upstream', 'no ready endpoint');
    return;
  }
  openStream(deps.dial, ep).then(
    (up) => {
      if (stream.destroyed) {
        up.destroy();
        fail('downstream-reset', 'the client went away', { upstream: ep.key });
        return;
      }
      if (head !== undefined && head.length > 0) up.write(head);
      stream.resume();
      splice(stream, up, { down: endStream, up: endStream }, (err) =>
        log(err === undefined ? '-' : HTTP_FAILURES['upstream-reset'].flag, {
          upstream: ep.key,
          ...(err === undefined ? {} : { reason: err }),
        }),
      );
    },
    (err: Error) => fail('upstream-connect-failure', err.message, { upstream: ep.key }),
  );
}
