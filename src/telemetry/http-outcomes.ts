/*
 * How a waypoint request can fail, in one table: the status the client gets, Envoy's response flag
 * (what Istio's dashboards and `response_flags` label show), and the gRPC status a gRPC client gets
 * instead. Nothing else maps failures to statuses or flags (the "rescue" of linkerd's HttpRescue).
 */

export type HttpFailure =
  /** Routes are attached to the Service but none matches the request. */
  | 'no-route'
  /** The chosen backend does not exist (a backendRef to a missing Service), or the rule has none. */
  | 'no-backend'
  /** The backend has no ready endpoint. */
  | 'no-healthy-upstream'
  /** A local rate limit of the backend's BackendTrafficPolicy has no token left for the request. */
  | 'rate-limited'
  /** A circuit breaker of the backend's BackendTrafficPolicy is open (a limit is reached). */
  | 'upstream-overflow'
  /** No connection or stream to the endpoint could be opened. */
  | 'upstream-connect-failure'
  /** The connection to the endpoint broke before a whole response. */
  | 'upstream-reset'
  /** `timeouts.request` or `timeouts.backendRequest` expired. */
  | 'upstream-timeout'
  /** The client went away before the response was complete. */
  | 'downstream-reset'
  /** The request is not one the waypoint can carry (bad headers, too large). */
  | 'bad-request'
  /** An AuthorizationPolicy at the waypoint denied the request. */
  | 'rbac-denied'
  /** The waypoint failed on its own (a bug, or an upstream answer it cannot pass on). */
  | 'internal';

export interface HttpFailureInfo {
  readonly status: number;
  readonly flag: string;
  readonly message: string;
}

export const HTTP_FAILURES: Readonly<Record<HttpFailure, HttpFailureInfo>> = {
  'no-route': { status: 404, flag: 'NR', message: 'no route matches this request' },
  'no-backend': { status: 500, flag: 'NC', message: 'the route has no backend that exists' },
  'no-healthy-upstream': { status: 503, flag: 'UH', message: 'no healthy upstream' },
  /** Envoy's local_ratelimit answer (its body text; gRPC clients get UNAVAILABLE, as Envoy maps 429). */
  'rate-limited': { status: 429, flag: 'RL', message: 'local_rate_limited' },
  'upstream-overflow': { status: 503, flag: 'UO', message: 'upstream overflow (circuit breaker open)' },
  'upstream-connect-failure': { status: 503, flag: 'UF', message: 'upstream connect error' },
  'upstream-reset': { status: 503, flag: 'UC', message: 'upstream connection terminated' },
  'upstream-timeout': { status: 504, flag: 'UT', message: 'upstream request timeout' },
  'downstream-reset': { status: 499, flag: 'DC', message: 'downstream connection terminated' },
  'bad-request': { status: 400, flag: 'DPE', message: 'bad request' },
  /** Envoy's RBAC filter answers with this body; the flag is Ambit's (Envoy records rbac_access_denied as details). */
  'rbac-denied': { status: 403, flag: 'RBAC', message: 'RBAC: access denied' },
  /** Ambit's own flag (Envoy has none for this): look for the error in the waypoint's log. */
  internal: { status: 500, flag: 'IE', message: 'internal error in the waypoint' },
};

/** Envoy's flags for an injected abort and an injected delay (BackendTrafficPolicy faultInjection). */
export const FAULT_ABORT_FLAG = 'FI';
export const FAULT_DELAY_FLAG = 'DI';

/** The flag Envoy adds when the retries ran out on a retriable outcome. */
export const RETRY_LIMIT_FLAG = 'URX';

/** gRPC status codes (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  OK: 0,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  INTERNAL: 13,
  UNIMPLEMENTED: 12,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/**
 * The gRPC status for an HTTP status the waypoint answers itself (grpc/doc/http-grpc-status-mapping.md,
 * as Envoy maps local replies for gRPC clients).
 */
export function grpcStatusOfHttp(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}
