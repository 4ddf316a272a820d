import type { CircuitBreaker } from './types.js';

/*
 * Circuit-breaker admission, as pure functions of the limits and what is in flight: the waypoint keeps
 * the counts (one set per backend Service) and only carries out the answers.
 */

/** What one waypoint replica has in flight to one Service. */
export interface InFlight {
  readonly requests: number;
  readonly connections: number;
  readonly pending: number;
  readonly retries: number;
}

/** Which limit a request ran into (the `reason` label of the overflow counter). */
export type Overflow = 'requests' | 'pending' | 'retries';

/** A new request: admitted, or refused because `maxParallelRequests` are in flight. */
export function admitRequest(limits: CircuitBreaker, now: InFlight): 'admit' | Overflow {
  return now.requests >= limits.maxParallelRequests ? 'requests' : 'admit';
}

/**
 * An attempt wanting a connection: it gets one while fewer than `maxConnections` are in use, waits
 * (in a bounded queue) while fewer than `maxPendingRequests` wait, and overflows otherwise.
 */
export function admitAttempt(limits: CircuitBreaker, now: InFlight): 'connect' | 'wait' | Overflow {
  if (now.connections < limits.maxConnections) return 'connect';
  return now.pending < limits.maxPendingRequests ? 'wait' : 'pending';
}

/** A retry: made while fewer than `maxParallelRetries` retries are in flight. */
export function admitRetry(limits: CircuitBreaker, now: InFlight): 'admit' | Overflow {
  return now.retries >= limits.maxParallelRetries ? 'retries' : 'admit';
}
