import { join } from 'node:path';

/**
 * Where a pod's cgroup v2 directory lives below a node's pods cgroup. The node agent resolves it
 * from the pod (it is not a fact the cluster API carries); local mode creates its pods there.
 * Local mode's layout names the directory after the pod: `<pods>/<namespace>_<name>`.
 */
export function localPodCgroup(
  podsCgroup: string,
  pod: { readonly namespace: string; readonly name: string },
): string {
  return join(podsCgroup, `${pod.namespace}_${pod.name}`);
}
