import { existsSync } from 'node:fs';
import { join, posix } from 'node:path';
import { QOS_CLASSES, type QosClass } from '../config/kube-types.js';
import { AmbitError, ErrorCode } from '../errors.js';

/*
 * Where the kubelet puts a pod's cgroup (cgroup v2), and where the container runtime puts its containers.
 *
 * The kubelet names cgroups as lists of parts: its pod root is `[...cgroupRoot, "kubepods"]`, a Burstable
 * or BestEffort pod is `[...root, "burstable"|"besteffort", "pod<uid>"]` and a Guaranteed pod sits
 * directly in the root: `[...root, "pod<uid>"]`. The cgroup driver turns a name into a path:
 * - cgroupfs: the parts are directories (`kubepods/burstable/pod<uid>`, the UID as the API spells it);
 * - systemd: each part becomes a slice nested in the slice of its prefix, with `-` inside a part
 *   escaped as `_` (`kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with _>.slice`).
 *   kind runs its kubelet with `cgroupRoot: /kubelet`, so its pod root is
 *   `kubelet.slice/kubelet-kubepods.slice` and every slice below it is prefixed `kubelet-kubepods-`.
 * Containers are children of the pod cgroup: containerd names them `cri-containerd-<id>.scope`
 * (systemd) or `<id>` (cgroupfs), CRI-O `crio-<id>.scope` or `crio-<id>`.
 *
 * None of this is assumed by the agent: the driver, the root and its nesting are read off the agent's
 * own pod cgroup (layoutFromOwnPod: from /proc/self/cgroup in the host's cgroup namespace, else found
 * by the pod UID in the host's hierarchy), then every other pod's path follows (podCgroupPath).
 */

export type CgroupDriver = 'systemd' | 'cgroupfs';
export type ContainerRuntime = 'containerd' | 'cri-o';

/** How this node's kubelet lays out pod cgroups. */
export interface KubeletCgroupLayout {
  readonly driver: CgroupDriver;
  /** Absolute directory of the kubelet's pod root (`.../kubepods.slice`, `.../kubepods`): every pod is below it. */
  readonly podRoot: string;
  /**
   * systemd only: the pod root's unit name without `.slice` (`kubepods`, `kubelet-kubepods`), which
   * prefixes every slice below it.
   */
  readonly slicePrefix?: string;
}

/** A pod, as far as its cgroup path goes. */
export interface KubeletPod {
  /** Either spelling: the API's (dashes) or the systemd one (underscores). */
  readonly uid: string;
  readonly qosClass: QosClass;
}

/** What a process's cgroup says about its pod. */
export interface PodCgroupFacts {
  readonly layout: KubeletCgroupLayout;
  readonly qosClass: QosClass;
  /** Absolute directory of the pod's cgroup. */
  readonly podCgroup: string;
  /** The container cgroup below the pod, when the path goes that deep and names a known runtime. */
  readonly container?: { readonly runtime: ContainerRuntime; readonly id: string };
}

const UID = /^[0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12}$/;

/** The UID as the API spells it (dashes), from either spelling; throws on something that is not a UID. */
export function canonicalPodUid(uid: string): string {
  if (!UID.test(uid))
    throw new AmbitError(ErrorCode.CONFIG_INVALID, `pod UID ${JSON.stringify(uid)} is not a UUID`);
  return uid.toLowerCase().replaceAll('_', '-');
}

/** The UID as the systemd driver escapes it (underscores). */
export function systemdPodUid(uid: string): string {
  return canonicalPodUid(uid).replaceAll('-', '_');
}

function qosPart(qos: QosClass): string | undefined {
  return qos === 'Guaranteed' ? undefined : qos.toLowerCase();
}

/** The pod's cgroup directory (absolute) in a layout. */
export function podCgroupPath(layout: KubeletCgroupLayout, pod: KubeletPod): string {
  const qos = qosPart(pod.qosClass);
  if (layout.driver === 'cgroupfs') {
    const leaf = `pod${canonicalPodUid(pod.uid)}`;
    return qos === undefined ? join(layout.podRoot, leaf) : join(layout.podRoot, qos, leaf);
  }
  const p = layout.slicePrefix ?? 'kubepods';
  const leaf = `pod${systemdPodUid(pod.uid)}`;
  return qos === undefined
    ? join(layout.podRoot, `${p}-${leaf}.slice`)
    : join(layout.podRoot, `${p}-${qos}.slice`, `${p}-${qos}-${leaf}.slice`);
}

/** The directory name of a container's cgroup below its pod cgroup. */
export function containerCgroupName(driver: CgroupDriver, runtime: ContainerRuntime, id: string): string {
  if (runtime === 'containerd') return driver === 'systemd' ? `cri-containerd-${id}.scope` : id;
  return driver === 'systemd' ? `crio-${id}.scope` : `crio-${id}`;
}

