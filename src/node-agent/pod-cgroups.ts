import { localPodCgroup } from '../os/cgroup-layout.js';

/** The pod facts a cgroup layout may use (kubelet layouts use the UID and QoS class). */
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

export const CGROUP_LAYOUTS = ['local'] as const;
export type CgroupLayout = (typeof CGROUP_LAYOUTS)[number];

/** The resolver of a layout, for pods below `podsCgroup` (the attach point). */
export function podCgroupResolver(layout: CgroupLayout, podsCgroup: string): PodCgroupResolver {
  switch (layout) {
    case 'local':
      return { resolve: (pod) => localPodCgroup(podsCgroup, pod) };
  }
}
