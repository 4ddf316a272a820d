import { isAbsolute, relative } from 'node:path';
import type { ClusterPod } from '../../cluster/resources.js';
import type { Labels } from '../../config/kube-types.js';
import { isAmbient, isAmbitComponent } from '../../mesh/labels.js';

/**
 * Why a pod of this node is not enrolled. The first group is the mesh's choice (not in an enrolled
 * namespace, opted out, not running); the second is loop safety, which holds even for a pod the
 * labels put in the mesh:
 * - `host-network`: the pod shares the node's network namespace (the node proxy's own, often), and
 *   its cgroup says nothing about which connections are the pod's;
 * - `ambit-component`: Ambit's own pods (the proxy redirected into itself would loop);
 * - `outside-attach-point`: the redirect programs only see cgroups below the attach point;
 * - `agent-cgroup`: the pod cgroup is, or holds, the agent's own cgroup (whatever its labels say);
 * - `no-cgroup`: the layout cannot place the pod (its cgroup is not there yet).
 */
export const EXCLUSION_REASONS = {
  'other-node': 'runs on another node',
  'not-running': 'not running',
  terminating: 'being deleted',
  'not-ambient': 'not in the ambient mesh',
  'host-network': 'on the host network',
  'ambit-component': "one of Ambit's own pods",
  'agent-cgroup': "holds the node agent's own cgroup",
  'outside-attach-point': 'cgroup not below the attach point',
  'no-cgroup': 'no pod cgroup found',
} as const;
export type ExclusionReason = keyof typeof EXCLUSION_REASONS;

/** The loop-safety reasons: a pod excluded for one of these is reported (it was meant to be in the mesh). */
export const LOOP_SAFETY_REASONS: readonly ExclusionReason[] = [
  'host-network',
  'ambit-component',
  'agent-cgroup',
  'outside-attach-point',
  'no-cgroup',
];

export interface ExclusionContext {
  readonly node: string;
  /** The attach point: only cgroups strictly below it are seen by the redirect programs. */
  readonly podsCgroup: string;
  /** The agent's own cgroup, when known. */
  readonly ownCgroup?: string;
}

function strictlyBelow(path: string, root: string): boolean {
  const r = relative(root, path);
  return r !== '' && !r.startsWith('..') && !isAbsolute(r);
}

/**
 * Why `pod` is not enrolled, or undefined when it is. `cgroup` is its cgroup as the node's layout
 * resolves it (undefined when it cannot). Pure: the table tests are the rule.
 */
export function enrollmentExclusion(
  pod: Pick<ClusterPod, 'node' | 'phase' | 'terminating' | 'hostNetwork' | 'labels' | 'namespace'>,
  namespaceLabels: Labels | undefined,
  cgroup: string | undefined,
  ctx: ExclusionContext,
): ExclusionReason | undefined {
  if (pod.node !== ctx.node) return 'other-node';
  if (pod.terminating) return 'terminating';
  if (pod.phase !== 'Running') return 'not-running';
  if (!isAmbient(namespaceLabels, pod.labels)) return 'not-ambient';
  if (pod.hostNetwork) return 'host-network';
  if (isAmbitComponent(pod.labels)) return 'ambit-component';
  if (cgroup === undefined) return 'no-cgroup';
  if (!strictlyBelow(cgroup, ctx.podsCgroup)) return 'outside-attach-point';
  if (ctx.ownCgroup !== undefined && (ctx.ownCgroup === cgroup || strictlyBelow(ctx.ownCgroup, cgroup)))
    return 'agent-cgroup';
  return undefined;
}
