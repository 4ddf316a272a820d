import {
  createSecureServer,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import { AmbitError, describeError, ErrorCode } from '../errors.js';
import { peerIdentity } from '../identity/peer-identity.js';
import type { SpiffeId } from '../identity/spiffe-id.js';
import { TLS_OPTIONS } from '../identity/workload-certs.js';
import { canonicalIp } from '../net/ip.js';
import type { Logger } from '../telemetry/logger.js';
import {
  H2_CONNECTION_WINDOW,
  H2_MAX_SESSION_MEMORY,
  H2_SERVER_MAX_STREAMS,
  H2_SETTINGS,
  parseAuthority,
  parseForwardedFor,
} from './protocol.js';

/** One HBONE CONNECT, after TLS verified the client. */
export interface HboneRequest {
  readonly authority: string;
  /** The authority as an address, or undefined when it is not `ip:port`. */
  readonly target: { readonly ip: string; readonly port: number } | undefined;
  /** The client's verified workload identity. */
  readonly peer: SpiffeId;
  /** The identity this connection's server certificate carries (chosen by SNI). */
  readonly serverIdentity: string;
  /** The TLS peer: the client's node proxy. */
  readonly tlsPeer: { readonly ip: string; readonly port: number };
  /** The original client, from the `forwarded` header. */
  readonly forwardedFor: { readonly ip: string; readonly port: number } | undefined;
  readonly headers: IncomingHttpHeaders;
}

export interface ServerCert {
  readonly context: SecureContext;
  readonly identity: string;
}

export interface HboneServerOptions {
  readonly trustDomain: string;
  /** Trust bundle: client certificates must chain to it. */
  readonly bundle: () => readonly string[];
  /**
   * The certificate context and identity for a server name, or undefined to refuse the handshake. It
   * may wait (a workload's certificate that is still being issued): the handshake waits with it, up to
   * the handshake timeout, so that the first connection to a new pod does not fail.
   */
  readonly serverFor: (sni: string | undefined) => ServerCert | undefined | Promise<ServerCert | undefined>;
  readonly onRequest: (req: HboneRequest, stream: ServerHttp2Stream) => void;
  readonly log: Logger;
  /**
   * A client that has not finished the TLS handshake by then is dropped (and reported as refused), so
   * slow or silent clients cannot hold sockets. Default 10 s (Node's own default is 120 s).
   */
  readonly handshakeTimeoutMs?: number;
  /** Each refused handshake, for metrics: why, as an outcome of the outcome table. */
  readonly onRefused?: (outcome: 'tls-failure' | 'peer-identity-error', peer: string, reason: string) => void;
}

/** A client certificate the server refused (as opposed to a certificate with the wrong identity). */
class HboneAuthError extends AmbitError {
  constructor(message: string) {
    super(ErrorCode.CERTIFICATE, message);
  }
}

const CERT_HINTS: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED: ' (the client certificate has expired)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: ' (not issued by a CA in the trust bundle)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: ' (not issued by a CA in the trust bundle)',
  SELF_SIGNED_CERT_IN_CHAIN: ' (the chain ends in a root that is not in the trust bundle)',
  CERT_NOT_YET_VALID: ' (the client certificate is not valid yet: clock skew?)',
};

// Per HTTP/2 session: the client's verified identity and the identity we presented. (A session's
// \`socket\` is a proxy object, not the TLSSocket the server saw, so the session is the key.)
const identities = new WeakMap<Http2Session, { peer: SpiffeId; server: string }>();

/**
 * The HBONE server: TLS 1.3 with a client certificate required and verified against the trust bundle,
 * then the client's SPIFFE id checked (one URI SAN, our trust domain); ALPN h2 only; HTTP/2 CONNECT
 * streams handed to `onRequest`. A bad method or authority gets 400 here.
 */
