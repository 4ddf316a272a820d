import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  constants,
  connect as h2connect,
  type IncomingHttpHeaders,
} from 'node:http2';
import { connect as netConnect } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { type Dispatcher, Pool } from 'undici';
import { AmbitError, describeError, ErrorCode } from '../errors.js';
import type { HeaderRecord } from '../gateway-api/route-filters.js';
import type { HbonePool } from '../hbone/pool.js';
import { H2_SETTINGS } from '../hbone/protocol.js';
import type { Workload } from '../mesh/view.js';
import { hostPort } from '../net/ip.js';
import { StreamSocket } from '../net/stream-socket.js';
import { endToEnd } from './downstream.js';

/*
 * The waypoint's connections to endpoints: HBONE to the endpoint's node proxy with the waypoint's own
 * identity (plain TCP to an endpoint outside the mesh), pooled per endpoint. HTTP/1.1 goes through an
 * undici Pool whose connections are HBONE streams; HTTP/2 and gRPC through one multiplexed node:http2
 * session per endpoint; anything else is a raw stream.
 */

/** One endpoint of a backend, as the waypoint dials it. */
export interface UpstreamEndpoint {
  /** `ip:port`. */
  readonly key: string;
  readonly ip: string;
  readonly port: number;
  readonly workload: Workload;
  /** HBONE to the endpoint's node proxy; undefined for an endpoint outside the mesh (plain TCP). */
  readonly hbone?: { readonly nodeIp: string; readonly identity: string };
}

export interface UpstreamRequest {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly headers: HeaderRecord;
  /** A kept body (sendable again), a streamed one, or none. */
  readonly body: Buffer | Readable | undefined;
}

/** The head of an upstream response; the body flows only once `pipe` is called (or is dropped by `discard`). */
export interface UpstreamResponse {
  readonly status: number;
  readonly headers: HeaderRecord;
  /** The head ended the stream: no body, no trailers (a gRPC Trailers-Only response). */
  readonly endOfStream: boolean;
  pipe(sink: BodySink): void;
  discard(): void;
}

export interface BodySink {
  /** False: stop until `resume` is called. */
  data(chunk: Buffer): boolean;
  onResume(resume: () => void): void;
  end(trailers: HeaderRecord | undefined): void;
  error(err: Error): void;
}

/** Why an attempt got no response: the request was never sent, or the connection broke after. */
export class AttemptError extends AmbitError {
  constructor(
    readonly kind: 'connect-failure' | 'reset',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(ErrorCode.UPSTREAM_CONNECT, message, options);
  }
}

/** The endpoint and how it is dialled: a pool made for one is never used for another (a pod IP reused). */
function poolKey(ep: UpstreamEndpoint): string {
  return ep.hbone === undefined ? `${ep.key}|tcp` : `${ep.key}|${ep.hbone.nodeIp}|${ep.hbone.identity}`;
}

/** Rejects as soon as `signal` aborts (a connection still being made is not waited for). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) return Promise.reject(new AttemptError('connect-failure', `${what}: aborted`));
  return new Promise((resolve, reject) => {
    const onAbort = (): void =>
      reject(new AttemptError('connect-failure', `${what}: aborted before the connection was made`));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

export interface UpstreamsOptions {
  readonly hbone: HbonePool;
  /** The waypoint's own identity: what the endpoints' node proxies see as the source. */
  readonly identity: string;
  /** The waypoint pod's address, sent as `forwarded: for=` so that the far side names the source. */
  readonly podIp: string;
  readonly hbonePort: number;
}

/** A raw stream to an endpoint: an HBONE CONNECT stream, or a TCP socket for one outside the mesh. */
export async function openStream(o: UpstreamsOptions, ep: UpstreamEndpoint): Promise<Duplex> {
  if (ep.hbone !== undefined) {
    try {
      return await o.hbone.open(
        { ip: ep.hbone.nodeIp, port: o.hbonePort, srcIdentity: o.identity, dstIdentity: ep.hbone.identity },
        ep.key,
        { forwarded: `for="${o.podIp}"` },
      );
    } catch (err) {
      throw new AttemptError('connect-failure', `HBONE to ${ep.key}: ${describeError(err)}`, { cause: err });
    }
  }
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: ep.ip, port: ep.port, noDelay: true, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', (err) =>
      reject(new AttemptError('connect-failure', `connect to ${ep.key}: ${err.message}`)),
    );
  });
}

/** An idle HTTP/2 session to an endpoint is closed after this long. */
const IDLE_SESSION_MS = 60_000;

/** Pools per endpoint, with the count of requests in flight on each (what least-request reads). */
export class Upstreams {
  private readonly h1 = new Map<string, Pool>();
  private readonly h2 = new Map<string, Promise<ClientHttp2Session>>();
  private readonly active = new Map<string, number>();
  /** Every endpoint a pool or session was made for, by pool key. */
  private readonly dialled = new Map<string, UpstreamEndpoint>();

