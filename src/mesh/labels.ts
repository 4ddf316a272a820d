import type { Labels } from '../config/kube-types.js';

/** Namespace (or Pod) label that enrolls pods in the ambient mesh. */
export const DATAPLANE_MODE = 'ambit.dev/dataplane-mode';
export const AMBIENT = 'ambient';
/** Pod label value that opts a pod out of an enrolled namespace. */
export const OPT_OUT = 'none';
/**
 * Pod label that marks Ambit's own components (node agent and proxy, control plane, waypoints):
 * `app.kubernetes.io/part-of: ambit`. Such a pod is never enrolled, whatever its namespace or its own
 * `ambit.dev/dataplane-mode` says: redirecting the proxy's own connections into itself would loop.
 * `ambit install` puts it on every pod it renders (and `ambit.dev/dataplane-mode: none` beside it, for
 * readers that know only the opt-out).
 */
export const PART_OF = 'app.kubernetes.io/part-of';
export const AMBIT_PART_OF = 'ambit';

/** Whether a pod is one of Ambit's own components (see PART_OF). */
export function isAmbitComponent(podLabels: Labels): boolean {
  return podLabels[PART_OF] === AMBIT_PART_OF;
}

/** Namespace or Service label naming the waypoint that serves it. */
export const USE_WAYPOINT = 'ambit.dev/use-waypoint';
/**
 * Namespace or Service label that makes its waypoint mandatory: `ambit.dev/waypoint-required: "true"`.
 * The endpoints of such a Service (of every Service in such a namespace) then take mesh traffic only
 * from the waypoint's identity, so a client that dials a pod IP cannot go around the waypoint's L7
 * policy. A Service's own `"false"` opts it out of its namespace's requirement; any other value than
 * `"true"` or `"false"` counts as `"true"`, so that a typo does not open a way around the waypoint.
 */
export const WAYPOINT_REQUIRED = 'ambit.dev/waypoint-required';
/** Pod annotations: outbound destinations that bypass the node proxy. */
export const EXCLUDE_OUTBOUND_PORTS = 'ambit.dev/exclude-outbound-ports';
export const EXCLUDE_OUTBOUND_CIDRS = 'ambit.dev/exclude-outbound-cidrs';

/**
 * Whether a pod is in the ambient mesh: its namespace carries `ambit.dev/dataplane-mode=ambient`
 * (or the pod itself does), and the pod is not opted out with `ambit.dev/dataplane-mode=none`.
 */
export function isAmbient(namespaceLabels: Labels | undefined, podLabels: Labels): boolean {
  const own = podLabels[DATAPLANE_MODE];
  if (own === OPT_OUT) return false;
  if (own === AMBIENT) return true;
  return namespaceLabels?.[DATAPLANE_MODE] === AMBIENT;
}

/**
 * The namespaces in which a pod may be in the mesh, for the CNI plugin's decision when the agent is
 * unreachable: every enrolled namespace, and every namespace in which some pod opts in with its own
 * `ambit.dev/dataplane-mode=ambient` (isAmbient accepts that in any namespace). Sorted, each once.
 */
export function failClosedNamespaces(
  namespaces: Iterable<{ readonly name: string; readonly labels: Labels }>,
  pods: Iterable<{ readonly namespace: string; readonly labels: Labels }>,
): string[] {
  const out = new Set<string>();
  for (const n of namespaces) if (isAmbient(n.labels, {})) out.add(n.name);
  for (const p of pods) if (p.labels[DATAPLANE_MODE] === AMBIENT) out.add(p.namespace);
  return [...out].sort();
}
