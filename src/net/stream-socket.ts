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
 * idle timeout, and no-op Nagle, keep-alive and ref controls.
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
      this.touch();
      if (!this.push(chunk)) inner.pause();
    });
    inner.once('end', () => this.push(null));
    inner.once('error', (err) => this.destroy(err));
    inner.once('close', () => {
      if (!this.destroyed && !this.readableEnded) this.destroy();
    });
    inner.on('drain', () => this.emit('innerDrain'));
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.touch();
    if (this.inner.write(chunk)) cb();
    else this.once('innerDrain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.inner.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    clearTimeout(this.idleTimer);
    if (!this.inner.destroyed) {
      // An HTTP/2 stream that is merely ended stays open for the peer's half; a destroyed socket is done.
      if (err === null && this.inner.writableEnded) this.inner.destroy();
      else this.inner.destroy(err ?? undefined);
    }
    cb(err);
  }

  private touch(): void {
    if (this.idleMs === 0) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.emit('timeout'), this.idleMs);
    this.idleTimer.unref();
  }

  /** `net.Socket#setTimeout`: 'timeout' after that long without traffic (0 turns it off). */
  setTimeout(ms: number, cb?: () => void): this {
    this.idleMs = ms;
    if (cb !== undefined) this.once('timeout', cb);
    if (ms === 0) clearTimeout(this.idleTimer);
    else this.touch();
    return this;
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
