import type { Labels } from '../config/model.js';
import type { SnapshotPod } from './snapshot.js';

/** What the CNI step (the local daemon, or a CNI plugin) sends before a pod's containers start. */
export interface CniAddRequest {
  readonly pod: Pick<
    SnapshotPod,
    'uid' | 'namespace' | 'name' | 'node' | 'labels' | 'annotations' | 'cgroup' | 'ips'
  >;
  readonly namespaceLabels: Labels;
}

export interface CniAddResponse {
  readonly enrolled: boolean;
  readonly cgroupId?: string;
  readonly warnings: readonly string[];
}

/** The HTTP path of the CNI add call on the agent's Unix socket. */
export const CNI_ADD_PATH = '/v1/cni/add';