function parseContainer(name: string | undefined): PodCgroupFacts['container'] {
  if (name === undefined) return undefined;
  const m =
    /^cri-containerd-([0-9a-f]+)\.scope$/.exec(name) ??
    /^([0-9a-f]{64})$/.exec(name) ??
    /^crio-([0-9a-f]+)(?:\.scope)?$/.exec(name);
  if (m === null || m[1] === undefined) return undefined;
  return { runtime: name.startsWith('crio-') ? 'cri-o' : 'containerd', id: m[1] };
}

/**
 * The kubelet's layout, read off the cgroup of a process of pod `uid` (a path below the cgroup v2
 * mount `mount`, as /proc/<pid>/cgroup spells it). The pod's part of the path decides the driver
 * (`...-pod<uid_>.slice` or `pod<uid>`), the QoS class (the part above it) and the pod root (above
 * that); parts below it are the container's. Throws when the path does not hold the pod.
 */
export function layoutFromPodCgroup(path: string, uid: string, mount = '/'): PodCgroupFacts {
  const dashed = canonicalPodUid(uid);
  const underscored = systemdPodUid(uid);
  const parts = path.split('/').filter((p) => p !== '');
  const fail = (why: string): never => {
    throw new AmbitError(
      ErrorCode.PRECONDITION,
      `cgroup ${JSON.stringify(path)}: ${why} (looked for a part "pod${dashed}" (cgroupfs driver) or "<prefix>-pod${underscored}.slice" (systemd driver))`,
    );
  };
  const at = parts.findIndex((p) => p === `pod${dashed}` || p.endsWith(`-pod${underscored}.slice`));
  if (at < 0) return fail(`no part names pod ${dashed}`);
  const leaf = parts[at] as string;
  const container = parseContainer(parts[at + 1]);
  const facts = (layout: KubeletCgroupLayout, qosClass: QosClass, rootParts: number): PodCgroupFacts => {
    if (rootParts <= 0) fail('the pod cgroup has no kubelet pod root above it');
    return {
      layout,
      qosClass,
      podCgroup: join(mount, ...parts.slice(0, at + 1)),
      ...(container === undefined ? {} : { container }),
    };
  };
  if (leaf === `pod${dashed}`) {
    const parent = parts[at - 1];
    const qos = QOS_CLASSES.find((q) => q !== 'Guaranteed' && qosPart(q) === parent);
    const rootParts = qos === undefined ? at : at - 1;
    return facts(
      { driver: 'cgroupfs', podRoot: join(mount, ...parts.slice(0, rootParts)) },
      qos ?? 'Guaranteed',
      rootParts,
    );
  }
  const head = leaf.slice(0, -`-pod${underscored}.slice`.length);
  const qos = QOS_CLASSES.find((q) => {
    const part = qosPart(q);
    return part !== undefined && head.endsWith(`-${part}`);
  });
  const prefix = qos === undefined ? head : head.slice(0, -`-${qosPart(qos)}`.length);
  const rootParts = qos === undefined ? at : at - 1;
  if (qos !== undefined && parts[at - 1] !== `${head}.slice`)
    fail(`the pod slice ${leaf} is not inside ${head}.slice`);
  if (parts[rootParts - 1] !== `${prefix}.slice`)
    fail(`the pod slice ${leaf} is not below the kubelet's pod root ${prefix}.slice`);
  return facts(
    { driver: 'systemd', podRoot: join(mount, ...parts.slice(0, rootParts)), slicePrefix: prefix },
    qos ?? 'Guaranteed',
    rootParts,
  );
}

/**
 * The layout of a kubelet pod root given by its path (the attach point passed as a flag): a `.slice`
 * is the systemd driver's (its unit name prefixes the slices below), anything else cgroupfs.
 */
export function layoutFromPodRoot(podRoot: string): KubeletCgroupLayout {
  const base = posix.basename(podRoot);
  return base.endsWith('.slice') && base.length > '.slice'.length
    ? { driver: 'systemd', podRoot, slicePrefix: base.slice(0, -'.slice'.length) }
    : { driver: 'cgroupfs', podRoot };
}

/**
 * The unified (cgroup v2) path of a process, from the text of /proc/<pid>/cgroup (`0::<path>`).
 * `file` names the file in errors.
 */
export function unifiedCgroupPath(procCgroup: string, file = '/proc/self/cgroup'): string {
  for (const line of procCgroup.split('\n')) if (line.startsWith('0::')) return line.slice(3);
  throw new AmbitError(
    ErrorCode.PRECONDITION,
    `${file} has no cgroup v2 line ("0::<path>"): this process is not in a cgroup v2 hierarchy`,
  );
}

/** Whether a cgroup directory name is the pod cgroup of `uid`, in either driver's spelling. */
export function namesPodCgroup(name: string, uid: string): boolean {
  return name === `pod${canonicalPodUid(uid)}` || name.endsWith(`-pod${systemdPodUid(uid)}.slice`);
}

