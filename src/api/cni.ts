import type { Labels } from '../config/kube-types.js';

/**
 * The node agent's CNI endpoint (a Unix socket): what the CNI step sends before a pod's containers
 * start, so that the pod is enrolled before its first connection. The agent finds the pod's cgroup
 * itself, from the node's cgroup layout.
 */
export interface CniAddRequest {
  readonly pod: {
    readonly uid: string;
    readonly namespace: string;
    readonly name: string;
    readonly labels: Labels;
    readonly annotations: Labels;
    readonly ips: readonly string[];
  };
  readonly namespaceLabels: Labels;
}

export interface CniAddResponse {
  readonly enrolled: boolean;
  readonly cgroupId?: string;
  readonly warnings: readonly string[];
}

/** The HTTP path of the CNI add call on the agent's Unix socket. */
export const CNI_ADD_PATH = '/v1/cni/add';
