import {
  MAX_EXCLUDED_CIDRS,
  MAX_EXCLUDED_PORTS,
  type PodRedirectConfig,
  workloadId,
} from '../../bpf/redirect-maps.js';
import type { ClusterPod } from '../../cluster/resources.js';
import type { Labels } from '../../config/kube-types.js';
import { cidr as cidrCheck } from '../../config/validators.js';
import { EXCLUDE_OUTBOUND_CIDRS, EXCLUDE_OUTBOUND_PORTS } from '../../mesh/labels.js';
import type { PodCgroupResolver } from '../pod-cgroups.js';
import {
  type ExclusionContext,
  type ExclusionReason,
  enrollmentExclusion,
  LOOP_SAFETY_REASONS,
} from './enrollment-exclusion.js';

export interface Enrollment {
  readonly pod: string;
  readonly uid: string;
  /** The pod's cgroup directory (absolute), from the node's cgroup layout. */
  readonly cgroup: string;
  /** The pod's addresses: inbound capture steers plaintext to them through the proxy. */
  readonly ips: readonly string[];
  readonly config: PodRedirectConfig;
  /** Problems with the pod's annotations: the pod is still enrolled, without the bad entries. */
  readonly warnings: readonly string[];
}

/** A pod the mesh's labels put in but loop safety keeps out (reported in the agent's status). */
export interface Excluded {
  readonly pod: string;
  readonly reason: ExclusionReason;
}

/**
 * Which pods of this node the agent must redirect, and with which exclusions. A pod is enrolled
 * when enrollmentExclusion has no reason against it: it runs on this node, is Running (and not being
 * deleted), is in the ambient mesh (namespace label, no opt-out), is neither on the host network nor
 * one of Ambit's own pods, and the node's layout places its cgroup below the attach point, apart from
 * the agent's own. Pods kept out by loop safety are pushed to `excluded`.
 */
export function desiredEnrollments(
  pods: Iterable<ClusterPod>,
  namespaceLabels: (namespace: string) => Labels | undefined,
  ctx: ExclusionContext,
  cgroups: PodCgroupResolver,
  excluded?: Excluded[],
): Enrollment[] {
  const out: Enrollment[] = [];
  for (const pod of pods) {
    const cgroup = pod.node === ctx.node ? cgroups.resolve(pod) : undefined;
    const reason = enrollmentExclusion(pod, namespaceLabels(pod.namespace), cgroup, ctx);
    if (reason !== undefined || cgroup === undefined) {
      if (reason !== undefined && LOOP_SAFETY_REASONS.includes(reason))
        excluded?.push({ pod: `${pod.namespace}/${pod.name}`, reason });
      continue;
    }
    const warnings: string[] = [];
    out.push({
      pod: `${pod.namespace}/${pod.name}`,
      uid: pod.uid,
      cgroup,
      ips: pod.ips,
      config: {
        workloadId: workloadId(pod.uid),
        excludedPorts: excludedPorts(pod, warnings),
        excludedCidrs: excludedCidrs(pod, warnings),
      },
      warnings,
    });
  }
  return out;
}

function entries(pod: Pick<ClusterPod, 'annotations'>, annotation: string): string[] {
  const v = pod.annotations[annotation];
  return v === undefined
    ? []
    : v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
}

function excludedPorts(pod: Pick<ClusterPod, 'annotations'>, warnings: string[]): number[] {
  const ports: number[] = [];
  for (const e of entries(pod, EXCLUDE_OUTBOUND_PORTS)) {
    const n = Number(e);
    if (!/^[0-9]+$/.test(e) || n < 1 || n > 65535) {
      warnings.push(
        `annotation ${EXCLUDE_OUTBOUND_PORTS}: ${JSON.stringify(e)} is not a port number (1-65535); ignored`,
      );
    } else if (ports.length >= MAX_EXCLUDED_PORTS) {
      warnings.push(
        `annotation ${EXCLUDE_OUTBOUND_PORTS}: more than ${MAX_EXCLUDED_PORTS} ports; ${e} and later are ignored`,
      );
      break;
    } else {
      ports.push(n);
    }
  }
  return ports;
}

function excludedCidrs(pod: Pick<ClusterPod, 'annotations'>, warnings: string[]): string[] {
  const cidrs: string[] = [];
  for (const e of entries(pod, EXCLUDE_OUTBOUND_CIDRS)) {
    const why = cidrCheck(e);
    if (why !== undefined) {
      warnings.push(`annotation ${EXCLUDE_OUTBOUND_CIDRS}: ${JSON.stringify(e)} ${why}; ignored`);
    } else if (cidrs.length >= MAX_EXCLUDED_CIDRS) {
      warnings.push(
        `annotation ${EXCLUDE_OUTBOUND_CIDRS}: more than ${MAX_EXCLUDED_CIDRS} CIDRs; ${e} and later are ignored`,
      );
      break;
    } else {
      cidrs.push(e.includes('/') ? e : `${e}/${e.includes(':') ? 128 : 32}`);
    }
  }
  return cidrs;
}
