import { randomBytes } from 'node:crypto';
import type { HeaderRecord } from '../gateway-api/route-filters.js';
import { Balancer } from '../mesh/load-balancer.js';
import { type HashFacts, hashKeyOf } from '../mesh/load-balancer-hash-key.js';
import { DEFAULT_LOAD_BALANCER, inService } from '../traffic-policy/balancing.js';
import type { AppliedTrafficPolicy } from '../traffic-policy/types.js';
import { type ConnContext, headerOf } from './exchange.js';
import type { Outliers } from './outliers.js';
import type { UpstreamEndpoint, Upstreams } from './upstream.js';

/** The backend a request goes to: its Service's hostname and BackendTrafficPolicy (none: the defaults). */
export interface PickTarget {
  readonly hostname: string;
  readonly applied?: AppliedTrafficPolicy;
}

/** The picks of one request: the same hash key for every attempt, and the cookie to set, if any. */
export interface RequestPicks {
  /**
   * An endpoint for the next attempt: ejected ones are left out (unless under panicThreshold are
   * left: Envoy's panic, all are used), then those in `tried` when others remain (a retry goes
   * elsewhere), then the Service's load balancer picks. Undefined when `endpoints` is empty, or all
   * are ejected with panic off.
   */
  next(endpoints: readonly UpstreamEndpoint[], tried?: ReadonlySet<string>): UpstreamEndpoint | undefined;
  /** A `set-cookie` for the response (ConsistentHash on a cookie the request did not carry). */
  readonly setCookie?: string;
}

/**
 * How the waypoint picks endpoints, for every path that sends to one (HTTP attempts, mirrors,
 * upgrades, TCP pass-through): the policy's load balancer over the endpoints not ejected by its
 * passive health check.
 */
export class EndpointPicker {
  private readonly balancer = new Balancer();

  constructor(
    private readonly upstreams: Pick<Upstreams, 'inFlight'>,
    private readonly random: () => number,
    readonly outliers?: Outliers,
  ) {}

  request(target: PickTarget | undefined, facts: HashFacts): RequestPicks {
    const lb = target?.applied?.loadBalancer ?? DEFAULT_LOAD_BALANCER;
    const hashed =
      lb.type === 'ConsistentHash' ? hashKeyOf(lb.hashOn, facts, () => randomBytes(8).toString('hex')) : {};
    const service = target?.hostname ?? '';
    const check = target?.applied?.passiveHealthCheck;
    const outliers = this.outliers;
    const pickFacts = {
      name: (e: UpstreamEndpoint) => e.key,
      active: (e: UpstreamEndpoint) => this.upstreams.inFlight(e.key),
      random: this.random,
      hashKey: hashed.key,
    };
    return {
      next: (endpoints, tried) => {
        const healthy =
          check === undefined || outliers === undefined
            ? endpoints
            : inService(endpoints, (e) => outliers.isEjected(service, e.key), check.panicThreshold);
        const fresh =
          tried === undefined || tried.size === 0 ? healthy : healthy.filter((e) => !tried.has(e.key));
        return this.balancer.pick(service, lb, fresh.length > 0 ? fresh : healthy, pickFacts);
      },
      ...(hashed.setCookie === undefined ? {} : { setCookie: hashed.setCookie }),
    };
  }

  /** An attempt's outcome, for the target's passive health check (when it has one). */
  outcome(
    target: PickTarget | undefined,
    ep: UpstreamEndpoint,
    result: Parameters<Outliers['record']>[3],
    total: number,
  ): void {
    const passive = target?.applied?.passiveHealthCheck;
    if (passive === undefined || this.outliers === undefined) return;
    this.outliers.record(target!.hostname, passive, ep.key, result, total);
  }
}

/** A Service as a pick target; undefined (the defaults) for a pod addressed directly. */
export function targetOf(
  service: { readonly hostname: string; readonly trafficPolicy?: AppliedTrafficPolicy } | undefined,
): PickTarget | undefined {
  if (service === undefined) return undefined;
  return {
    hostname: service.hostname,
    ...(service.trafficPolicy === undefined ? {} : { applied: service.trafficPolicy }),
  };
}

/** What a request on a client connection offers to hash on. */
export function hashFactsOf(ctx: ConnContext, headers: HeaderRecord): HashFacts {
  return {
    header: (n) => headerOf(headers, n),
    cookies: headers.cookie,
    sourceAddress: ctx.client.address,
    identity: ctx.client.identity,
  };
}
