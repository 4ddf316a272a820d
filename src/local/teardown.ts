import { existsSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AmbitError, ErrorCode } from '../errors.js';
import { cgroupPids, cgroupTree, killCgroupTree, removeCgroupTree } from '../os/cgroup.js';
import { run } from '../os/run-command.js';
import { netnsEtcDir } from './layout.js';
import { deleteNetns, listNetns } from './network.js';

export interface TeardownReport {
  readonly killed: number[];
  readonly netns: string[];
  readonly cgroups: number;
}

/**
 * Removes everything a local cluster made, found by name rather than from its state file, so that it
 * also works after `up` or the daemon was killed half-way: processes (by cgroup, then by netns),
 * namespaces (their links and nftables tables go with them), cgroups, /etc/netns files, pinned BPF
 * objects and the run folder. Idempotent.
 */
export async function teardownCluster(opts: {
  readonly cluster: string;
  readonly clusterCgroup: string | undefined;
  readonly runDir: string;
  readonly bpfDir?: string;
  /** The calling process, which must not kill itself. */
  readonly selfPid?: number;
}): Promise<TeardownReport> {
  const killed: number[] = [];
  const prefix = `${opts.cluster}.`;
  if (opts.clusterCgroup !== undefined && existsSync(opts.clusterCgroup)) {
    killed.push(...killCgroupTree(opts.clusterCgroup).filter((p) => p !== opts.selfPid));
  }
  const namespaces = listNetns().filter((n) => n.startsWith(prefix));
  // Processes that entered a namespace without joining a cgroup (an interrupted `exec`) are found by netns.
  for (const ns of namespaces) {
    const out = await run('ip', ['netns', 'pids', ns], { okStderr: /./ }).catch(() => '');
    for (const pid of out
      .split('\n')
      .filter((l) => l !== '')
      .map(Number)) {
      if (pid === opts.selfPid || pid === process.pid) continue;
      try {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      } catch {
        // gone already
      }
    }
  }
  if (opts.clusterCgroup !== undefined) await waitEmpty(opts.clusterCgroup, opts.selfPid);
  for (const ns of namespaces) await deleteNetns(ns);
  for (const ns of namespaces) rmSync(netnsEtcDir(ns), { recursive: true, force: true });
  // Each removal is tried even when an earlier one failed, so one stuck object does not leave the
  // rest behind; what failed is reported at the end.
  const failures: string[] = [];
  let cgroups = 0;
  if (opts.clusterCgroup !== undefined) {
    const cg = opts.clusterCgroup;
    cgroups = cgroupTree(cg).length;
    // A killed process can take a moment to leave its cgroup (EBUSY until it has): retry briefly.
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        removeCgroupTree(cg);
        break;
      } catch (err) {
        if (Date.now() > deadline) {
          failures.push(`cgroup ${cg}: ${(err as Error).message}`);
          break;
        }
        killCgroupTree(cg);
        await sleep(50);
      }
    }
  }
  if (opts.bpfDir !== undefined) {
    try {
      rmSync(opts.bpfDir, { recursive: true, force: true });
    } catch (err) {
      failures.push(`pinned BPF objects ${opts.bpfDir}: ${(err as Error).message}`);
    }
  }
  rmSync(opts.runDir, { recursive: true, force: true });
  // Shared parents go too once the last cluster is gone.
  const parents = [dirname(opts.runDir), '/etc/netns'];
  if (opts.clusterCgroup !== undefined) parents.push(dirname(opts.clusterCgroup));
  if (opts.bpfDir !== undefined) parents.push(dirname(opts.bpfDir));
  for (const dir of parents) removeIfEmpty(dir);
  if (failures.length > 0) {
    throw new AmbitError(
      ErrorCode.LOCAL_STATE,
      `could not remove everything of cluster "${opts.cluster}" (run \`ambit local down --name ${opts.cluster}\` again):\n  ${failures.join('\n  ')}`,
    );
  }
  return { killed, netns: namespaces, cgroups };
}

function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // not empty, busy or absent: leave it
  }
}

async function waitEmpty(cgroup: string, selfPid: number | undefined): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const left = cgroupTree(cgroup)
      .flatMap(cgroupPids)
      .filter((p) => p !== selfPid);
    if (left.length === 0) return;
    await sleep(20);
  }
}

/** True when a PID is alive and is the process we think (its cmdline mentions `needle`). */
export function pidAlive(pid: number, needle?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (needle === undefined) return true;
  try {
    return readFileSync(join('/proc', String(pid), 'cmdline'), 'utf8').includes(needle);
  } catch {
    return false;
  }
}
