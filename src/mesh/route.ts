import { servicePortKey } from '../config/kube-types.js';
import { WAYPOINT_HBONE_PORT, type WaypointRef } from '../gateway-api/waypoint.js';
import { isV6 } from '../net/ip.js';
import type { Outcome } from '../telemetry/outcomes.js';
import type { MeshIndex } from './mesh-index.js';
import type { MeshService, MeshWaypoint, Workload } from './view.js';
import { waypointKey } from './waypoints.js';

export interface Target {
  readonly ip: string;
  readonly port: number;
}

export type OutboundRoute =
  | {
      readonly kind: 'service';
      readonly service: MeshService;
      readonly endpoint: Workload;
      readonly target: Target;
    }
  | { readonly kind: 'workload'; readonly workload: Workload; readonly target: Target }
  | {
      /**
       * Through a waypoint: HBONE straight to one of its pods (`target`, its HBONE port), asking for
       * the original destination (`authority`: the VIP and port, or the pod address) so that the
       * waypoint routes it at L7.
       */
      readonly kind: 'waypoint';
      readonly waypoint: MeshWaypoint;
      readonly pod: Workload;
      readonly target: Target;
      readonly authority: Target;
      /** What the client addressed: a Service (by VIP) or a pod. */
      readonly service?: MeshService;
      readonly workload?: Workload;
    }
  | { readonly kind: 'passthrough'; readonly target: Target }
  | {
      readonly kind: 'refuse';
      readonly outcome: Outcome;
      readonly reason: string;
      readonly service?: MeshService;
    };

/** Chooses one of the candidates for a service (round-robin in the proxy; deterministic in tests). */
export type Picker = (serviceKey: string, candidates: readonly Workload[]) => Workload | undefined;

/**
 * Where a redirected connection goes, decided from the proxy's view of the mesh alone:
 * - a Service VIP whose Service uses a waypoint: that waypoint (a ready pod of it), which routes the
 *   connection at L7 to the Service's endpoints;
 * - a Service VIP: an endpoint that is ready and serves the port (same address family as the VIP);
 * - a pod address: that pod, or its waypoint when the pod uses one that takes workload traffic;
 * - anything else: outside the mesh, straight through;
 * - a VIP port the Service does not have, a Service with no ready endpoint, or a waypoint with no
 *   ready pod: refused.
 * A waypoint's own connections (`from` a waypoint pod) never go to a waypoint again, and neither do
 * those of a pod outside the mesh (nothing captures them: they reach the Service directly).
 */
export function routeOutbound(index: MeshIndex, dst: Target, pick: Picker, from?: Workload): OutboundRoute {
  const viaWaypoint = (ref: WaypointRef, what: { service?: MeshService; workload?: Workload }) => {
    const w = index.waypoint(ref);
    const pods = w === undefined ? [] : index.waypointPods(w);
    const chosen = w === undefined ? undefined : pick(`waypoint/${waypointKey(w)}`, pods);
    if (w === undefined || chosen === undefined) {
      return {
        kind: 'refuse',
        outcome: 'no-healthy-upstream',
        reason:
          w === undefined
            ? `waypoint ${waypointKey(ref)} is not in the mesh config`
            : `waypoint ${waypointKey(ref)} has no ready pod`,
        ...(what.service === undefined ? {} : { service: what.service }),
      } as const;
    }
    const v6 = isV6(dst.ip);
    const ip = chosen.ips.find((a) => isV6(a) === v6) ?? chosen.ips[0]!;
    return {
      kind: 'waypoint',
      waypoint: w,
      pod: chosen,
      target: { ip, port: WAYPOINT_HBONE_PORT },
      authority: dst,
      ...what,
    } as const;
  };
  // Waypoint pods are never captured (their pods are labelled out of the mesh), so this covers them;
  // a label a pod sets on itself never does (it would let any pod skip its waypoint).
  const fromWaypoint = from !== undefined && !from.captured;
  const service = index.serviceByVip(dst.ip);
  if (service !== undefined) {
    const port = service.ports.find((p) => p.port === dst.port && p.protocol === 'TCP');
    if (port === undefined) {
      return {
        kind: 'refuse',
        outcome: 'no-route',
        reason: `service ${service.hostname} has no TCP port ${dst.port}`,
        service,
      };
    }
    if (service.waypoint !== undefined && !fromWaypoint) return viaWaypoint(service.waypoint, { service });
    const key = servicePortKey(port);
    const v6 = isV6(dst.ip);
    const candidates: { w: Workload; port: number }[] = [];
    for (const e of service.endpoints) {
      const target = e.ports[key];
      const w = index.workload(e.workloadUid);
      if (!e.ready || target === undefined || w === undefined) continue;
      candidates.push({ w, port: target });
    }
    const chosen = pick(
      `${service.namespace}/${service.name}:${dst.port}`,
      candidates.map((c) => c.w),
    );
    const match = candidates.find((c) => c.w === chosen);
    if (chosen === undefined || match === undefined) {
      return {
        kind: 'refuse',
        outcome: 'no-healthy-upstream',
        reason: `service ${service.hostname} has no ready endpoint for port ${dst.port}`,
        service,
      };
    }
    const ip = chosen.ips.find((a) => isV6(a) === v6) ?? chosen.ips[0]!;
    return { kind: 'service', service, endpoint: chosen, target: { ip, port: match.port } };
  }
  const workload = index.workloadByIp(dst.ip);
  if (workload !== undefined) {
    if (workload.waypoint !== undefined && !fromWaypoint && workload !== from)
      return viaWaypoint(workload.waypoint, { workload });
    return { kind: 'workload', workload, target: dst };
  }
  return { kind: 'passthrough', target: dst };
}

/** How the proxy carries a routed connection. */
export type Transport =
  /** HBONE to `nodeIp`'s port 15008 (a node proxy, or a waypoint pod), which must prove `dstIdentity`. */
  | {
      readonly kind: 'hbone';
      readonly nodeIp: string;
      readonly dstIdentity: string;
      /** The peer's HBONE port when it is not the node proxies' own: a waypoint pod's. */
      readonly port?: number;
    }
  | { readonly kind: 'plain' };

/**
 * Meshed destinations get HBONE to their node's proxy, also on this node (over the node's own
 * address), so that every meshed hop is mutual TLS with the same inbound checks; anything else stays
 * plain TCP.
 */
export function transportFor(index: MeshIndex, route: OutboundRoute): Transport {
  // A waypoint pod terminates HBONE itself (it is not captured): straight to its HBONE port.
  if (route.kind === 'waypoint')
    return {
      kind: 'hbone',
      nodeIp: route.target.ip,
      port: route.target.port,
      dstIdentity: route.waypoint.identity,
    };
  if (route.kind !== 'service' && route.kind !== 'workload') return { kind: 'plain' };
  const dst = route.kind === 'service' ? route.endpoint : route.workload;
  if (!dst.captured) return { kind: 'plain' };
  const nodeIp = index.nodeAddresses(dst.node)[0];
  if (nodeIp === undefined) return { kind: 'plain' };
  return { kind: 'hbone', nodeIp, dstIdentity: dst.identity };
}
