import type { Labels } from '../config/kube-types.js';
import { type Gateway, WAYPOINT_CLASS } from './types.js';

/**
 * Waypoints, Istio's model with Ambit's names: a Gateway of class `ambit-waypoint` with an HBONE
 * listener on 15008 is a waypoint; its label `ambit.dev/waypoint-for` says which traffic it takes;
 * `ambit.dev/use-waypoint` on a Service, a Namespace or a Pod sends traffic through one.
 */

/** On the waypoint's Gateway: `service` (the default), `workload`, `all` or `none`. */
export const WAYPOINT_FOR = 'ambit.dev/waypoint-for';
/** On a Service, Namespace or Pod: the waypoint (a Gateway name) its traffic goes through; `none` opts out. */
export const USE_WAYPOINT = 'ambit.dev/use-waypoint';
/** Beside `use-waypoint`: the waypoint's namespace, when it is not the object's own. */
export const USE_WAYPOINT_NAMESPACE = 'ambit.dev/use-waypoint-namespace';
/** The label of the objects rendered for a waypoint (Istio and Gateway API use the same). */
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
/** HBONE's port on a waypoint. */
export const WAYPOINT_HBONE_PORT = 15008;

export const WAYPOINT_FOR_VALUES = ['service', 'workload', 'all', 'none'] as const;
export type WaypointFor = (typeof WAYPOINT_FOR_VALUES)[number];

export interface WaypointRef {
  readonly namespace: string;
  readonly name: string;
}

export function isWaypoint(g: Gateway): boolean {
  return g.gatewayClassName === WAYPOINT_CLASS;
}

/** What a waypoint takes, from its Gateway's label (an unknown value takes nothing, and is reported). */
export function waypointFor(labels: Labels): { for: WaypointFor; problem?: string } {
  const v = labels[WAYPOINT_FOR];
  if (v === undefined) return { for: 'service' };
  if ((WAYPOINT_FOR_VALUES as readonly string[]).includes(v)) return { for: v as WaypointFor };
  return {
    for: 'none',
    problem: `label ${WAYPOINT_FOR}=${v} is not one of ${WAYPOINT_FOR_VALUES.join(', ')}; the waypoint takes no traffic`,
  };
}

/** Whether a waypoint of this kind takes traffic addressed to a Service, or to a pod. */
export function covers(f: WaypointFor, target: 'service' | 'workload'): boolean {
  return f === 'all' || f === target;
}

/**
 * The waypoint an object asks for: its own `use-waypoint` label, else its namespace's (a Service's or
 * a pod's own label wins); `none` on the object opts it out even when its namespace uses one. The
 * waypoint's namespace is `use-waypoint-namespace` beside the label that named it, else that object's.
 */
export function requestedWaypoint(
  own: { readonly namespace: string; readonly labels: Labels },
  namespaceLabels: Labels | undefined,
): WaypointRef | undefined {
  const pick = (labels: Labels): WaypointRef | 'none' | undefined => {
    const name = labels[USE_WAYPOINT];
    if (name === undefined || name === '') return undefined;
    if (name === 'none') return 'none';
    return { namespace: labels[USE_WAYPOINT_NAMESPACE] ?? own.namespace, name };
  };
  const mine = pick(own.labels);
  if (mine === 'none') return undefined;
  if (mine !== undefined) return mine;
  const ns = namespaceLabels === undefined ? undefined : pick(namespaceLabels);
  return ns === 'none' ? undefined : ns;
}
