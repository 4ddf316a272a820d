/*
 * Weighted choice among a rule's backendRefs: each is chosen with probability weight / sum of the
 * weights (BackendRef.Weight). A weight of 0 is never chosen ("no traffic should be forwarded for this
 * entry"; conformance MeshHTTPRouteWeight and MeshGRPCRouteWeight send nothing to their weight-0
 * `echo-v3`); when every weight is 0 nothing is chosen and the waypoint answers 500, as for a rule
 * with no usable backend. Pick among all the rule's backendRefs, invalid ones included: the spec wants
 * an invalid backend's share of the requests answered with 500, not spread over the valid ones.
 */

/** A number in [0, 1), like `Math.random`; tests pass a seeded one. */
export type Random = () => number;

/** One weighted pick over `backends`, O(n); undefined when no backend has a positive weight. */
export function pickWeighted<T extends { readonly weight: number }>(
  backends: readonly T[],
  random: Random,
): T | undefined {
  let total = 0;
  for (const b of backends) total += Math.max(0, b.weight);
  if (total === 0) return undefined;
  let r = random() * total;
  let last: T | undefined;
  for (const b of backends) {
    if (b.weight <= 0) continue;
    if (r < b.weight) return b;
    r -= b.weight;
    last = b;
  }
  // Only reached when rounding leaves r a hair above the last weight: that backend's share.
  return last;
}

/**
 * The same choice with the cumulative weights computed once, for the hot path: a rule's backends
 * compiled with its route table, each pick a binary search.
 */
export class WeightedPicker<T extends { readonly weight: number }> {
  private readonly items: readonly T[];
  /** `bounds[i]`: the sum of the weights of `items[0..i]`; strictly increasing. */
  private readonly bounds: readonly number[];
  /** The sum of all weights; 0 when there is nothing to pick. */
  readonly total: number;

  constructor(backends: readonly T[]) {
    const items: T[] = [];
    const bounds: number[] = [];
    let sum = 0;
    for (const b of backends) {
      if (b.weight <= 0) continue;
      sum += b.weight;
      items.push(b);
      bounds.push(sum);
    }
    this.items = items;
    this.bounds = bounds;
    this.total = sum;
  }

  /** A backend with probability weight / total; undefined when every weight is 0. */
  pick(random: Random): T | undefined {
    if (this.total === 0) return undefined;
    const r = random() * this.total;
    let lo = 0;
    let hi = this.bounds.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (r < this.bounds[mid]!) hi = mid;
      else lo = mid + 1;
    }
    return this.items[lo];
  }
}
