import type { RouteRetry, RouteTimeouts } from '../gateway-api/types.js';

/*
 * Retries and timeouts of a waypoint request, decided from the route rule alone (Gateway API's
 * `retry` and `timeouts`, GEP-1731 and GEP-1742), with Ambit's defaults where the route is silent.
 */

/** A request body up to this size is kept so that it can be sent again; a bigger one is never retried (Linkerd's bound). */
export const RETRY_BODY_LIMIT = 64 * 1024;
/** Attempts after the first when a `retry` stanza gives none (Istio's default is 2 as well). */
export const DEFAULT_RETRY_ATTEMPTS = 2;
/** Back-off base when the stanza gives none (Envoy's default base interval). */
export const DEFAULT_BACKOFF_MS = 25;

export interface RetryPolicy {
  /** Attempts after the first. */
  readonly retries: number;
  /** Response codes that are retried. */
  readonly codes: ReadonlySet<number>;
  /** Whether an attempt whose connection broke after the request was sent is retried. */
  readonly resets: boolean;
  /** The least wait between attempts. */
  readonly backoffMs: number;
  /** Where the policy comes from, for `explain` and the access log. */
  readonly source: 'route' | 'default';
}

/**
 * Without a `retry` stanza a request is retried only when it never reached a backend (the connection
 * or stream could not be opened): that is always safe, and it hides an endpoint that just went away
 * (Istio's default retries connect failures and refused streams twice). With a stanza: its codes,
 * its attempts (default 2), its back-off, and connection errors after the request was sent, which the
 * spec says should be retriable. gRPC routes have no stanza in Gateway API: they get the default.
 */
export function retryPolicyOf(retry: RouteRetry | undefined): RetryPolicy {
  if (retry === undefined)
    return {
      retries: DEFAULT_RETRY_ATTEMPTS,
      codes: new Set(),
      resets: false,
      backoffMs: DEFAULT_BACKOFF_MS,
      source: 'default',
    };
  return {
    retries: retry.attempts ?? DEFAULT_RETRY_ATTEMPTS,
    codes: new Set(retry.codes),
    resets: true,
    backoffMs: retry.backoffMs ?? DEFAULT_BACKOFF_MS,
    source: 'route',
  };
}

/** How one attempt ended. */
export type AttemptResult =
  | { readonly kind: 'response'; readonly status: number }
  /** The request was never sent: no connection or stream to the endpoint. */
  | { readonly kind: 'connect-failure' }
  /** The request (or part of it) was sent, then the connection broke before a response. */
  | { readonly kind: 'reset' }
  /** `backendRequest` expired before a response. */
  | { readonly kind: 'attempt-timeout' };

/**
 * Whether to make another attempt after `made` attempts, the last of which ended with `result`. A body
 * that was not kept (too big, or still streaming) can only be resent when it was never sent at all.
 */
export function shouldRetry(
  p: RetryPolicy,
  made: number,
  result: AttemptResult,
  body: 'none' | 'kept' | 'streamed',
): boolean {
  if (made > p.retries) return false;
  switch (result.kind) {
    case 'connect-failure':
      return body !== 'streamed';
    case 'reset':
      return p.resets && body !== 'streamed';
    case 'attempt-timeout':
      return p.codes.has(504) && body !== 'streamed';
    case 'response':
      return p.codes.has(result.status) && body !== 'streamed';
  }
}

/**
 * The wait before retry number `n` (1 for the first retry): exponential from the back-off, with
 * jitter above it (never less than the back-off, which Gateway API calls a minimum), capped at ten
 * times the back-off as Envoy caps it.
 */
export function retryDelayMs(p: RetryPolicy, n: number, random: () => number): number {
  const base = p.backoffMs;
  const exp = base * 2 ** Math.min(n - 1, 10);
  return Math.min(exp + Math.floor(random() * base), base * 10);
}

export interface RequestTimeouts {
  /** Bounds the whole request, every attempt and wait included. */
  readonly requestMs?: number;
  /** Bounds each attempt. */
  readonly attemptMs?: number;
}

/** Gateway API timeouts, `0s` meaning none; without them a request has no deadline (as in Istio). */
export function timeoutsOf(t: RouteTimeouts | undefined): RequestTimeouts {
  const some = (ms: number | undefined): number | undefined =>
    ms === undefined || ms === 0 ? undefined : ms;
  const requestMs = some(t?.requestMs);
  const attemptMs = some(t?.backendRequestMs);
  return {
    ...(requestMs === undefined ? {} : { requestMs }),
    ...(attemptMs === undefined ? {} : { attemptMs }),
  };
}
