import { Duplex } from 'node:stream';

/**
 * A plain Duplex that stands in for a socket over any other stream (an HTTP/2 CONNECT stream of an
 * HBONE tunnel), so that `http.Server`, `http2` and undici can speak HTTP over it as over TCP.
 *
 * Handing the HTTP/2 stream itself to `http.Server` (`emit('connection', stream)`) corrupted the first
 * bytes of every response on Node 20 in three runs of three (measured before this project moved to
 * Node 24, where the raw stream no longer shows it); a separate Duplex that forwards bytes keeps the
 * two stream implementations apart either way, and test/unit/stream-socket.test.ts checks that HTTP
 * over it stays byte-exact. It has what those servers and clients ask of a socket: addresses, an
 * idle timeout, and no-op Nagle, keep-alive and ref controls. Writes that arrive together (a response
 * head and its body) leave as one write: one DATA frame and one TLS record, not two.
 */
export class StreamSocket extends Duplex {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly remoteFamily: string;
  readonly localAddress = '0.0.0.0';
  readonly localPort = 0;
  /**
   * Left undefined, as on a plain TCP socket: node:http2's server reads `false` as "a TLS client that
   * chose HTTP/1.1" and refuses the connection; undici reads it to choose HTTP/1.1 or HTTP/2.
   */
  alpnProtocol: string | undefined = undefined;
  private idleMs = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private lastActivity = 0;

  constructor(
    private readonly inner: Duplex,
    peer: { readonly ip: string; readonly port: number },
    head?: Buffer,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: 1 << 20, writableHighWaterMark: 1 << 20 });
    this.remoteAddress = peer.ip;
    this.remotePort = peer.port;
    this.remoteFamily = peer.ip.includes(':') ? 'IPv6' : 'IPv4';
    if (head !== undefined && head.length > 0) this.push(head);
    inner.on('data', (chunk: Buffer) => {
      this.lastActivity = Date.now();
      if (!this.push(chunk)) inner.pause();
    });
    inner.once('end', () => this.push(null));
    inner.once('error', (err) => this.destroy(err));
    // The stream underneath is gone: nothing more can be written. What was read is still delivered
    // (the readable side ends first, then this closes); what waits to be written fails.
    inner.once('close', () => {
      if (this.destroyed) return;
      if (this.readableEnded || this.readableLength === 0) this.destroy();
      else this.once('end', () => this.destroy());
    });
    inner.on('drain', () => this.emit('innerDrain'));
  }

  override _read(): void {
    this.inner.resume();
  }

  private send(data: Buffer, cb: (err?: Error | null) => void): void {
    if (this.inner.destroyed || this.inner.writableEnded) {
      cb(new Error('the stream under this connection has closed'));
      return;
    }
    this.lastActivity = Date.now();
    if (this.inner.write(data)) cb();
    else {
      const onClose = (): void => cb(new Error('the stream under this connection has closed'));
      this.inner.once('close', onClose);
      this.once('innerDrain', () => {
        this.inner.off('close', onClose);
        cb();
      });
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.send(chunk, cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.send(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.inner.destroyed || this.inner.writableEnded) cb();
    else this.inner.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    clearTimeout(this.idleTimer);
    // The stream underneath goes with this connection (an HTTP/2 stream is reset unless it already ended).
    if (!this.inner.destroyed) this.inner.destroy(err ?? undefined);
    cb(err);
  }

  /** `net.Socket#setTimeout`: 'timeout' after that long without traffic (0 turns it off). */
  setTimeout(ms: number, cb?: () => void): this {
    this.idleMs = ms;
    if (cb !== undefined) this.once('timeout', cb);
    clearTimeout(this.idleTimer);
    if (ms > 0) {
      this.lastActivity = Date.now();
      this.armIdle(ms);
    }
    return this;
  }

  /** One timer per idle period (not one per chunk): it re-arms for the time left since the last traffic. */
  private armIdle(delay: number): void {
    this.idleTimer = setTimeout(() => {
      if (this.idleMs === 0 || this.destroyed) return;
      const idle = Date.now() - this.lastActivity;
      if (idle >= this.idleMs) this.emit('timeout');
      else this.armIdle(this.idleMs - idle);
    }, delay);
    this.idleTimer.unref();
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  destroySoon(): void {
    this.end();
  }
}
