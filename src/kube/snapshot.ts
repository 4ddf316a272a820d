import type { Labels, ServicePort } from '../config/model.js';

/**
 * What Ambit reads from the cluster API: the same shape whether it comes from Kubernetes (cluster
 * mode) or from a local cluster's state file (local mode). Control plane and node agent consume this.
 */
export interface ClusterSnapshot {
  /** Changes whenever anything in the snapshot changes. */
  readonly revision: string;
  readonly namespaces: readonly { readonly name: string; readonly labels: Labels }[];
  readonly nodes: readonly SnapshotNode[];
  readonly pods: readonly SnapshotPod[];
  readonly services: readonly SnapshotService[];
  /** Mesh configuration objects (routes, policies) as their YAML bodies, for the control plane. */
  readonly config: readonly SnapshotConfigObject[];
}

export interface SnapshotNode {
  readonly name: string;
  readonly ip4: string;
  readonly ip6?: string;
}

export interface SnapshotPod {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  readonly ips: readonly string[];
  readonly serviceAccount: string;
  readonly labels: Labels;
  readonly annotations: Labels;
  readonly phase: string;
  readonly ready: boolean;
  readonly hostNetwork: boolean;
  /**
   * Where the node agent finds the pod's cgroup v2 directory, relative to the pods cgroup root the
   * agent is configured with. Local mode knows it exactly; in cluster mode it comes from the pod UID.
   */
  readonly cgroup?: string;
  readonly ports: readonly {
    readonly name?: string;
    readonly containerPort: number;
    readonly protocol: string;
  }[];
}

export interface SnapshotEndpoint {
  readonly podUid?: string;
  readonly pod: string;
  readonly node: string;
  readonly ips: readonly string[];
  readonly ready: boolean;
  /** Service port key (name, or number as text) -> target port. */
  readonly ports: Readonly<Record<string, number>>;
}

export interface SnapshotService {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly annotations: Labels;
  readonly vips: readonly string[];
  readonly ports: readonly ServicePort[];
  readonly endpoints: readonly SnapshotEndpoint[];
}

export interface SnapshotConfigObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly file: string;
  readonly line: number;
  readonly body: unknown;
}
