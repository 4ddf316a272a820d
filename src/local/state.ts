import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { ConfigIssue } from '../config/issue.js';
import type { Labels, QosClass, ServicePort } from '../config/kube-types.js';
import { AmbitError, ErrorCode } from '../errors.js';
import type { ContainerPort } from '../manifests/model.js';
import type { NodeLayout } from './layout.js';

/**
 * What a running local cluster looks like, written by the local daemon on every change: what
 * `ambit local status`, `exec` and `logs` read (processes, namespaces, cgroups). The mesh's daemons do
 * not read it: they read the local cluster's API (api.json, Kubernetes objects; see api-objects.ts).
 */
export interface LocalState {
  readonly version: 1;
  readonly cluster: string;
  /** Absolute path of the manifests file or folder (the source of truth, watched). */
  readonly manifests: string;
  readonly daemonPid: number;
  /** Absolute path of this cluster's cgroup v2 directory. */
  readonly cgroupDir: string;
  readonly phase: 'starting' | 'running' | 'stopping';
  readonly nodes: readonly NodeLayout[];
  readonly namespaces: readonly { readonly name: string; readonly labels: Labels }[];
  readonly pods: readonly PodState[];
  readonly services: readonly ServiceState[];
  /** Node daemons (node agent, node proxy): the DaemonSet pod `ambit-system/ambit-node-<node>`. */
  readonly daemons: readonly DaemonState[];
  /** Validation problems of the current manifests: rejected objects keep their last good version. */
  readonly issues: readonly ConfigIssue[];
  readonly generation: number;
  readonly updatedAt: string;
}

export interface DaemonState {
  readonly node: string;
  /** `node-agent` or `node-proxy`. */
  readonly name: string;
  readonly pid?: number;
  readonly ready: boolean;
  readonly restarts: number;
}

/** The namespace in which node daemons show up as pods, as the DaemonSet's pods do in a cluster. */
export const SYSTEM_NAMESPACE = 'ambit-system';

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Terminating';

export interface ContainerState {
  readonly name: string;
  readonly state: 'waiting' | 'running' | 'terminated';
  readonly pid?: number;
  readonly ready: boolean;
  readonly restarts: number;
  readonly exitCode?: number;
  readonly reason?: string;
  readonly startedAt?: string;
}

export interface PodState {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly node: string;
  readonly netns: string;
  readonly ip4: string;
  readonly ip6: string;
  /** Relative to the cluster cgroup: the kubelet's systemd layout (see layout.ts podCgroup). */
  readonly cgroup: string;
  /** status.qosClass, from the containers' resources (older state files lack it: BestEffort). */
  readonly qosClass?: QosClass;
  /** The pod runs in its node's network namespace, with the node's addresses. */
  readonly hostNetwork?: boolean;
  readonly serviceAccount: string;
  readonly labels: Labels;
  readonly annotations: Labels;
  /** `Deployment/<name>` for pods a Deployment owns. */
  readonly owner?: string;
  readonly phase: PodPhase;
  readonly ready: boolean;
  /** The pod's sandbox process: holds its mount namespace (private /tmp, hosts file). */
  readonly pausePid?: number;
  readonly containers: readonly ContainerState[];
  readonly ports: readonly ContainerPort[];
  readonly createdAt: string;
  /** When the pod began terminating (its API object's deletionTimestamp). */
  readonly deletedAt?: string;
  /** Why the pod cannot start yet (its sandbox's network failed: `FailedCreatePodSandBox: ...`). */
  readonly message?: string;
}

export interface EndpointState {
  readonly pod: string;
  readonly node: string;
  readonly ip4: string;
  readonly ip6: string;
  readonly ready: boolean;
  /** Service port name (or number as text) -> target port number on this pod. */
  readonly ports: Readonly<Record<string, number>>;
}

export interface ServiceState {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly annotations: Labels;
  /** VIPs, primary family first; empty for headless Services. */
  readonly vips: readonly string[];
  readonly ports: readonly ServicePort[];
  readonly selector?: Labels;
  readonly endpoints: readonly EndpointState[];
}

/** Writes atomically (rename), so that readers never see half a file. */
export function writeState(path: string, state: LocalState): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
  renameSync(tmp, path);
}

export function readState(path: string): LocalState | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AmbitError(ErrorCode.LOCAL_STATE, `${path}: cannot read local cluster state`, { cause: err });
  }
  try {
    const parsed = JSON.parse(text) as LocalState;
    if (parsed.version !== 1) throw new Error(`unsupported state version ${String(parsed.version)}`);
    return parsed;
  } catch (err) {
    throw new AmbitError(
      ErrorCode.LOCAL_STATE,
      `${path}: local cluster state is corrupt (run \`ambit local down\`)`,
      {
        cause: err,
      },
    );
  }
}
