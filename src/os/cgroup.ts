import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { AmbitError, ErrorCode } from '../errors.js';
import { run } from './run-command.js';

/** Where Ambit mounts a cgroup v2 hierarchy on machines that only have cgroup v1 mounted. */
export const OWN_CGROUP2_MOUNT = '/run/ambit-cgroup2';

/** A mount from /proc/self/mountinfo. */
export interface Mount {
  readonly mountPoint: string;
  readonly fstype: string;
}

/** Every mount of /proc/self/mountinfo, in its order. */
export function mounts(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): Mount[] {
  const out: Mount[] = [];
  for (const line of mountinfo.split('\n')) {
    // fields: id parent major:minor root mountpoint options ... - fstype source superoptions
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    const mountPoint = line.split(' ')[4];
    if (fstype !== undefined && mountPoint !== undefined)
      out.push({ mountPoint: mountPoint.replace(/\\040/g, ' '), fstype });
  }
  return out;
}

/** Mount points of cgroup v2 hierarchies, from /proc/self/mountinfo. */
export function cgroup2Mounts(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  return mounts(mountinfo)
    .filter((m) => m.fstype === 'cgroup2')
    .map((m) => m.mountPoint);
}

/** Where cluster mode needs the unified cgroup v2 hierarchy (what the kubelet and the runtimes use). */
export const UNIFIED_CGROUP_MOUNT = '/sys/fs/cgroup';

/**
 * The unified hierarchy at /sys/fs/cgroup, or an error naming what the host has instead: cgroup v1
 * controllers under a tmpfs (legacy), with or without a cgroup2 mount at /sys/fs/cgroup/unified (hybrid).
 * `why` says what asked: an agent running as a pod (cluster mode, where only booting the node with
 * cgroup v2 helps) or one given /sys/fs/cgroup as its root (which may name another mount instead).
 */
export function requireUnifiedCgroup(all: readonly Mount[], why: 'pod' | 'root' = 'pod'): string {
  // The last mount on a path is the one in effect.
  const top = all.filter((m) => m.mountPoint === UNIFIED_CGROUP_MOUNT).at(-1);
  if (top?.fstype === 'cgroup2') return UNIFIED_CGROUP_MOUNT;
  const v2 = all.filter((m) => m.fstype === 'cgroup2').map((m) => m.mountPoint);
  const v1 = all.filter((m) => m.fstype === 'cgroup').length;
  const found =
    top === undefined
      ? `nothing is mounted at ${UNIFIED_CGROUP_MOUNT}`
      : `${UNIFIED_CGROUP_MOUNT} is ${top.fstype}`;
  const kind =
    v1 > 0 && v2.length > 0
      ? `a hybrid host (${v1} cgroup v1 hierarchies, cgroup2 at ${v2.join(', ')})`
      : v1 > 0
        ? `a cgroup v1 host (${v1} cgroup v1 hierarchies, no cgroup2)`
        : v2.length > 0
          ? `cgroup2 only at ${v2.join(', ')}`
          : 'no cgroup hierarchy mounted';
  throw new AmbitError(
    ErrorCode.PRECONDITION,
    why === 'pod'
      ? `cluster mode (the node agent runs as a pod) needs the unified cgroup v2 hierarchy at ${UNIFIED_CGROUP_MOUNT} (what the kubelet and the container runtime put pods in); ${found}: ${kind}. Boot the node with cgroup v2 only (systemd.unified_cgroup_hierarchy=1)`
      : `--cgroup-root ${UNIFIED_CGROUP_MOUNT} needs the unified cgroup v2 hierarchy at ${UNIFIED_CGROUP_MOUNT}; ${found}: ${kind}. Boot the host with cgroup v2 only (systemd.unified_cgroup_hierarchy=1), or, without a pod UID (local mode), pass --cgroup-root with a cgroup2 mount${v2.length > 0 ? ` (${v2.join(', ')})` : ''}`,
  );
}

/**
 * The cgroup v2 root to use: the configured one, else /sys/fs/cgroup when it is cgroup v2 (real
 * nodes), else another cgroup v2 mount (hybrid hosts mount it at /sys/fs/cgroup/unified), else none.
 */
export function detectCgroup2Root(configured?: string, mounts = cgroup2Mounts()): string | undefined {
  if (configured !== undefined && configured !== '') return configured;
  if (mounts.includes('/sys/fs/cgroup')) return '/sys/fs/cgroup';
  return mounts[0];
}

/** Finds the cgroup v2 root, mounting one of Ambit's own when the machine has none. */
export async function ensureCgroup2Root(configured?: string): Promise<string> {
  const found = detectCgroup2Root(configured);
  if (found !== undefined) {
    if (!existsSync(join(found, 'cgroup.procs'))) {
      throw new AmbitError(
        ErrorCode.PRECONDITION,
        `${found} is not a cgroup v2 hierarchy (no cgroup.procs); set AMBIT_CGROUP2_ROOT`,
      );
    }
    return found;
  }
  mkdirSync(OWN_CGROUP2_MOUNT, { recursive: true });
  await run('mount', ['-t', 'cgroup2', 'none', OWN_CGROUP2_MOUNT]);
  return OWN_CGROUP2_MOUNT;
}

export function createCgroup(path: string): void {
  mkdirSync(path, { recursive: true });
}

/** The cgroup id the kernel (and bpf_get_current_cgroup_id) uses: the directory's inode number. */
export function cgroupId(path: string): bigint {
  return statSync(path, { bigint: true }).ino;
}

export function cgroupPids(path: string): number[] {
  try {
    return readFileSync(join(path, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/** Every cgroup directory under `path` (inclusive), deepest first. */
export function cgroupTree(path: string): string[] {
  if (!existsSync(path)) return [];
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
    out.push(dir);
  };
  walk(path);
  return out;
}

/**
 * Kills every process in a cgroup subtree: `cgroup.kill` where the kernel has it (5.14+), else
 * SIGKILL to each PID listed in the tree. Returns the PIDs that were signalled.
 */
export function killCgroupTree(path: string): number[] {
  const tree = cgroupTree(path);
  const pids = tree.flatMap(cgroupPids);
  const killFile = join(path, 'cgroup.kill');
  if (existsSync(killFile)) {
    try {
      writeFileSync(killFile, '1');
      return pids;
    } catch {
      // fall through to per-PID signals
    }
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return pids;
}

/** Removes a cgroup subtree (it must hold no processes). Missing directories are fine. */
export function removeCgroupTree(path: string): void {
  for (const dir of cgroupTree(path)) {
    try {
      rmdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
