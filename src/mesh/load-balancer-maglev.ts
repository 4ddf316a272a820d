/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016; Envoy's `MAGLEV`): a lookup table of prime
 * size M in which every endpoint owns about M/N slots, filled by each endpoint's own permutation of
 * the slots in turn. A key's endpoint is `table[hash(key) mod M]`. Adding or removing one endpoint
 * changes only a little more than the slots it gains or loses, so about 1/N of the keys move.
 */

/** A 32-bit string hash (murmur3's mixing, seeded): stable across processes and replicas. */
export function hash32(s: string, seed = 0): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    let k = Math.imul(s.charCodeAt(i), 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= s.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The table of one endpoint set: slot -> index into `names` (sorted, so input order does not matter). */
export class MaglevTable {
  readonly names: readonly string[];
  private readonly slots: Int32Array;

  /** `names` must be distinct; `size` a prime larger than their number. */
  constructor(
    names: readonly string[],
    readonly size: number,
  ) {
    this.names = [...names].sort();
    const n = this.names.length;
    this.slots = new Int32Array(size).fill(-1);
    if (n === 0) return;
    const pos = new Float64Array(n);
    const skip = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const name = this.names[i]!;
      pos[i] = hash32(name, 0x9747b28c) % size;
      skip[i] = (hash32(name, 0x5bd1e995) % (size - 1)) + 1;
    }
    // Each endpoint in turn takes the next free slot of its permutation, until the table is full.
    for (let filled = 0; ; ) {
      for (let i = 0; i < n; i++) {
        let c = pos[i]!;
        while (this.slots[c]! >= 0) c = (c + skip[i]!) % size;
        this.slots[c] = i;
        pos[i] = (c + skip[i]!) % size;
        if (++filled === size) return;
      }
    }
  }

  /** The endpoint name a hash maps to; undefined for an empty set. */
  lookup(hash: number): string | undefined {
    const i = this.slots[hash % this.size]!;
    return i < 0 ? undefined : this.names[i];
  }
}