  constructor(private readonly o: UpstreamsOptions) {}

  inFlight(key: string): number {
    return this.active.get(key) ?? 0;
  }

  private track(key: string): () => void {
    this.active.set(key, this.inFlight(key) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = this.inFlight(key) - 1;
      if (n <= 0) this.active.delete(key);
      else this.active.set(key, n);
    };
  }

  /** Sends one attempt; resolves at the response head, rejects with an AttemptError. */
  send(
    ep: UpstreamEndpoint,
    protocol: 'HTTP/1.1' | 'HTTP/2',
    req: UpstreamRequest,
    signal: AbortSignal,
  ): Promise<UpstreamResponse> {
    const release = this.track(ep.key);
    const p =
      protocol === 'HTTP/2' ? this.sendH2(ep, req, signal, release) : this.sendH1(ep, req, signal, release);
    p.catch(release);
    return p;
  }

  private pool(ep: UpstreamEndpoint): Pool {
    const key = poolKey(ep);
    this.dialled.set(key, ep);
    let pool = this.h1.get(key);
    if (pool === undefined) {
      const o = this.o;
      pool = new Pool(`http://${hostPort(ep.ip, ep.port)}`, {
        pipelining: 1,
        keepAliveTimeout: 60_000,
        headersTimeout: 0,
        bodyTimeout: 0,
        connect: (_opts, cb) => {
          openStream(o, ep).then(
            (s) => cb(null, new StreamSocket(s, { ip: ep.ip, port: ep.port }) as never),
            (err: Error) => cb(err, null),
          );
        },
      });
      this.h1.set(key, pool);
    }
    return pool;
  }

