import type { Counter } from 'prom-client';
import { admitAttempt, admitRequest, admitRetry, type InFlight } from '../traffic-policy/circuit-breaker.js';
import type { CircuitBreaker } from '../traffic-policy/types.js';

/** Gives back what was taken; calling it again does nothing. */
export type Release = () => void;

/** The BackendTrafficPolicy field whose limit was reached (the `reason` label of the overflow counter). */
export type OverflowReason = 'maxParallelRequests' | 'maxPendingRequests' | 'maxParallelRetries';

interface Counts {
  requests: number;
  connections: number;
  pending: number;
  retries: number;
  /** Attempts waiting for a connection, oldest first. */
  readonly waiting: (() => void)[];
}

function once(f: () => void): Release {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    f();
  };
}

/**
 * What this waypoint replica has in flight to each backend Service, and the circuit breakers that
 * bound it: the decisions are the pure functions of traffic-policy/circuit-breaker.ts, this carries
 * them out (counts, the bounded wait for a connection) and counts each overflow.
 */
export class CircuitBreakers {
  private readonly counts = new Map<string, Counts>();

  constructor(private readonly overflows: Counter<'destination_service' | 'reason'>) {}

  private of(service: string): Counts {
    let c = this.counts.get(service);
    if (c === undefined) {
      c = { requests: 0, connections: 0, pending: 0, retries: 0, waiting: [] };
      this.counts.set(service, c);
    }
    return c;
  }

  private drop(service: string, c: Counts): void {
    if (c.requests + c.connections + c.pending + c.retries === 0) this.counts.delete(service);
  }

  /** What is in flight to a Service now (for proxy-config). */
  inFlight(service: string): InFlight {
    const c = this.counts.get(service);
    return c === undefined
      ? { requests: 0, connections: 0, pending: 0, retries: 0 }
      : { requests: c.requests, connections: c.connections, pending: c.pending, retries: c.retries };
  }

  private overflow(service: string, reason: OverflowReason): OverflowReason {
    this.overflows.inc({ destination_service: service, reason });
    return reason;
  }

  /** A new request to `service`: a release for when it has ended, or the limit it ran into. */
  request(service: string, limits: CircuitBreaker): Release | OverflowReason {
    const c = this.of(service);
    if (admitRequest(limits, c) !== 'admit') return this.overflow(service, 'maxParallelRequests');
    c.requests++;
    return once(() => {
      c.requests--;
      this.drop(service, c);
    });
  }

  /** A retry to `service`: a release for when its attempt has ended, or the limit it ran into. */
  retry(service: string, limits: CircuitBreaker): Release | OverflowReason {
    const c = this.of(service);
    if (admitRetry(limits, c) !== 'admit') return this.overflow(service, 'maxParallelRetries');
    c.retries++;
    return once(() => {
      c.retries--;
      this.drop(service, c);
    });
  }

  /**
   * A connection for one attempt: at once while fewer than maxConnections are in use, after a wait in
   * a queue of at most maxPendingRequests otherwise; `signal` ends the wait (undefined: gave up).
   */
  async connection(
    service: string,
    limits: CircuitBreaker,
    signal: AbortSignal,
  ): Promise<Release | OverflowReason | undefined> {
    const c = this.of(service);
    const release = once(() => {
      const next = c.waiting.shift();
      // The connection passes to the oldest waiter; the count stays.
      if (next !== undefined) next();
      else {
        c.connections--;
        this.drop(service, c);
      }
    });
    const decision = admitAttempt(limits, c);
    if (decision === 'connect') {
      c.connections++;
      return release;
    }
    if (decision !== 'wait') return this.overflow(service, 'maxPendingRequests');
    c.pending++;
    const got = await new Promise<boolean>((resolve) => {
      const wake = (): void => {
        signal.removeEventListener('abort', abandon);
        resolve(true);
      };
      const abandon = (): void => {
        const i = c.waiting.indexOf(wake);
        if (i >= 0) c.waiting.splice(i, 1);
        resolve(false);
      };
      c.waiting.push(wake);
      if (signal.aborted) abandon();
      else signal.addEventListener('abort', abandon, { once: true });
    });
    c.pending--;
    if (!got) {
      this.drop(service, c);
      return undefined;
    }
    return release;
  }
}
