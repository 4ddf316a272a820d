import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import { type AddressInfo, type Socket, connect as tcpConnect } from 'node:net';
import { Duplex, type Readable } from 'node:stream';
import { Client } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { StreamSocket } from '../../src/net/stream-socket.js';

/*
 * StreamSocket carries HTTP over an HTTP/2 CONNECT stream (an HBONE tunnel), for node:http's server,
 * node:http2's server and client, and undici. Everything here runs for real on loopback: an h2c
 * server stands in for the HBONE server, each CONNECT stream becomes one "connection".
 */

const PEER = { ip: '127.0.0.1', port: 1 };
const BIG = Buffer.alloc(64 * 1024, 'abcdefghijklmnopqrstuvwxyz0123456789');
const CHUNKS = ['first chunk;', 'second, longer chunk;', 'x'.repeat(5000), 'last'];

/** The HTTP/1.1 application behind the tunnel. No Date header, so that responses are byte-stable. */
const app = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  res.sendDate = false;
  const url = req.url ?? '/';
  if (url === '/chunked') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    for (const c of CHUNKS) res.write(c);
    res.end();
    return;
  }
  if (url === '/big') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG.length });
    res.end(BIG);
    return;
  }
  if (url === '/who') {
    const s = req.socket;
    res.end(`${s.remoteAddress} ${s.remotePort} ${s.remoteFamily}`);
    return;
  }
  if (url === '/echo') {
    const hash = createHash('sha256');
    let n = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      n += c.length;
    });
    req.on('end', () => res.end(`${n} ${hash.digest('hex')}`));
    return;
  }
  if (url === '/empty') {
    res.writeHead(204);
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'x-path': url });
  res.end(`response for ${url}`);
});

/** The stand-in for the HBONE server: each CONNECT stream is answered 200 and handed on as a socket. */
let tunnel: http2.Http2Server;
/** What a CONNECT stream is handed to; set per test. */
let onTunnel: (stream: http2.ServerHttp2Stream) => void = (s) =>
  app.emit('connection', new StreamSocket(s, PEER));
/** The app on plain TCP too, as the reference for byte-exactness. */
let direct: http.Server;
let tunnelPort = 0;
let directPort = 0;
const sessions: http2.ClientHttp2Session[] = [];

beforeAll(async () => {
  tunnel = http2.createServer();
  tunnel.on('stream', (stream, headers) => {
    if (headers[':method'] !== 'CONNECT') {
      stream.respond({ ':status': 405 }, { endStream: true });
      return;
    }
    stream.respond({ ':status': 200 });
    onTunnel(stream);
  });
  tunnel.listen(0, '127.0.0.1');
  await once(tunnel, 'listening');
  tunnelPort = (tunnel.address() as AddressInfo).port;
  direct = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => app.emit('request', req, res));
  direct.listen(0, '127.0.0.1');
  await once(direct, 'listening');
  directPort = (direct.address() as AddressInfo).port;
});

afterEach(() => {
  onTunnel = (s) => app.emit('connection', new StreamSocket(s, PEER));
});

afterAll(async () => {
  for (const s of sessions) s.destroy();
  app.closeAllConnections();
  direct.closeAllConnections();
  await Promise.all([new Promise((r) => tunnel.close(r)), new Promise((r) => direct.close(r))]);
});

/** A CONNECT stream through the tunnel server, once it is answered 200. */
async function openTunnel(authority = '10.96.0.10:80'): Promise<http2.ClientHttp2Stream> {
  const session = http2.connect(`http://127.0.0.1:${tunnelPort}`);
  sessions.push(session);
  const stream = session.request({ ':method': 'CONNECT', ':authority': authority });
  const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
  expect(headers[':status']).toBe(200);
  return stream;
}

/** Splits a byte stream into whole HTTP/1.1 responses, as they arrive, without interpreting them further. */
class ResponseReader {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private ended = false;

  constructor(stream: Readable) {
    stream.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake?.();
    });
    stream.on('end', () => {
      this.ended = true;
      this.wake?.();
    });
  }

  /** The next whole response, byte for byte. */
  async next(): Promise<Buffer> {
    for (;;) {
      const n = responseLength(this.buf);
      if (n !== undefined) {
        const r = this.buf.subarray(0, n);
        this.buf = this.buf.subarray(n);
        return r;
      }
      if (this.ended) throw new Error(`stream ended with ${this.buf.length} bytes of a partial response`);
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
  }

  /** Bytes received beyond the responses taken. */
  get rest(): number {
    return this.buf.length;
  }
}

