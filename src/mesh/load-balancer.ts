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