export function createHboneServer(o: HboneServerOptions) {
  const presented = new Map<string, string>();
  const server = createSecureServer({
    ...TLS_OPTIONS,
    ca: o.bundle().join(''),
    requestCert: true,
    // The chain is verified by OpenSSL against the bundle either way; deciding here (instead of letting
    // OpenSSL abort the handshake) is what lets the log say why a client was refused.
    rejectUnauthorized: false,
    ALPNProtocols: ['h2'],
    allowHTTP1: false,
    handshakeTimeout: o.handshakeTimeoutMs ?? 10_000,
    settings: { ...H2_SETTINGS, maxConcurrentStreams: H2_SERVER_MAX_STREAMS },
    maxSessionMemory: H2_MAX_SESSION_MEMORY,
    SNICallback: (name, cb) => {
      const refuse = (why: string): void => cb(new Error(why), null as unknown as SecureContext);
      Promise.resolve(o.serverFor(name === '' ? undefined : name)).then(
        (s) => {
          if (s === undefined)
            refuse(`no workload on this node answers to server name ${JSON.stringify(name)}`);
          else {
            // A server name is a hash of one identity, so what it was answered with never changes.
            presented.set(name, s.identity);
            cb(null, s.context);
          }
        },
        (err: unknown) =>
          refuse(`no certificate for server name ${JSON.stringify(name)}: ${describeError(err)}`),
      );
    },
  });
  // The TLS socket has lost its address by the time a handshake times out, so the peer is taken from
  // the TCP connection when it arrives. (Node links the two only through the TLS socket's `_parent`.)
  const tcpPeers = new WeakMap<object, string>();
  server.on('connection', (tcp: Socket) => {
    tcpPeers.set(tcp, `${tcp.remoteAddress}:${tcp.remotePort}`);
  });
  server.on('tlsClientError', (err, socket) => {
    const parent = (socket as unknown as { _parent?: object })._parent;
    const peer =
      socket.remoteAddress !== undefined
        ? `${socket.remoteAddress}:${socket.remotePort}`
        : ((parent === undefined ? undefined : tcpPeers.get(parent)) ?? 'an unknown peer');
    o.onRefused?.('tls-failure', peer, err.message);
    o.log.warn({ peer, reason: err.message }, 'HBONE handshake refused');
  });
  const identify = (socket: TLSSocket): { peer: SpiffeId; server: string } => {
    const name = `HBONE client ${socket.remoteAddress}:${socket.remotePort}`;
    if (!socket.authorized) {
      const why = String(socket.authorizationError ?? 'no client certificate');
      throw new HboneAuthError(`${name}: certificate refused: ${why}${CERT_HINTS[why] ?? ''}`);
    }
    const peer = peerIdentity(socket, o.trustDomain, name);
    // The identity we presented: the one the SNI callback chose for this connection's server name.
    const servername = (socket as TLSSocket & { servername?: string | false }).servername;
    return { peer, server: (typeof servername === 'string' ? presented.get(servername) : undefined) ?? '' };
  };
  // Check the client as soon as the handshake is done, so that a bad identity never gets a stream.
  server.on('secureConnection', (socket: TLSSocket) => {
    try {
      identify(socket);
    } catch (err) {
      const peerName = `${socket.remoteAddress}:${socket.remotePort}`;
      o.onRefused?.(
        err instanceof HboneAuthError ? 'tls-failure' : 'peer-identity-error',
        peerName,
        describeError(err),
      );
      o.log.warn({ peer: peerName, reason: describeError(err) }, 'HBONE client refused');
      socket.destroy();
    }
  });
  server.on('session', (session: Http2Session) => {
    session.setLocalWindowSize(H2_CONNECTION_WINDOW);
    const socket = session.socket;
    const peer = `${socket?.remoteAddress}:${socket?.remotePort}`;
    // A protocol error (bad frames, oversized or undecodable headers) ends this session only.
    session.on('error', (err) => o.log.warn({ peer, reason: err.message }, 'HBONE session failed'));
    session.on('goaway', (code: number) => {
      if (code !== 0)
        o.log.warn({ peer, reason: `the client sent GOAWAY with code ${code}` }, 'HBONE session failed');
    });
    session.on('frameError', (type: number, code: number) =>
      o.log.warn({ peer, reason: `frame of type ${type} failed with code ${code}` }, 'HBONE frame refused'),
    );
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on('error', () => undefined);
    const session = stream.session;
    const socket = session?.socket as TLSSocket | undefined;
    if (session === undefined || socket === undefined) {
      stream.close();
      return;
    }
    let ids = identities.get(session);
    if (ids === undefined) {
      try {
        ids = identify(socket);
      } catch {
        stream.close();
        return;
      }
      identities.set(session, ids);
    }
    if (headers[':method'] !== 'CONNECT') {
      stream.respond({ ':status': 400 }, { endStream: true });
      return;
    }
    const authority = headers[':authority'] ?? '';
    const target = parseAuthority(authority);
    if (target === undefined) {
      stream.respond({ ':status': 400 }, { endStream: true });
      return;
    }
    o.onRequest(
      {
        authority,
        target: { ip: canonicalIp(target.ip), port: target.port },
        peer: ids.peer,
        serverIdentity: ids.server,
        tlsPeer: { ip: canonicalIp(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 },
        forwardedFor: parseForwardedFor(headers.forwarded),
        headers,
      },
      stream,
    );
  });
  return server;
}
