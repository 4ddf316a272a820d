import { ErrorCode } from '../errors.js';

/** Response flags: Envoy's where Envoy has one, ztunnel's for HBONE failures. */
export const ResponseFlag = {
  None: '-',
  /** No route: nothing in the mesh serves this address and port. */
  NoRoute: 'NR',
  /** No healthy upstream: the service has no ready endpoint. */
  NoHealthyUpstream: 'UH',
  /** Upstream connection failure. */
  UpstreamFailure: 'UF',
  /** Denied by authorization policy. */
  Denied: 'DENY',
  /** The HBONE tunnel could not be opened. */
  Connect: 'CONNECT',
  /** The TLS handshake failed (certificate refused, peer closed). */
  TlsFailure: 'TLS_FAILURE',
  /** A peer proved the wrong identity, or the source pod could not be told. */
  IdentityError: 'IDENTITY_ERROR',
  H2HandshakeFailure: 'H2_HANDSHAKE_FAILURE',
} as const;
export type ResponseFlag = (typeof ResponseFlag)[keyof typeof ResponseFlag];

/**
 * Every way an L4 connection can end other than success, on either proxy. Each has exactly one row in
 * OUTCOMES; nothing else maps outcomes to flags, statuses or codes.
 */
export type Outcome =
  | 'no-config'
  | 'no-route'
  | 'no-healthy-upstream'
  | 'not-redirected'
  | 'unknown-source'
  | 'wrong-destination-identity'
  | 'denied'
  | 'upstream-failure'
  | 'tunnel-refused'
  | 'tunnel-failure'
  | 'tls-failure'
  | 'peer-identity-error';

export interface OutcomeInfo {
  readonly flag: ResponseFlag;
  /** The `:status` the HBONE server answers a CONNECT with, for outcomes decided there. */
  readonly hboneStatus: number;
  readonly code: ErrorCode;
  /** What the other side of an HBONE tunnel makes of `hboneStatus` (one outcome per status). */
  readonly seenByClientAs?: Outcome;
}

export const OUTCOMES: Readonly<Record<Outcome, OutcomeInfo>> = {
  /** The proxy has had no config from the control plane yet. */
  'no-config': { flag: ResponseFlag.NoRoute, hboneStatus: 503, code: ErrorCode.NO_ROUTE },
  /** Nothing in the mesh serves the destination (a VIP port the Service lacks, a pod not on this node). */
  'no-route': {
    flag: ResponseFlag.NoRoute,
    hboneStatus: 400,
    code: ErrorCode.NO_ROUTE,
    seenByClientAs: 'tunnel-refused',
  },
  'no-healthy-upstream': { flag: ResponseFlag.NoHealthyUpstream, hboneStatus: 503, code: ErrorCode.NO_ROUTE },
  /** A connection reached the outbound listener without an original destination (a loop, or a direct dial). */
  'not-redirected': { flag: ResponseFlag.NoRoute, hboneStatus: 400, code: ErrorCode.NO_ROUTE },
  /** The proxy cannot tell which pod made a connection, so it has no identity to present. */
  'unknown-source': { flag: ResponseFlag.IdentityError, hboneStatus: 400, code: ErrorCode.IDENTITY },
  /** The CONNECT names a workload whose identity is not the one the TLS connection was made for. */
  'wrong-destination-identity': { flag: ResponseFlag.NoRoute, hboneStatus: 400, code: ErrorCode.IDENTITY },
  denied: {
    flag: ResponseFlag.Denied,
    hboneStatus: 401,
    code: ErrorCode.POLICY_DENIED,
    seenByClientAs: 'denied',
  },
  'upstream-failure': {
    flag: ResponseFlag.UpstreamFailure,
    hboneStatus: 503,
    code: ErrorCode.UPSTREAM_CONNECT,
    seenByClientAs: 'upstream-failure',
  },
  /** The HBONE server refused the CONNECT for a reason of its own (a client-side view). */
  'tunnel-refused': { flag: ResponseFlag.Connect, hboneStatus: 400, code: ErrorCode.HBONE },
  /** The tunnel could not be opened or broke (TCP refused, stream reset, GOAWAY). */
  'tunnel-failure': { flag: ResponseFlag.Connect, hboneStatus: 502, code: ErrorCode.HBONE },
  'tls-failure': { flag: ResponseFlag.TlsFailure, hboneStatus: 502, code: ErrorCode.CERTIFICATE },
  /** A peer presented a certificate with the wrong identity (either direction). */
  'peer-identity-error': { flag: ResponseFlag.IdentityError, hboneStatus: 502, code: ErrorCode.IDENTITY },
};

export function outcomeInfo(o: Outcome): OutcomeInfo {
  return OUTCOMES[o];
}

/**
 * What an HBONE client makes of the server's answer: the outcome whose status it is and that says how
 * the client sees it; any other non-200 status is a refusal.
 */
export function outcomeOfHboneStatus(status: number): Outcome {
  for (const info of Object.values(OUTCOMES)) {
    if (info.hboneStatus === status && info.seenByClientAs !== undefined) return info.seenByClientAs;
  }
  return 'tunnel-refused';
}

/**
 * The error codes OpenSSL (through Node) gives a failed handshake or a refused certificate. Node
 * reports handshake alerts and protocol errors as `ERR_SSL_*`, its own checks as `ERR_TLS_*`, and
 * certificate verification by the X.509 verify result name.
 */
const X509_VERIFY_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
]);

/**
 * Sorts a failure to open a TLS transport by its error code, never by message text: a TLS failure
 * (handshake alert, certificate refused either way) or a failure to reach the peer at all.
 */
export function classifyTransportError(err: unknown): 'tls-failure' | 'tunnel-failure' {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return 'tunnel-failure';
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || X509_VERIFY_CODES.has(code))
    return 'tls-failure';
  return 'tunnel-failure';
}
