import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Readable } from 'node:stream';
import type { HeaderRecord } from '../gateway-api/route-filters.js';

/*
 * One client request as the waypoint sees it, whatever its protocol: HTTP/1.1 (node:http) and HTTP/2
 * (node:http2 core streams, so that a gRPC Trailers-Only response stays one HEADERS frame) behind one
 * interface. Header names are lowercase; hop-by-hop headers (RFC 9110 §7.6.1) stop here.
 */

export interface Downstream {
  readonly protocol: 'HTTP/1.1' | 'HTTP/2';
  readonly method: string;
  /** Path and query, as sent. */
  readonly path: string;
  /** `Host` or `:authority`. */
  readonly authority: string;
  readonly headers: HeaderRecord;
  /** The body, or undefined when the request has none. */
  readonly body: Readable | undefined;
  /** Bytes of the request head, for `istio_request_bytes`. */
  readonly headerBytes: number;
  readonly responseStarted: boolean;
  /** Sends the response head; `end` when there is no body, `trailers` when trailers will follow. */
  respond(status: number, headers: HeaderRecord, o: { end: boolean; trailers: boolean }): void;
  /** Writes body bytes; false when the client is not keeping up (wait for `onDrain`). */
  write(chunk: Buffer): boolean;
  onDrain(cb: () => void): void;
  end(trailers?: HeaderRecord): void;
  /** Aborts the exchange: a reset stream (HTTP/2) or a closed connection (HTTP/1.1). */
  reset(): void;
  /** Called once when the exchange is over: `completed` when the whole response was sent. */
  onClose(cb: (completed: boolean) => void): void;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'host',
  'http2-settings',
]);

/** Request or response headers without pseudo-headers and hop-by-hop ones (`te: trailers` is kept for gRPC). */
export function endToEnd(h: IncomingHttpHeaders): HeaderRecord {
  const out: HeaderRecord = {};
  const named = String(h.connection ?? '')
    .toLowerCase()
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || k.startsWith(':') || HOP_BY_HOP.has(k) || named.includes(k)) continue;
    out[k] = v;
  }
  if (String(h.te ?? '').toLowerCase() === 'trailers') out.te = 'trailers';
  return out;
}

function headSize(method: string, path: string, headers: IncomingHttpHeaders): number {
  let n = method.length + path.length + 12;
  for (const [k, v] of Object.entries(headers)) n += k.length + String(v).length + 4;
  return n;
}

/** An HTTP/1.1 request from node:http. */
export function http1Downstream(req: IncomingMessage, res: ServerResponse): Downstream {
  const hasBody =
    req.headers['transfer-encoding'] !== undefined ||
    (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  if (!hasBody) req.resume();
  let started = false;
  return {
    protocol: 'HTTP/1.1',
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    authority: req.headers.host ?? '',
    headers: endToEnd(req.headers),
    body: hasBody ? req : undefined,
    headerBytes: headSize(req.method ?? '', req.url ?? '', req.headers),
    get responseStarted() {
      return started;
    },
    respond(status, headers, o) {
      // A head node:http refuses (a bad header from a backend) throws before anything is sent.
      res.writeHead(status, headers as Record<string, string | string[]>);
      started = true;
      if (o.end) res.end();
    },
    write: (chunk) => res.write(chunk),
    onDrain: (cb) => res.once('drain', cb),
    end(trailers) {
      if (trailers !== undefined && Object.keys(trailers).length > 0)
        res.addTrailers(trailers as Record<string, string>);
      res.end();
    },
    reset: () => res.destroy(),
    onClose: (cb) => res.once('close', () => cb(res.writableFinished)),
  };
}

/** An HTTP/2 request from node:http2's core API. */
export function http2Downstream(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  flags: number,
): Downstream {
  const hasBody = (flags & constants.NGHTTP2_FLAG_END_STREAM) === 0;
  if (!hasBody) stream.resume();
  let started = false;
  let wantsTrailers = false;
  const method = String(headers[':method'] ?? 'GET');
  const path = String(headers[':path'] ?? '/');
  return {
    protocol: 'HTTP/2',
    method,
    path,
    authority: String(headers[':authority'] ?? headers.host ?? ''),
    headers: endToEnd(headers),
    body: hasBody ? stream : undefined,
    headerBytes: headSize(method, path, headers),
    get responseStarted() {
      return started;
    },
    respond(status, h, o) {
      started = true;
      if (stream.destroyed) return;
      wantsTrailers = o.trailers;
      stream.respond(
        { ...h, ':status': status },
        { endStream: o.end, waitForTrailers: o.trailers && !o.end },
      );
    },
    write: (chunk) => stream.write(chunk),
    onDrain: (cb) => stream.once('drain', cb),
    end(trailers) {
      if (stream.destroyed) return;
      if (wantsTrailers) stream.once('wantTrailers', () => stream.sendTrailers(trailers ?? {}));
      stream.end();
    },
    reset: () => {
      if (!stream.destroyed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    },
    onClose: (cb) =>
      stream.once('close', () =>
        cb(stream.rstCode === constants.NGHTTP2_NO_ERROR && stream.writableFinished),
      ),
  };
}
