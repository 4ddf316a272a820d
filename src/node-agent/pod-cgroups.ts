import { existsSync } from 'node:fs';
import { QOS_CLASSES, type QosClass } from '../config/kube-types.js';
import { type KubeletCgroupLayout, podCgroupPath, probePodCgroup } from '../os/kubelet-cgroups.js';

/** The pod facts a cgroup layout uses: the UID and, when the API reports it, the QoS class. */
export interface PodRef {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly qosClass?: string;
}

/**
 * Finds a pod's cgroup v2 directory on this node. A node-side fact: the cluster API does not carry
 * it, the container runtime and the kubelet decide it.
 */
export interface PodCgroupResolver {
  /** Absolute path of the pod's cgroup, or undefined when this layout cannot place the pod. */
  resolve(pod: PodRef): string | undefined;
}

/** The only layout: the kubelet's (local mode lays its pods out the same way). */
export const CGROUP_LAYOUTS = ['kubelet'] as const;
export type CgroupLayout = (typeof CGROUP_LAYOUTS)[number];

/**
 * The kubelet layout's resolver: the path follows from the UID and status.qosClass; a pod whose QoS
 * class the API has not reported yet (a CNI ADD comes first) is found by probing which candidate
 * directory exists. A UID that is not a UUID cannot be placed.
 */
export function podCgroupResolver(
  layout: KubeletCgroupLayout,
  exists: (path: string) => boolean = existsSync,
): PodCgroupResolver {
  return {
    resolve: (pod) => {
      try {
        const qos = QOS_CLASSES.find((q) => q === pod.qosClass) as QosClass | undefined;
        return qos === undefined
          ? probePodCgroup(layout, pod.uid, exists).path
          : podCgroupPath(layout, { uid: pod.uid, qosClass: qos });
      } catch {
        return undefined;
      }
    },
  };
}
