import type { NodeLayout } from './layout.js';

export interface PlacedPod {
  readonly node: string;
  readonly owner?: string;
}

/**
 * Picks a node for a new pod: the pinned `nodeName` when set, otherwise the node with the fewest
 * pods of the same owner (so replicas spread like the default scheduler's topology spreading), then
 * the fewest pods overall, then the lowest index. Deterministic, so tests know where pods land.
 */
export function pickNode(
  pod: { readonly nodeName?: string; readonly owner?: string },
  nodes: readonly NodeLayout[],
  placed: readonly PlacedPod[],
): NodeLayout | undefined {
  if (pod.nodeName !== undefined) return nodes.find((n) => n.name === pod.nodeName);
  let best: { node: NodeLayout; key: [number, number, number] } | undefined;
  for (const node of nodes) {
    const onNode = placed.filter((p) => p.node === node.name);
    const sameOwner = pod.owner === undefined ? 0 : onNode.filter((p) => p.owner === pod.owner).length;
    const key: [number, number, number] = [sameOwner, onNode.length, node.index];
    if (best === undefined || compare(key, best.key) < 0) best = { node, key };
  }
  return best?.node;
}

function compare(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The lowest free number in [min, max], or undefined when all are used. */
export function allocate(used: ReadonlySet<number>, min: number, max: number): number | undefined {
  for (let n = min; n <= max; n++) if (!used.has(n)) return n;
  return undefined;
}
