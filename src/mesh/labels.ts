import type { Labels } from '../config/kube-types.js';

/** Namespace (or Pod) label that enrolls pods in the ambient mesh. */
export const DATAPLANE_MODE = 'ambit.dev/dataplane-mode';
export const AMBIENT = 'ambient';
/** Pod label value that opts a pod out of an enrolled namespace. */
export const OPT_OUT = 'none';
/** Namespace or Service label naming the waypoint that serves it. */
export const USE_WAYPOINT = 'ambit.dev/use-waypoint';
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
