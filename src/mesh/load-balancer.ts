import type { LoadBalancer } from '../traffic-policy/balancing.js';
import { pickLeastRequest } from './load-balancer-least-request.js';
import { hash32, MaglevTable } from './load-balancer-maglev.js';

/**
 * Round-robin over a list that can change between picks: the counter is per key (a service) and the
 * pick is `counter mod length`, so adding or removing an endpoint never stalls the rotation.
 */
export class RoundRobin {
  private readonly next = new Map<string, number>();

  pick<T>(key: string, candidates: readonly T[]): T | undefined {
    if (candidates.length === 0) return undefined;
    const n = this.next.get(key) ?? 0;
    this.next.set(key, (n + 1) % 1_000_000_007);
    return candidates[n % candidates.length];
  }
}

/** Maglev tables kept at once (one per Service and endpoint set in use); the oldest goes first. */
const TABLES_KEPT = 64;

export interface PickFacts<T> {
  /** The endpoint's stable name (its address): what round robin and the hash tables know it by. */
  readonly name: (c: T) => string;
  /** Requests in flight to it, for least request. */
  readonly active: (c: T) => number;
  readonly random: () => number;
  /** The request's hash key for ConsistentHash; undefined: no key (a random endpoint, as Envoy). */
  readonly hashKey?: string | undefined;
}

/**
 * The endpoint picker of every Service: one of Envoy Gateway's four load balancers over the candidates
 * it is given (the caller has already left out ejected and already-tried endpoints). Round-robin
 * counters and Maglev tables are kept per Service (`service` is its key), so picks of one Service never
 * shift another's.
 */
export class Balancer {
  private readonly rr = new RoundRobin();
  private readonly tables = new Map<string, MaglevTable>();

  pick<T>(service: string, lb: LoadBalancer, candidates: readonly T[], facts: PickFacts<T>): T | undefined {
    if (candidates.length <= 1) return candidates[0];
    switch (lb.type) {
      case 'RoundRobin':
        return this.rr.pick(service, candidates);
      case 'Random':
        return candidates[Math.floor(facts.random() * candidates.length)];
      case 'LeastRequest':
        return pickLeastRequest(candidates, facts.active, facts.random);
      case 'ConsistentHash': {
        if (facts.hashKey === undefined) return candidates[Math.floor(facts.random() * candidates.length)];
        const names = candidates.map(facts.name);
        const name = this.table(service, names, lb.tableSize).lookup(hash32(facts.hashKey));
        return candidates[names.indexOf(name!)];
      }
    }
  }

  private table(service: string, names: readonly string[], size: number): MaglevTable {
    const key = `${service}|${size}|${[...names].sort().join(',')}`;
    let t = this.tables.get(key);
    if (t !== undefined) {
      // Most recently used last: what is evicted first is what has not been asked for longest.
      this.tables.delete(key);
      this.tables.set(key, t);
      return t;
    }
    t = new MaglevTable(names, size);
    this.tables.set(key, t);
    if (this.tables.size > TABLES_KEPT) this.tables.delete(this.tables.keys().next().value!);
    return t;
  }
}
