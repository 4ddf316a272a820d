/*
 * The load-balancer choice and the passive health check (outlier detection) of a BackendTrafficPolicy,
 * field for field after Envoy Gateway's `loadBalancer` and `healthCheck.passive`, every default applied.
 */

/** Envoy Gateway's default Maglev table size (a prime). */
export const MAGLEV_TABLE_SIZE_DEFAULT = 65537;
/** The largest table Envoy Gateway accepts. */
export const MAGLEV_TABLE_SIZE_MAX = 5000011;

/**
 * What a consistent hash hashes. `SourceIdentity` is Ambit's own: the client's SPIFFE identity as its
 * node proxy proved it on the HBONE connection, so that every replica of a client shares one endpoint
 * (a source IP cannot do that in a mesh, where one node proxy's address carries many pods).
 */
export type HashOn =
  | { readonly type: 'Header'; readonly name: string }
  | {
      readonly type: 'Cookie';
      readonly name: string;
      /** Max-Age of the cookie the waypoint sets when a request has none; unset: none is set. */
      readonly ttlMs?: number;
      readonly attributes: Readonly<Record<string, string>>;
    }
  | { readonly type: 'SourceIP' }
  | { readonly type: 'SourceIdentity' };

export type LoadBalancer =
  | { readonly type: 'RoundRobin' }
  | { readonly type: 'LeastRequest' }
  | { readonly type: 'Random' }
  | { readonly type: 'ConsistentHash'; readonly hashOn: HashOn; readonly tableSize: number };

/** The picker when a policy sets none: least request (Envoy Gateway's default, and Ambit's). */
export const DEFAULT_LOAD_BALANCER: LoadBalancer = { type: 'LeastRequest' };

/** Envoy's `max_ejection_time` default: no ejection lasts longer, however often an endpoint fails. */
export const MAX_EJECTION_TIME_MS = 300_000;

/**
 * Outlier detection (Envoy's `outlier_detection`, Envoy Gateway's `healthCheck.passive`): what makes an
 * endpoint an outlier, and for how long it is left out. A count of 0 turns its detector off.
 */
export interface PassiveHealthCheck {
  /** Consecutive 5xx (and, unless split, local-origin failures) that eject. Default 5. */
  readonly consecutive5xxErrors: number;
  /** Consecutive 502/503/504 (and, unless split, local-origin failures) that eject. Default 0: off. */
  readonly consecutiveGatewayErrors: number;
  /** Consecutive connect failures, resets and timeouts that eject, when split. Default 5. */
  readonly consecutiveLocalOriginFailures: number;
  /** Count the waypoint's own failures (connect, reset, timeout) apart from the endpoint's 5xx. Default false. */
  readonly splitExternalLocalOriginErrors: boolean;
  /** Between two sweeps, which bring endpoints back whose ejection has ended. Default 3s. */
  readonly intervalMs: number;
  /** An ejection lasts this times the endpoint's ejections in a row, up to 300s. Default 30s. */
  readonly baseEjectionTimeMs: number;
  /** At most this share of the endpoints is ejected at once. Default 10. */
  readonly maxEjectionPercent: number;
  /** Eject one endpoint even when that is over maxEjectionPercent (Envoy's always_eject_one_host). Default false. */
  readonly alwaysEjectOneEndpoint: boolean;
  /**
   * `healthCheck.panicThreshold`: when fewer than this share of the endpoints are in service, the
   * ejections are disregarded and all are used (Envoy's panic mode). Default 50, Envoy's; 0: never,
   * and a Service whose endpoints are all ejected gets 503 (flag UH).
   */
  readonly panicThreshold: number;
}

export const PASSIVE_HEALTH_CHECK_DEFAULTS: PassiveHealthCheck = {
  consecutive5xxErrors: 5,
  consecutiveGatewayErrors: 0,
  consecutiveLocalOriginFailures: 5,
  splitExternalLocalOriginErrors: false,
  intervalMs: 3000,
  baseEjectionTimeMs: 30_000,
  maxEjectionPercent: 10,
  alwaysEjectOneEndpoint: false,
  panicThreshold: 50,
};

/**
 * The endpoints picks are made from: those not ejected, unless fewer than `panicThreshold` percent
 * of them are left (then all: Envoy's panic). Empty only when nothing is in service and panic is off.
 */
export function inService<T>(
  endpoints: readonly T[],
  ejected: (e: T) => boolean,
  panicThreshold: number,
): readonly T[] {
  const up = endpoints.filter((e) => !ejected(e));
  if (up.length === endpoints.length) return endpoints;
  return up.length * 100 < panicThreshold * endpoints.length ? endpoints : up;
}

/** Whether n is prime (Maglev needs a prime table size so that every skip visits every slot). */
export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}
