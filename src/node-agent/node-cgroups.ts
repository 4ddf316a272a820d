import { readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { AmbitError, ErrorCode } from '../errors.js';
import { type Mount, mounts, requireUnifiedCgroup, UNIFIED_CGROUP_MOUNT } from '../os/cgroup.js';
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
  /**
   * How the layout was learnt, for the start log: the agent's pod cgroup from /proc/self/cgroup (the
   * host's cgroup namespace) or found by its UID in the host's hierarchy (a private one), or the flag.
   */
  readonly discoveredFrom: 'own pod (/proc/self/cgroup)' | 'own pod (search)' | 'pods-cgroup flag';
}

export interface NodeCgroupSettings {
  /**
   * --cgroup-root: the cgroup v2 mount (default /sys/fs/cgroup). Whatever it says, an agent that runs
   * as a pod (a pod UID) or at /sys/fs/cgroup requires the unified hierarchy there.
   */
  readonly cgroupRoot?: string;
  /**
   * --pods-cgroup: with the pod UID an override of the attach point, checked to be the discovered pod
   * root or below it; without it (local mode) the kubelet's pod root itself.
   */
  readonly podsCgroup?: string;
  /** The agent's pod UID (downward API), to find its own pod cgroup. */
  readonly podUid?: string;
}

/** What the decision reads from the machine (tests pass text). */
export interface NodeCgroupFacts {
  readonly mounts: readonly Mount[];
  /** Text of /proc/self/cgroup. */
  readonly procSelfCgroup: string;
  /** The cgroup directories directly below a directory of the cgroup v2 mount (names; none when unreadable). */
  readonly subdirs: (dir: string) => readonly string[];
}

/** The names of the directories directly in `dir`; none when it cannot be read. */
export function subdirectories(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

export function readNodeCgroupFacts(): NodeCgroupFacts {
  return {
    mounts: mounts(),
    procSelfCgroup: readFileSync('/proc/self/cgroup', 'utf8'),
    subdirs: subdirectories,
  };
}

function within(path: string, root: string): boolean {
  const r = relative(root, path);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

/**
 * The agent's cgroup facts. An agent that runs as a pod (its pod UID given: cluster mode) and any
 * agent told to use /sys/fs/cgroup requires the unified hierarchy there (a v1 or hybrid host is
 * refused with what it has); local mode names its own cgroup v2 mount and no pod UID. With the pod
 * UID, the kubelet's layout and pod root are read off the agent's own pod cgroup (layoutFromOwnPod:
 * /proc/self/cgroup, else found by name below the mount); --pods-cgroup then only overrides the attach
 * point and must lie at or below that root (an attach point above it would redirect the node's own
 * processes). Without the UID, --pods-cgroup is taken as the kubelet's pod root and its name gives the
 * driver.
 */
export function resolveNodeCgroups(s: NodeCgroupSettings, facts: NodeCgroupFacts): NodeCgroups {
  const cgroupRoot = s.cgroupRoot ?? UNIFIED_CGROUP_MOUNT;
  if (s.podUid !== undefined || cgroupRoot === UNIFIED_CGROUP_MOUNT)
    requireUnifiedCgroup(facts.mounts, s.podUid !== undefined ? 'pod' : 'root');
  if (s.podUid !== undefined) {
    const own = layoutFromOwnPod(facts.procSelfCgroup, s.podUid, cgroupRoot, facts.subdirs);
    const podsCgroup = s.podsCgroup ?? own.layout.podRoot;
    if (!within(podsCgroup, own.layout.podRoot)) {
      throw new AmbitError(
        ErrorCode.PRECONDITION,
        `--pods-cgroup ${podsCgroup} is not the kubelet's pod root ${own.layout.podRoot} or below it (the root above this agent's pod cgroup ${own.podCgroup}, pod ${s.podUid}): redirection attached there would reach processes that are not pods. Drop --pods-cgroup to attach at the discovered root`,
      );
    }
    return {
      cgroupRoot,
      podsCgroup,
      layout: own.layout,
      ownCgroup: own.ownCgroup,
      discoveredFrom: own.foundBy === 'search' ? 'own pod (search)' : 'own pod (/proc/self/cgroup)',
    };
  }
  let ownCgroup: string | undefined;
  try {
    ownCgroup = join(cgroupRoot, unifiedCgroupPath(facts.procSelfCgroup));
  } catch {
    // Not in a cgroup v2 hierarchy: nothing of the agent's to keep out.
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
