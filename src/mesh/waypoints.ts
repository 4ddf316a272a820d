import type { Labels } from '../config/kube-types.js';
import type { Gateway } from '../gateway-api/types.js';
import {
  covers,
  GATEWAY_NAME_LABEL,
  requestedWaypoint,
  type WaypointFor,
  type WaypointRef,
  waypointFor,
} from '../gateway-api/waypoint.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import { WAYPOINT_REQUIRED } from './labels.js';

/**
 * A waypoint as proxies see it: which traffic it takes, the identity it proves, and the Service whose
 * endpoints are its pods (node proxies send to a pod's HBONE port directly, not to the VIP).
 */
export interface MeshWaypoint {
  readonly namespace: string;
  readonly name: string;
  readonly for: WaypointFor;
  readonly identity: string;
  /** `ns/name` of the waypoint's own Service. */
  readonly service: string;
}

/** `ns/name`. */
export function waypointKey(w: WaypointRef): string {
  return `${w.namespace}/${w.name}`;
}

/**
 * A waypoint Gateway as the mesh sees it: its pods run as the ServiceAccount named after the Gateway
 * (as istiod's waypoint template makes them), behind the Service of the same name.
 */
export function meshWaypointOf(gw: Gateway, trustDomain: string): MeshWaypoint {
  return {
    namespace: gw.namespace,
    name: gw.name,
    for: waypointFor(gw.labels).for,
    identity: SpiffeId.of(trustDomain, gw.namespace, gw.name).toString(),
    service: `${gw.namespace}/${gw.name}`,
  };
}

export type WaypointLookup = (ref: WaypointRef) => MeshWaypoint | undefined;

export interface Binding {
  /** The waypoint the traffic goes through. */
  readonly waypoint?: WaypointRef;
  /** Why the waypoint asked for is not used (for status and `explain`). */
  readonly problem?: string;
}

/**
 * Which waypoint traffic to an object goes through: the one its labels (or its namespace's) ask for,
 * when that waypoint exists and takes this kind of traffic. A waypoint that is missing or that takes
 * other traffic binds nothing, and says why, as istiod's binding does.
 */
export function bindWaypoint(
  object: { readonly namespace: string; readonly labels: Labels },
  namespaceLabels: Labels | undefined,
  target: 'service' | 'workload',
  waypoints: WaypointLookup,
): Binding {
  // A waypoint's own objects (its Service, its pods) never go through a waypoint: that would send it
  // its own traffic.
  if (object.labels[GATEWAY_NAME_LABEL] !== undefined) return {};
  const asked = requestedWaypoint(object, namespaceLabels);
  if (asked === undefined) return {};
  const w = waypoints(asked);
  if (w === undefined) return { problem: `waypoint ${waypointKey(asked)} does not exist` };
  if (!covers(w.for, target)) {
    return {
      problem: `waypoint ${waypointKey(asked)} takes ${describeFor(w.for)}, not ${target === 'service' ? 'Service' : 'workload'} traffic`,
    };
  }
  return { waypoint: asked };
}

function describeFor(f: WaypointFor): string {
  return f === 'none' ? 'no traffic' : f === 'all' ? 'all traffic' : `${f} traffic only`;
}

/**
 * The waypoint a Service requires (`ambit.dev/waypoint-required`, on the Service or its namespace; the
 * Service's own label wins): the one it asks for with `ambit.dev/use-waypoint`, whether or not that
 * waypoint exists yet. A Service that asks for no waypoint requires none, whatever the label says.
 */
export function requiredWaypointOf(
  svc: { readonly namespace: string; readonly labels: Labels },
  namespaceLabels: Labels | undefined,
): WaypointRef | undefined {
  if (svc.labels[GATEWAY_NAME_LABEL] !== undefined) return undefined;
  const value = svc.labels[WAYPOINT_REQUIRED] ?? namespaceLabels?.[WAYPOINT_REQUIRED];
  if (value === undefined || value === 'false') return undefined;
  return requestedWaypoint(svc, namespaceLabels);
}
