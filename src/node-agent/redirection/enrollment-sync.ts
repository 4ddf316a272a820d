import type { PodRedirectConfig } from '../../bpf/redirect-maps.js';
import { cgroupId, cgroupTree } from '../../os/cgroup.js';
import type { Logger } from '../../telemetry/logger.js';
import type { Enrollment } from './enrollment.js';

/** The part of RedirectPrograms that enrollment needs (so tests can use a fake). */
export interface EnrollmentTarget {
  enrolled(): Map<bigint, PodRedirectConfig>;
  enroll(id: bigint, config: PodRedirectConfig): void;
  unenroll(id: bigint): void;
}

export interface SyncResult {
  readonly enrolled: readonly string[];
  readonly updated: readonly string[];
  readonly unenrolled: number;
  /** Pod name by cgroup id, for every pod enrolled after the sync that the cluster view names. */
  readonly names: ReadonlyMap<bigint, string>;
  /** The addresses of those pods. */
  readonly ips: ReadonlyMap<bigint, readonly string[]>;
}

export interface SyncInputs {
  readonly desired: readonly Enrollment[];
  /** Cgroup paths of every pod of this node the cluster view knows, enrolled or not. */
  readonly knownPods: readonly string[];
  /** The attach point: every pod cgroup of the node is below it. */
  readonly podsCgroup: string;
}

function sameConfig(a: PodRedirectConfig, b: PodRedirectConfig): boolean {
  const same = (x: readonly unknown[], y: readonly unknown[]): boolean =>
    x.length === y.length && x.every((v, i) => v === y[i]);
  return (
    a.workloadId === b.workloadId &&
    same(a.excludedPorts, b.excludedPorts) &&
    same(a.excludedCidrs, b.excludedCidrs)
  );
}

function idOf(path: string): bigint | undefined {
  try {
    return cgroupId(path);
  } catch {
    return undefined;
  }
}

/**
 * Makes the kernel's set of enrolled cgroups follow the cluster: adds and updates what is missing or
 * different, and removes pods that are no longer wanted (a namespace unlabelled, an opt-out) or gone
 * (their cgroup no longer exists), including entries left by an earlier agent. A pod that the cluster view
 * does not know yet but whose cgroup exists stays enrolled: the CNI step enrolled it before its
 * containers started, and the cluster API has not caught up. Live pods switch in and out without a
 * restart: their next connect() sees the change.
 */
export function syncEnrollment(target: EnrollmentTarget, input: SyncInputs, log: Logger): SyncResult {
  const current = target.enrolled();
  const wanted = new Map<bigint, Enrollment>();
  for (const e of input.desired) {
    const id = idOf(e.cgroup);
    if (id === undefined) {
      log.warn({ pod: e.pod, cgroup: e.cgroup }, 'the pod cgroup does not exist (yet); not enrolled');
      continue;
    }
    for (const w of e.warnings) log.warn({ pod: e.pod }, w);
    wanted.set(id, e);
  }
  const known = new Set(input.knownPods.map(idOf).filter((id) => id !== undefined));
  const existing = new Set(cgroupTree(input.podsCgroup).map(idOf));
  const enrolled: string[] = [];
  const updated: string[] = [];
  let unenrolled = 0;
  for (const [id, e] of wanted) {
    const have = current.get(id);
    if (have !== undefined && sameConfig(have, e.config)) continue;
    target.enroll(id, e.config);
    (have === undefined ? enrolled : updated).push(e.pod);
    log.info(
      { pod: e.pod, cgroupId: id.toString(), excluded: e.config },
      have === undefined ? 'pod enrolled' : 'pod redirection updated',
    );
  }
  for (const id of current.keys()) {
    if (wanted.has(id)) continue;
    if (!known.has(id) && existing.has(id)) continue;
    target.unenroll(id);
    unenrolled++;
    log.info(
      { cgroupId: id.toString(), reason: known.has(id) ? 'no longer in the mesh' : 'pod gone' },
      'pod unenrolled',
    );
  }
  return {
    enrolled,
    updated,
    unenrolled,
    names: new Map([...wanted].map(([id, e]) => [id, e.pod])),
    ips: new Map([...wanted].map(([id, e]) => [id, e.ips])),
  };
}