  private sendH1(
    ep: UpstreamEndpoint,
    req: UpstreamRequest,
    signal: AbortSignal,
    release: () => void,
  ): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      let controller: Dispatcher.DispatchController | undefined;
      let sink: BodySink | undefined;
      let started = false;
      const pending: Buffer[] = [];
      let ended: { trailers: HeaderRecord | undefined } | undefined;
      let failed: Error | undefined;
      // undici hands over the controller only once the request is on a connection: an abort before
      // that is remembered and carried out then (the request is never sent).
      const onAbort = (): void => {
        if (controller !== undefined) {
          controller.abort(new AttemptError('connect-failure', `${ep.key}: aborted`));
          return;
        }
        // Still connecting: the caller gets its answer now; onRequestStart aborts the request later.
        finish();
        reject(new AttemptError('connect-failure', `${ep.key}: aborted before the connection was made`));
      };
      if (signal.aborted) {
        release();
        reject(new AttemptError('connect-failure', `${ep.key}: aborted before it was sent`));
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      const finish = (): void => {
        signal.removeEventListener('abort', onAbort);
        release();
      };
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart: (c) => {
          controller = c;
          if (signal.aborted)
            c.abort(new AttemptError('connect-failure', `${ep.key}: aborted before it was sent`));
        },
        onResponseStart: (c, status, headers) => {
          if (status < 200) return;
          started = true;
          c.pause();
          resolve({
            status,
            headers: endToEnd(headers as IncomingHttpHeaders),
            endOfStream: false,
            pipe: (s) => {
              sink = s;
              s.onResume(() => c.resume());
              let ok = true;
              for (const chunk of pending.splice(0)) ok = s.data(chunk) && ok;
              if (failed !== undefined) s.error(failed);
              else if (ended !== undefined) s.end(ended.trailers);
              else if (ok) c.resume();
            },
            discard: () => {
              c.abort(new Error('discarded for a retry'));
            },
          });
        },
        onResponseData: (c, chunk) => {
          if (sink === undefined) pending.push(chunk);
          else if (!sink.data(chunk)) c.pause();
        },
        onResponseEnd: (_c, trailers) => {
          finish();
          const t =
            Object.keys(trailers).length === 0 ? undefined : endToEnd(trailers as IncomingHttpHeaders);
          if (sink === undefined) ended = { trailers: t };
          else sink.end(t);
        },
        onResponseError: (_c, err) => {
          finish();
          if (!started) {
            reject(
              err instanceof AttemptError
                ? err
                : new AttemptError('reset', `${ep.key}: ${describeError(err)}`, { cause: err }),
            );
          } else if (sink === undefined) failed = err;
          else sink.error(err);
        },
      };
      const headers: Record<string, string | string[]> = {
        ...(req.headers as Record<string, string | string[]>),
        host: req.authority,
      };
      this.pool(ep).dispatch(
        {
          method: req.method as Dispatcher.HttpMethod,
          path: req.path,
          headers,
          body: req.body ?? null,
          // Retries are decided by the route, not by undici.
          idempotent: false,
          blocking: false,
        },
        handler,
      );
    });
  }

  private session(ep: UpstreamEndpoint): Promise<ClientHttp2Session> {
    const key = poolKey(ep);
    this.dialled.set(key, ep);
    let s = this.h2.get(key);
    if (s === undefined) {
      s = openStream(this.o, ep).then(
        (raw) =>
          new Promise<ClientHttp2Session>((resolve, reject) => {
            const socket = new StreamSocket(raw, { ip: ep.ip, port: ep.port });
            const session = h2connect(`http://${hostPort(ep.ip, ep.port)}`, {
              settings: H2_SETTINGS,
              createConnection: () => socket,
            });
            const forget = (): void => {
              if (this.h2.get(key) === s) this.h2.delete(key);
            };
            // An idle session is closed after a while, as an idle HTTP/1.1 connection is.
            session.setTimeout(IDLE_SESSION_MS, () => session.close());
            session.once('close', forget);
            session.once('goaway', forget);
            session.on('error', () => forget());
            session.once('connect', () => resolve(session));
            session.once('error', (err) =>
              reject(new AttemptError('connect-failure', `HTTP/2 to ${ep.key}: ${err.message}`)),
            );
          }),
      );
      this.h2.set(key, s);
      s.catch(() => this.h2.delete(key));
    }
    return s;
  }

  private async sendH2(
    ep: UpstreamEndpoint,
    req: UpstreamRequest,
    signal: AbortSignal,
    release: () => void,
  ): Promise<UpstreamResponse> {
    const session = await untilAborted(this.session(ep), signal, ep.key);
    if (session.closed || session.destroyed) {
      this.h2.delete(poolKey(ep));
      throw new AttemptError('connect-failure', `HTTP/2 session to ${ep.key} closed`);
    }
    const body = req.body;
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(
        {
          ...(req.headers as Record<string, string | string[]>),
          ':method': req.method,
          ':path': req.path,
          ':authority': req.authority,
          ':scheme': 'http',
        },
        { endStream: body === undefined || (Buffer.isBuffer(body) && body.length === 0), signal },
      );
    } catch (err) {
      throw new AttemptError('connect-failure', `HTTP/2 to ${ep.key}: ${describeError(err)}`, { cause: err });
    }
    stream.once('close', release);
    if (Buffer.isBuffer(body)) {
      if (body.length > 0) stream.end(body);
    } else if (body !== undefined) body.pipe(stream);
    return new Promise((resolve, reject) => {
      let trailers: HeaderRecord | undefined;
      stream.once('trailers', (t) => {
        trailers = endToEnd(t);
      });
      const onEarlyError = (err: Error): void => {
        reject(
          new AttemptError(
            stream.rstCode === constants.NGHTTP2_REFUSED_STREAM ? 'connect-failure' : 'reset',
            `${ep.key}: ${err.message}`,
            { cause: err },
          ),
        );
      };
      stream.once('error', onEarlyError);
      stream.once('close', () => {
        if (stream.rstCode !== constants.NGHTTP2_NO_ERROR)
          onEarlyError(new Error(`stream reset (code ${stream.rstCode})`));
      });
      stream.once('response', (h, flags) => {
        stream.off('error', onEarlyError);
        const status = Number(h[':status']);
        stream.pause();
        resolve({
          status,
          headers: endToEnd(h),
          endOfStream: (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0,
          pipe: (sink) => {
            sink.onResume(() => stream.resume());
            stream.on('data', (chunk: Buffer) => {
              if (!sink.data(chunk)) stream.pause();
            });
            stream.once('end', () => sink.end(trailers));
            stream.once('error', (err) => sink.error(err));
            stream.once('close', () => {
              if (stream.rstCode !== constants.NGHTTP2_NO_ERROR && !stream.readableEnded)
                sink.error(new Error(`stream reset (code ${stream.rstCode})`));
            });
            stream.resume();
          },
          discard: () => stream.close(constants.NGHTTP2_CANCEL),
        });
      });
    });
  }

  /**
   * Closes the pools of endpoints that are no longer dialled this way (the pod went away, or its
   * address now belongs to another pod, identity or node): `current` says which still are.
   */
  retain(current: (ep: UpstreamEndpoint) => boolean): void {
    for (const [k, ep] of this.dialled) {
      if (current(ep)) continue;
      this.dialled.delete(k);
      const pool = this.h1.get(k);
      this.h1.delete(k);
      void pool?.close().catch(() => undefined);
      const session = this.h2.get(k);
      this.h2.delete(k);
      void session?.then(
        (x) => x.close(),
        () => undefined,
      );
    }
  }

  async close(): Promise<void> {
    const pools = [...this.h1.values()];
    this.h1.clear();
    for (const s of this.h2.values())
      void s.then(
        (x) => x.destroy(),
        () => undefined,
      );
    this.h2.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}