/**
 * How deep below the cgroup v2 mount the search for a pod cgroup goes: kind's
 * `kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-<qos>.slice/<pod>.slice` is 4 levels, and
 * a kubelet `cgroupRoot` may nest it a little deeper.
 */
export const POD_CGROUP_SEARCH_DEPTH = 6;

const OTHER_POD = /^pod[0-9a-fA-F-]{36}$|-pod[0-9a-fA-F_]{36}\.slice$/;

/**
 * The cgroup of pod `uid` found by name below the cgroup v2 mount `mount` (breadth first, at most
 * `maxDepth` levels), as a path relative to the mount (`/kubepods.slice/...`), or undefined.
 * `subdirs` lists the cgroup directories directly below one. Pod cgroups of other pods are not
 * entered: the search stops at pods, it never walks their containers.
 */
export function findPodCgroup(
  mount: string,
  uid: string,
  subdirs: (dir: string) => readonly string[],
  maxDepth = POD_CGROUP_SEARCH_DEPTH,
): string | undefined {
  let level: string[] = [''];
  for (let depth = 1; depth <= maxDepth && level.length > 0; depth++) {
    const next: string[] = [];
    for (const rel of level) {
      for (const name of subdirs(join(mount, rel))) {
        const child = `${rel}/${name}`;
        if (namesPodCgroup(name, uid)) return child;
        if (!OTHER_POD.test(name)) next.push(child);
      }
    }
    level = next;
  }
  return undefined;
}

/** The agent's own pod cgroup and where it was learnt. */
export interface OwnPodCgroup extends PodCgroupFacts {
  /**
   * `/proc/self/cgroup` when the agent shares the host's cgroup namespace (its unified line is the
   * host path); `search` when that line does not hold the pod (a private cgroup namespace reads
   * `0::/`) and the pod cgroup was found by name in the host's hierarchy.
   */
  readonly foundBy: 'proc-self-cgroup' | 'search';
  /** The agent's own cgroup: its container's (from /proc/self/cgroup), else its pod's (search). */
  readonly ownCgroup: string;
}

/**
 * The layout from the agent's own pod, whose UID comes from the downward API. A container that is
 * not privileged gets a private cgroup namespace (the runtimes' default on cgroup v2), where
 * /proc/self/cgroup reads `0::/` and says nothing about the pod. The host's cgroup v2 mount (the
 * hostPath /sys/fs/cgroup, at `mount`) still shows the host's whole tree, so the pod cgroup is then
 * looked up by name in it (findPodCgroup). Errors say which file was read, where the search went and
 * what was looked for.
 */
export function layoutFromOwnPod(
  procCgroup: string,
  uid: string,
  mount: string,
  subdirs: (dir: string) => readonly string[],
  file = '/proc/self/cgroup',
): OwnPodCgroup {
  const path = unifiedCgroupPath(procCgroup, file);
  let fromProc: Error;
  try {
    const facts = layoutFromPodCgroup(path, uid, mount);
    return { ...facts, foundBy: 'proc-self-cgroup', ownCgroup: join(mount, path) };
  } catch (err) {
    fromProc = err as Error;
  }
  const found = findPodCgroup(mount, uid, subdirs);
  if (found !== undefined) {
    const facts = layoutFromPodCgroup(found, uid, mount);
    return { ...facts, foundBy: 'search', ownCgroup: facts.podCgroup };
  }
  const why =
    path === '/'
      ? '"0::/": a private cgroup namespace, which names no pod'
      : `the unified line "0::${path}" does not hold this pod's cgroup (${fromProc.message})`;
  throw new AmbitError(
    ErrorCode.PRECONDITION,
    `cannot find the cgroup of this pod ${canonicalPodUid(uid)}: ${file} reads ${why}, and no directory "pod${canonicalPodUid(uid)}" (cgroupfs driver) or "<prefix>-pod${systemdPodUid(uid)}.slice" (systemd driver) is within ${POD_CGROUP_SEARCH_DEPTH} levels below ${mount}. Is ${mount} the host's cgroup v2 mount (hostPath /sys/fs/cgroup), and POD_UID this pod's downward API metadata.uid?`,
    { cause: fromProc },
  );
}

/**
 * A pod's cgroup when its QoS class is not known yet (a CNI ADD can come before the API reports
 * status.qosClass): the one candidate directory that exists. Returns undefined when none does, and
 * names every candidate in `tried`.
 */
export function probePodCgroup(
  layout: KubeletCgroupLayout,
  uid: string,
  exists: (path: string) => boolean = existsSync,
): { readonly path?: string; readonly qosClass?: QosClass; readonly tried: readonly string[] } {
  const tried: string[] = [];
  for (const qosClass of QOS_CLASSES) {
    const path = podCgroupPath(layout, { uid, qosClass });
    tried.push(path);
    if (exists(path)) return { path, qosClass, tried };
  }
  return { tried };
}
