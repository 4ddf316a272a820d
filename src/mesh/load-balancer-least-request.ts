/**
 * Least request with two random choices (Envoy's default for Istio, Linkerd's P2C): two distinct
 * candidates are drawn at random and the one with fewer requests in flight wins (a tie goes to the
 * first drawn). It steers away from a slow or overloaded endpoint without any global state, and
 * with one candidate it is that candidate.
 */
export function pickLeastRequest<T>(
  candidates: readonly T[],
  active: (c: T) => number,
  random: () => number,
): T | undefined {
  const n = candidates.length;
  if (n <= 1) return candidates[0];
  const i = Math.floor(random() * n);
  let j = Math.floor(random() * (n - 1));
  if (j >= i) j++;
  const a = candidates[i]!;
  const b = candidates[j]!;
  return active(b) < active(a) ? b : a;
}
