import { type ClientHttp2Session, type ClientHttp2Stream, connect as h2connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { type PeerCertificate, connect as tlsConnect } from 'node:tls';
import { AmbitError } from '../errors.js';
import { uriSans } from '../identity/peer-identity.js';
import { type IssuedCert, TLS_OPTIONS } from '../identity/workload-certs.js';
import { hostPort } from '../net/ip.js';
import type { Logger } from '../telemetry/logger.js';
import {
  classifyTransportError,
  type Outcome,
  outcomeInfo,
  outcomeOfHboneStatus,
} from '../telemetry/outcomes.js';
import {
  H2_CLIENT_MAX_STREAMS,
  H2_CONNECTION_WINDOW,
  H2_MAX_SESSION_MEMORY,
  H2_SETTINGS,
  sniFor,
} from './protocol.js';

/** Where a tunnel goes and as whom. */
export interface HboneDial {
  readonly ip: string;
  readonly port: number;
  readonly srcIdentity: string;
  /** The identity the server must prove: the destination workload's. */
  readonly dstIdentity: string;
}

/** A tunnel that could not be opened: why, in the outcome table's terms (and so its response flag). */
export class HboneError extends AmbitError {
  constructor(
    readonly outcome: Outcome,
    message: string,
    readonly status?: number,
    cause?: unknown,
  ) {
    super(outcomeInfo(outcome).code, message, { cause });
  }

  get flag(): string {
    return outcomeInfo(this.outcome).flag;
  }
}

interface PooledSession {
  readonly session: ClientHttp2Session;
  readonly generation: number;
  streams: number;
  idleTimer?: NodeJS.Timeout;
  ready: Promise<void>;
}

export interface HbonePoolOptions {
  /** The source workload's current certificate (fetched if needed). */
  readonly cert: (identity: string) => Promise<IssuedCert>;
  readonly log: Logger;
  readonly idleMs?: number;
  readonly maxStreams?: number;
}

const IDLE_MS = 5 * 60_000;
/** How long a new HBONE connection may take (TCP, TLS 1.3 and the HTTP/2 preface). */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * HBONE client connections, pooled per (source identity, destination node address, destination
 * identity): each is one TLS 1.3 + HTTP/2 connection carrying many CONNECT streams, so a new
 * application connection costs a stream, not a handshake. A connection made with a certificate that
 * has since been renewed takes no new streams and closes when its last stream ends.
 */
export class HbonePool {
  private readonly pools = new Map<string, PooledSession[]>();
  private readonly maxStreams: number;
  private readonly idleMs: number;

  constructor(private readonly o: HbonePoolOptions) {
    this.maxStreams = o.maxStreams ?? H2_CLIENT_MAX_STREAMS;
    this.idleMs = o.idleMs ?? IDLE_MS;
  }

  /** Opens a CONNECT stream to `authority` and resolves once the server answered 200. */
  async open(
    dial: HboneDial,
    authority: string,
    headers: Record<string, string>,
  ): Promise<ClientHttp2Stream> {
    const cert = await this.o.cert(dial.srcIdentity);
    const pooled = await this.session(dial, cert);
    pooled.streams++;
    clearTimeout(pooled.idleTimer);
    const stream = pooled.session.request(
      { ':method': 'CONNECT', ':authority': authority, ...headers },
      { endStream: false },
    );
    const release = (): void => {
      pooled.streams--;
      if (pooled.streams === 0) this.idle(dial, pooled, cert.generation);
    };
    stream.once('close', release);
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void =>
        reject(
          new HboneError(
            'tunnel-failure',
            `HBONE stream to ${authority} via ${hostPort(dial.ip, dial.port)} failed: ${err.message}`,
            undefined,
            err,
          ),
        );
      stream.once('error', onError);
      stream.once('response', (h) => {
        const status = Number(h[':status']);
        if (status === 200) {
          stream.off('error', onError);
          resolve(stream);
          return;
        }
        stream.close();
        reject(
          new HboneError(
            outcomeOfHboneStatus(status),
            `${hostPort(dial.ip, dial.port)} answered ${status} for ${authority}`,
            status,
          ),
        );
      });
    });
  }

  private key(d: HboneDial): string {
    return `${d.srcIdentity}|${d.dstIdentity}|${hostPort(d.ip, d.port)}`;
  }

  private async session(dial: HboneDial, cert: IssuedCert): Promise<PooledSession> {
    const key = this.key(dial);
    const list = this.pools.get(key) ?? [];
    this.pools.set(key, list);
    const usable = list.find(
      (p) =>
        p.generation === cert.generation &&
        p.streams < this.maxStreams &&
        !p.session.closed &&
        !p.session.destroyed,
    );
    if (usable !== undefined) {
      await usable.ready;
      return usable;
    }
    const pooled = this.dialSession(dial, cert, key);
    list.push(pooled);
    try {
      await pooled.ready;
    } catch (err) {
      this.remove(key, pooled);
      throw err;
    }
    // Sessions made with an older certificate drain: no new streams, closed when idle.
    for (const p of list) if (p.generation !== cert.generation && p.streams === 0) p.session.close();
    return pooled;
  }

  private dialSession(dial: HboneDial, cert: IssuedCert, key: string): PooledSession {
    const where = hostPort(dial.ip, dial.port);
    let identityError: HboneError | undefined;
    const session = h2connect(`https://${where}`, {
      settings: H2_SETTINGS,
      maxSessionMemory: H2_MAX_SESSION_MEMORY,
      peerMaxConcurrentStreams: this.maxStreams,
      createConnection: () =>
        tlsConnect({
          // TCP_NODELAY on the raw socket: HBONE carries interactive traffic.
          socket: netConnect({ host: dial.ip, port: dial.port, noDelay: true }),
          secureContext: cert.context,
          servername: sniFor(dial.dstIdentity),
          ALPNProtocols: ['h2'],
          ...TLS_OPTIONS,
          checkServerIdentity: (_host: string, peer: PeerCertificate) => {
            const uris = uriSans(peer);
            if (uris.length === 1 && uris[0] === dial.dstIdentity) return undefined;
            identityError = new HboneError(
              'peer-identity-error',
              `${where} presented ${uris.join(', ') || 'no URI SAN'}, not the destination identity ${dial.dstIdentity}`,
            );
            return identityError;
          },
        }),
    });
    const pooled: PooledSession = {
      session,
      generation: cert.generation,
      streams: 0,
      ready: new Promise((resolve, reject) => {
        // A peer that never answers (a node gone, a black hole) fails the dial instead of holding it.
        const timer = setTimeout(
          () =>
            session.destroy(new Error(`no TLS and HTTP/2 handshake within ${CONNECT_TIMEOUT_MS / 1000}s`)),
          CONNECT_TIMEOUT_MS,
        );
        timer.unref();
        session.once('close', () => clearTimeout(timer));
        session.once('connect', () => {
          clearTimeout(timer);
          session.setLocalWindowSize(H2_CONNECTION_WINDOW);
          resolve();
        });
        session.once('error', (err: NodeJS.ErrnoException) => {
          if (identityError !== undefined) return reject(identityError);
          reject(
            new HboneError(
              classifyTransportError(err),
              `HBONE connect to ${where} failed: ${err.message}${err.code === 'ECONNREFUSED' ? ' (is the node proxy running there?)' : ''}`,
              undefined,
              err,
            ),
          );
        });
      }),
    };
    pooled.ready.catch(() => undefined);
    session.on('error', (err) => this.o.log.debug({ peer: where, err: err.message }, 'HBONE session error'));
    session.once('close', () => this.remove(key, pooled));
    session.once('goaway', () => this.remove(key, pooled));
    return pooled;
  }

  private idle(dial: HboneDial, pooled: PooledSession, generation: number): void {
    const current = this.pools.get(this.key(dial));
    if (pooled.generation !== generation || current === undefined) return;
    pooled.idleTimer = setTimeout(() => {
      if (pooled.streams === 0) pooled.session.close();
    }, this.idleMs);
    pooled.idleTimer.unref();
  }

  private remove(key: string, pooled: PooledSession): void {
    const list = this.pools.get(key);
    if (list === undefined) return;
    const i = list.indexOf(pooled);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.pools.delete(key);
  }

  /** Open tunnels and their streams, for `ambit proxy-config` and metrics. */
  stats(): { key: string; streams: number; generation: number }[] {
    return [...this.pools].flatMap(([key, list]) =>
      list.map((p) => ({ key, streams: p.streams, generation: p.generation })),
    );
  }

  close(): void {
    for (const list of this.pools.values()) for (const p of list) p.session.close();
    this.pools.clear();
  }
}
