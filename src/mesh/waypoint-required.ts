import { waypointKey } from './waypoints.js';

/** A waypoint that a destination's Services require, as the destination's node proxy sees it. */
export interface RequiredWaypoint {
  /** `ns/name`. */
  readonly waypoint: string;
  /** The identity the waypoint's pods prove; undefined when the waypoint does not exist. */
  readonly identity?: string;
  /** `ns/name` of the Services that require it (`ambit.dev/waypoint-required`), sorted. */
  readonly services: readonly string[];
}

/** Who an inbound connection comes from, as far as the requirement cares. */
export type InboundPeer =
  | { readonly kind: 'hbone'; readonly identity: string }
  /** `fromNode`: the source address is one of the destination node's own (the kubelet's probes). */
  | { readonly kind: 'plaintext'; readonly fromNode: boolean };

export type WaypointRequiredDecision =
  | { readonly allowed: true; readonly reason?: string }
  | { readonly allowed: false; readonly reason: string };

/**
 * Whether a connection may reach a pod whose Services require a waypoint: only the waypoint's own
 * identity may (any of them, when several Services require different ones), and the node itself for
 * its health checks; a client that dials the pod directly is refused, with the waypoint named. A
 * required waypoint that does not exist lets nothing in (fail closed: the requirement is the user's
 * promise that no request skips the waypoint's policy).
 */
export function decideWaypointRequired(
  dst: string,
  required: readonly RequiredWaypoint[],
  peer: InboundPeer,
): WaypointRequiredDecision {
  if (required.length === 0) return { allowed: true };
  const names = required.map((r) => r.waypoint).join(', ');
  if (peer.kind === 'hbone') {
    const via = required.find((r) => r.identity !== undefined && r.identity === peer.identity);
    if (via !== undefined)
      return {
        allowed: true,
        reason: `from waypoint ${via.waypoint}, which Service ${via.services.join(', Service ')} requires (ambit.dev/waypoint-required)`,
      };
  } else if (peer.fromNode) {
    return {
      allowed: true,
      reason: `from the node itself (health checks), which required waypoint ${names} lets in`,
    };
  }
  const why = required
    .map(
      (r) =>
        `${r.waypoint}${r.identity === undefined ? ' (which does not exist, so nothing may reach it)' : ''} required by Service ${r.services.join(', Service ')}`,
    )
    .join('; ');
  const who = peer.kind === 'hbone' ? peer.identity : 'plaintext with no identity';
  return {
    allowed: false,
    reason: `refused: ${dst} takes mesh traffic only through waypoint ${why} (ambit.dev/waypoint-required), not from ${who}; send it to the Service instead`,
  };
}

/** Groups the requirements of a workload's Services by waypoint, with each waypoint's identity. */
export function requiredWaypoints(
  services: readonly {
    readonly namespace: string;
    readonly name: string;
    readonly requiredWaypoint?: { readonly namespace: string; readonly name: string };
  }[],
  identityOf: (ref: { readonly namespace: string; readonly name: string }) => string | undefined,
): RequiredWaypoint[] {
  const by = new Map<string, { identity?: string; services: string[] }>();
  for (const s of services) {
    const ref = s.requiredWaypoint;
    if (ref === undefined) continue;
    const key = waypointKey(ref);
    let e = by.get(key);
    if (e === undefined) {
      const identity = identityOf(ref);
      e = identity === undefined ? { services: [] } : { identity, services: [] };
      by.set(key, e);
    }
    e.services.push(`${s.namespace}/${s.name}`);
  }
  return [...by]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([waypoint, e]) => ({ waypoint, ...e, services: [...e.services].sort() }));
}
