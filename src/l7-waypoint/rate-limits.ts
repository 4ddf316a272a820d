import type { Counter } from 'prom-client';
import type { HeaderRecord } from '../gateway-api/route-filters.js';
import type { RuleRef } from '../mesh/l7-route.js';
import type { Logger } from '../telemetry/logger.js';
import {
  admitRequest,
  type Bucket,
  isDistinct,
  type LocalRateLimit,
  type RateLimitStatus,
  ruleBuckets,
  ruleKeyOf,
} from '../traffic-policy/rate-limit.js';
import { type ConnContext, headerOf } from './exchange.js';

/** Buckets one waypoint replica keeps at most; the least recently used goes first. */
export const MAX_RATE_LIMIT_BUCKETS = 10_000;

export type RateLimitVerdict =
  | { readonly allowed: true; readonly status?: RateLimitStatus }
  | { readonly allowed: false; readonly status: RateLimitStatus; readonly rule: number };

/**
 * The token buckets of one waypoint replica's local rate limits (each replica limits on its own, as
 * Envoy's local_ratelimit does). Distinct selectors make a bucket per client, so the buckets are an
 * LRU bounded by `max`: an evicted bucket is counted, logged the first time for its policy, and comes
 * back full (an evicted client may get a fresh burst).
 */
export class RateLimits {
  private readonly buckets = new Map<string, Bucket>();
  private readonly warned = new Set<string>();

  constructor(
    private readonly evictions: Counter<'policy'>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly max = MAX_RATE_LIMIT_BUCKETS,
  ) {}

  /**
   * Counts a request to `hostname` under `policy` (`ns/name`) (matched by `route`, if any) against the rules of its policy that
   * select it; limited when one bucket is empty.
   */
  check(
    policy: string,
    rl: LocalRateLimit,
    hostname: string,
    ctx: ConnContext,
    headers: HeaderRecord,
    route: RuleRef | undefined,
  ): RateLimitVerdict {
    const rules = ruleBuckets(policy, rl, {
      header: (n) => headerOf(headers, n),
      sourceIp: ctx.client.address,
      identity: ctx.client.identity,
      service: hostname,
      ...(route === undefined ? {} : { route: `${route.kind}/${route.namespace}/${route.name}` }),
    });
    if (rules.length === 0) return { allowed: true };
    const d = admitRequest(rules, (k) => this.buckets.get(k), this.now());
    for (const [k, b] of d.updates) {
      this.buckets.delete(k); // re-inserted last: Map order is the LRU order
      this.buckets.set(k, b);
    }
    while (this.buckets.size > this.max) {
      const oldest = this.buckets.keys().next().value as string;
      this.buckets.delete(oldest);
      const owner = oldest.split('|')[0] ?? 'unknown';
      this.evictions.inc({ policy: owner });
      if (!this.warned.has(owner)) {
        this.warned.add(owner);
        const distinct = rl.rules.some(isDistinct);
        this.log.warn(
          { policy: owner, max_buckets: this.max, distinct },
          'rate-limit buckets over the bound: the least recently used are dropped (their clients start with a full bucket)',
        );
      }
    }
    if (d.allowed) return d.status === undefined ? { allowed: true } : { allowed: true, status: d.status };
    return { allowed: false, status: d.status!, rule: d.limitedBy! };
  }

  /**
   * Drops the buckets of rules no longer in force (a policy removed, a rule changed or gone), given
   * what `ruleKeys` says of the policies in force, so that they do not wait for the LRU bound.
   */
  retain(rules: ReadonlySet<string>): void {
    for (const k of this.buckets.keys()) if (!rules.has(ruleKeyOf(k))) this.buckets.delete(k);
  }

  /** Buckets held now (for proxy-config). */
  get size(): number {
    return this.buckets.size;
  }
}
