import { readFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { AmbitError, ErrorCode } from '../errors.js';
import { type Mount, mounts, requireUnifiedCgroup } from '../os/cgroup.js';
import {
  type KubeletCgroupLayout,
  layoutFromOwnPod,
  layoutFromPodRoot,
  unifiedCgroupPath,
} from '../os/kubelet-cgroups.js';

/** Where the agent attaches and how it finds pods: decided once at start. */
export interface NodeCgroups {
  /** The cgroup v2 mount. */
  readonly cgroupRoot: string;
  /** The attach point: the kubelet's pod root, or a cgroup below it. */
  readonly podsCgroup: string;
  readonly layout: KubeletCgroupLayout;
  /** The agent's own cgroup (absolute), when it runs in a cgroup v2 hierarchy: never enrolled. */
  readonly ownCgroup?: string;
  /** How the layout was learnt, for the start log. */
  readonly discoveredFrom: 'own pod' | 'pods-cgroup flag';
}

export interface NodeCgroupSettings {
  /** --cgroup-root: set by local mode (and tests); absent in cluster mode, which needs /sys/fs/cgroup to be cgroup v2. */
  readonly cgroupRoot?: string;
  /** --pods-cgroup: the attach point; else the kubelet's pod root, discovered from the agent's own pod. */
  readonly podsCgroup?: string;
  /** The agent's pod UID (downward API), to find its own pod cgroup. */
  readonly podUid?: string;
}

/** What the decision reads from the machine (tests pass text). */
export interface NodeCgroupFacts {
  readonly mounts: readonly Mount[];
  /** Text of /proc/self/cgroup. */
  readonly procSelfCgroup: string;
}

export function readNodeCgroupFacts(): NodeCgroupFacts {
  return { mounts: mounts(), procSelfCgroup: readFileSync('/proc/self/cgroup', 'utf8') };
}

function within(path: string, root: string): boolean {
  const r = relative(root, path);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

/**
 * The agent's cgroup facts. Cluster mode (no --cgroup-root) requires the unified hierarchy at
 * /sys/fs/cgroup. With the pod UID, the kubelet's layout and pod root are read off the agent's own
 * cgroup; --pods-cgroup then only narrows the attach point and must lie at or below that root (an
 * attach point above it would redirect the node's own processes). Without the UID, --pods-cgroup is
 * taken as the kubelet's pod root and its name gives the driver.
 */
export function resolveNodeCgroups(s: NodeCgroupSettings, facts: NodeCgroupFacts): NodeCgroups {
  const cgroupRoot = s.cgroupRoot ?? requireUnifiedCgroup(facts.mounts);
  let ownCgroup: string | undefined;
  try {
    ownCgroup = join(cgroupRoot, unifiedCgroupPath(facts.procSelfCgroup));
  } catch (err) {
    if (s.podUid !== undefined) throw err;
  }
  if (s.podUid !== undefined) {
    const own = layoutFromOwnPod(facts.procSelfCgroup, s.podUid, cgroupRoot);
    const podsCgroup = s.podsCgroup ?? own.layout.podRoot;
    if (!within(podsCgroup, own.layout.podRoot)) {
      throw new AmbitError(
        ErrorCode.PRECONDITION,
        `--pods-cgroup ${podsCgroup} is not the kubelet's pod root ${own.layout.podRoot} or below it (found from pod ${s.podUid} in /proc/self/cgroup): redirection attached there would reach processes that are not pods`,
      );
    }
    return {
      cgroupRoot,
      podsCgroup,
      layout: own.layout,
      ...(ownCgroup === undefined ? {} : { ownCgroup }),
      discoveredFrom: 'own pod',
    };
  }
  if (s.podsCgroup === undefined) {
    throw new AmbitError(
      ErrorCode.USAGE,
      'the node agent needs its pod UID (POD_UID from the downward API metadata.uid, or --pod-uid) to find the kubelet pod root, or --pods-cgroup',
    );
  }
  if (!within(s.podsCgroup, cgroupRoot) || s.podsCgroup === cgroupRoot) {
    throw new AmbitError(
      ErrorCode.PRECONDITION,
      `--pods-cgroup ${s.podsCgroup} is not below the cgroup v2 mount ${cgroupRoot}`,
    );
  }
  return {
    cgroupRoot,
    podsCgroup: s.podsCgroup,
    layout: layoutFromPodRoot(s.podsCgroup),
    ...(ownCgroup === undefined ? {} : { ownCgroup }),
    discoveredFrom: 'pods-cgroup flag',
  };
}