/** A chunk-size line; anything else means the bytes are corrupt (fail now rather than wait forever). */
function chunkSize(line: string): number {
  if (!/^[0-9a-f]{1,8}$/i.test(line))
    throw new Error(`corrupt response: chunk size line ${JSON.stringify(line)}`);
  return Number.parseInt(line, 16);
}

/** The length of the whole response at the start of `buf`, or undefined when it is not all there. */
function responseLength(buf: Buffer): number | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const head = buf.toString('latin1', 0, end);
  if (!/^HTTP\/1\.1 \d{3} /.test(head))
    throw new Error(`corrupt response: it starts ${JSON.stringify(head.slice(0, 20))}`);
  const body = end + 4;
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  if (length !== null) {
    const total = body + Number(length[1]);
    return buf.length >= total ? total : undefined;
  }
  if (!/\r\ntransfer-encoding: *chunked/i.test(head)) return body;
  let at = body;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol === -1) return undefined;
    const size = chunkSize(buf.toString('latin1', at, eol));
    if (size === 0) {
      // No trailers: the last chunk is followed by an empty line.
      return buf.length >= eol + 4 ? eol + 4 : undefined;
    }
    at = eol + 2 + size + 2;
    if (buf.length < at) return undefined;
  }
}

/** The body of a raw response, de-chunked when it is chunked. */
function bodyOf(raw: Buffer): Buffer {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.toString('latin1', 0, end);
  const body = raw.subarray(end + 4);
  if (!/\r\ntransfer-encoding: *chunked/i.test(head)) return body;
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    const size = chunkSize(body.toString('latin1', at, eol));
    if (size === 0) return Buffer.concat(parts);
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nhost: web\r\n\r\n`;
const post = (path: string, body: Buffer): Buffer =>
  Buffer.concat([
    Buffer.from(`POST ${path} HTTP/1.1\r\nhost: web\r\ncontent-length: ${body.length}\r\n\r\n`),
    body,
  ]);

/** 50 requests: mostly small ones, one chunked response, one 64 KiB response, one 64 KiB request body. */
const REQUESTS: { request: string | Buffer; body: string | Buffer }[] = Array.from({ length: 50 }, (_, i) => {
  if (i === 7) return { request: get('/chunked'), body: CHUNKS.join('') };
  if (i === 23) return { request: get('/big'), body: BIG };
  if (i === 31)
    return {
      request: post('/echo', BIG),
      body: `${BIG.length} ${createHash('sha256').update(BIG).digest('hex')}`,
    };
  if (i === 40) return { request: get('/empty'), body: '' };
  return { request: get(`/r/${i}`), body: `response for /r/${i}` };
});

/** Sends each request after the previous response, and returns the raw responses. */
async function exchange(conn: Duplex | Socket, requests: readonly (string | Buffer)[]): Promise<Buffer[]> {
  const reader = new ResponseReader(conn);
  const out: Buffer[] = [];
  for (const r of requests) {
    conn.write(r);
    out.push(await reader.next());
  }
  expect(reader.rest).toBe(0);
  return out;
}

async function directConnection(): Promise<Socket> {
  const s = tcpConnect(directPort, '127.0.0.1');
  await once(s, 'connect');
  return s;
}

describe('StreamSocket: node:http over an HTTP/2 CONNECT stream', () => {
  test('50 keep-alive requests on one stream: every response byte-exact, as over TCP', async () => {
    const stream = await openTunnel();
    const viaTunnel = await exchange(
      stream,
      REQUESTS.map((r) => r.request),
    );
    const tcp = await directConnection();
    const viaTcp = await exchange(
      tcp,
      REQUESTS.map((r) => r.request),
    );
    tcp.destroy();
    stream.close();

    expect(viaTunnel).toHaveLength(50);
    viaTunnel.forEach((raw, i) => {
      const status = i === 40 ? 'HTTP/1.1 204 No Content\r\n' : 'HTTP/1.1 200 OK\r\n';
      expect(raw.toString('latin1', 0, status.length), `response ${i}`).toBe(status);
      expect(bodyOf(raw).equals(Buffer.from(REQUESTS[i]!.body)), `body of response ${i}`).toBe(true);
      expect(raw.equals(viaTcp[i]!), `response ${i} as over TCP`).toBe(true);
    });
    expect(viaTunnel[7]!.toString('latin1')).toMatch(/\r\ntransfer-encoding: chunked\r\n/i);
    expect(viaTunnel[23]!.length).toBeGreaterThan(BIG.length);
  });

  test('pipelined requests written at once come back in order, byte-exact', async () => {
    const stream = await openTunnel();
    const reader = new ResponseReader(stream);
    const paths = Array.from({ length: 10 }, (_, i) => (i === 4 ? '/chunked' : i === 6 ? '/big' : `/p/${i}`));
    stream.write(paths.map(get).join(''));
    const got: Buffer[] = [];
    for (let i = 0; i < paths.length; i++) got.push(await reader.next());
    const tcp = await directConnection();
    const want = await exchange(tcp, paths.map(get));
    tcp.destroy();
    stream.close();
    expect(got.map((r) => r.toString('latin1', 0, 17))).toEqual(paths.map(() => 'HTTP/1.1 200 OK\r\n'));
    got.forEach((r, i) => {
      expect(r.equals(want[i]!), `response ${i}`).toBe(true);
    });
  });

  test('the server sees the peer given to the socket', async () => {
    const v6 = { ip: 'fd00:10:244::9', port: 40123 };
    onTunnel = (s) => app.emit('connection', new StreamSocket(s, v6));
    const stream = await openTunnel();
    const [raw] = await exchange(stream, [get('/who')]);
    stream.close();
    expect(bodyOf(raw!).toString()).toBe('fd00:10:244::9 40123 IPv6');
  });

  test('a request for Connection: close ends the stream after its response', async () => {
    const stream = await openTunnel();
    const reader = new ResponseReader(stream);
    stream.write('GET /bye HTTP/1.1\r\nhost: web\r\nconnection: close\r\n\r\n');
    const raw = await reader.next();
    expect(raw.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\nconnection: close\r\n/i);
    expect(bodyOf(raw).toString()).toBe('response for /bye');
    await once(stream, 'end');
    stream.close();
  });
});

describe('StreamSocket: clients over an HTTP/2 CONNECT stream', () => {
  test("undici's Client with a connect that returns a StreamSocket makes 20 requests on it", async () => {
    let connects = 0;
    const client = new Client('http://10.96.0.10:80', {
      connect: (_opts, cb) => {
        connects++;
        openTunnel().then(
          (s) => cb(null, new StreamSocket(s, { ip: '10.96.0.10', port: 80 }) as never),
          (err: Error) => cb(err, null),
        );
      },
    });
    try {
      const bodies: string[] = [];
      for (let i = 0; i < 20; i++) {
        const path = i === 5 ? '/chunked' : i === 12 ? '/big' : `/u/${i}`;
        const res = await client.request({ method: 'GET', path });
        expect(res.statusCode).toBe(200);
        const body = Buffer.from(await res.body.arrayBuffer());
        bodies.push(i === 12 ? (body.equals(BIG) ? 'BIG' : 'corrupt') : body.toString());
      }
      expect(bodies).toEqual(
        Array.from({ length: 20 }, (_, i) =>
          i === 5 ? CHUNKS.join('') : i === 12 ? 'BIG' : `response for /u/${i}`,
        ),
      );
      expect(connects).toBe(1);
    } finally {
      await client.destroy();
    }
  });

  test('http2.performServerHandshake over a StreamSocket serves an h2c client over the CONNECT stream', async () => {
    onTunnel = (s) => {
      const inner = http2.performServerHandshake(new StreamSocket(s, PEER));
      inner.on('stream', (st, headers) => {
        st.respond({ ':status': 200, 'content-type': 'text/plain' });
        st.end(headers[':path'] === '/big' ? BIG : `h2 response for ${headers[':path']}`);
      });
    };
    const stream = await openTunnel();
    const client = http2.connect('http://10.96.0.10:80', {
      createConnection: () => new StreamSocket(stream, { ip: '10.96.0.10', port: 80 }) as never,
    });
    sessions.push(client);
    // Read with listeners, not `for await`: over a session on a non-socket stream node:http2 emits a
    // stream's 'close' before its 'end', which async iteration reports as a premature close.
    const fetch = (path: string): Promise<{ status: unknown; body: Buffer }> =>
      new Promise((resolve, reject) => {
        const req = client.request({ ':path': path });
        const parts: Buffer[] = [];
        let status: unknown;
        req.once('response', (h) => {
          status = h[':status'];
        });
        req.on('data', (c: Buffer) => parts.push(c));
        req.once('end', () => resolve({ status, body: Buffer.concat(parts) }));
        req.once('error', reject);
      });
    const results = await Promise.all(['/a', '/b', '/big', '/c'].map(fetch));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(results[0]!.body.toString()).toBe('h2 response for /a');
    expect(results[1]!.body.toString()).toBe('h2 response for /b');
    expect(results[2]!.body.equals(BIG)).toBe(true);
    expect(results[3]!.body.toString()).toBe('h2 response for /c');
    client.close();
  });
});

/** Two ends of an in-memory pipe: what one writes, the other reads. */
function pipePair(): [Duplex, Duplex] {
  let a: Duplex | undefined;
  let b: Duplex | undefined;
  const make = (peer: () => Duplex | undefined): Duplex =>
    new Duplex({
      read() {},
      write(chunk, _enc, cb) {
        peer()?.push(chunk);
        cb();
      },
      final(cb) {
        peer()?.push(null);
        cb();
      },
    });
  a = make(() => b);
  b = make(() => a);
  return [a, b];
}

describe('StreamSocket: idle timeout', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test("setTimeout emits 'timeout' after that long without traffic, and traffic restarts the wait", async () => {
    vi.useFakeTimers();
    const [inner, far] = pipePair();
    const socket = new StreamSocket(inner, PEER);
    socket.on('data', () => undefined);
    const timeouts = vi.fn();
    socket.on('timeout', timeouts);
    socket.setTimeout(1000);

    vi.advanceTimersByTime(999);
    expect(timeouts).not.toHaveBeenCalled();
    far.write('some bytes in');
    await new Promise((r) => process.nextTick(r));
    vi.advanceTimersByTime(999);
    expect(timeouts).not.toHaveBeenCalled();
    socket.write('some bytes out');
    vi.advanceTimersByTime(999);
    expect(timeouts).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(timeouts).toHaveBeenCalledTimes(1);
    socket.destroy();
  });

  test('the callback given to setTimeout is called on timeout; setTimeout(0) turns it off', async () => {
    vi.useFakeTimers();
    const [inner] = pipePair();
    const socket = new StreamSocket(inner, PEER);
    const cb = vi.fn();
    socket.setTimeout(500, cb);
    vi.advanceTimersByTime(500);
    expect(cb).toHaveBeenCalledTimes(1);

    const off = new StreamSocket(pipePair()[0], PEER);
    const never = vi.fn();
    off.on('timeout', never);
    off.setTimeout(500);
    off.setTimeout(0);
    vi.advanceTimersByTime(5000);
    expect(never).not.toHaveBeenCalled();
    socket.destroy();
    off.destroy();
  });

  test('without setTimeout there is no timeout', () => {
    vi.useFakeTimers();
    const socket = new StreamSocket(pipePair()[0], PEER);
    const never = vi.fn();
    socket.on('timeout', never);
    socket.write('x');
    vi.advanceTimersByTime(60_000);
    expect(never).not.toHaveBeenCalled();
    socket.destroy();
  });
});

describe('StreamSocket: the stream underneath', () => {
  test('bytes given as head come first, then what the stream carries; its end ends the socket', async () => {
    const [inner, far] = pipePair();
    const socket = new StreamSocket(inner, PEER, Buffer.from('HEAD|'));
    far.end('body');
    const parts: Buffer[] = [];
    for await (const c of socket) parts.push(c as Buffer);
    expect(Buffer.concat(parts).toString()).toBe('HEAD|body');
  });

  test('ending the socket ends the stream; destroying it destroys the stream', async () => {
    const [inner, far] = pipePair();
    const socket = new StreamSocket(inner, PEER);
    const got: Buffer[] = [];
    far.on('data', (c: Buffer) => got.push(c));
    socket.end('last words');
    await once(far, 'end');
    expect(Buffer.concat(got).toString()).toBe('last words');
    socket.destroy();
    await once(inner, 'close');
    expect(inner.destroyed).toBe(true);
  });

  test('an error on the stream destroys the socket with it', async () => {
    const [inner] = pipePair();
    const socket = new StreamSocket(inner, PEER);
    const failed = once(socket, 'error');
    inner.destroy(new Error('stream reset'));
    const [err] = (await failed) as [Error];
    expect(err.message).toBe('stream reset');
    expect(socket.destroyed).toBe(true);
  });
});
