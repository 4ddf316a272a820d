import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { AmbitError, ErrorCode } from '../errors.js';
import { clusterPaths } from '../local/layout.js';
import { type LocalState, type PodState, readState } from '../local/state.js';
import { type CliSettings, checkClusterName } from './settings.js';

/** What the `ambit local` commands share: root, the cluster name, the running cluster's state, files. */

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new AmbitError(
      ErrorCode.PRECONDITION,
      'ambit local needs root (it creates network namespaces and cgroups); run it with sudo',
    );
  }
}

export function clusterFlag(values: { name?: string | undefined }, s: CliSettings): string {
  const name = values.name ?? s.cluster;
  checkClusterName(name, '--name');
  return name;
}

export function loadRunning(s: CliSettings, cluster: string): LocalState {
  const state = readState(clusterPaths(s.runRoot, cluster).state);
  if (state === undefined) {
    throw new AmbitError(
      ErrorCode.LOCAL_STATE,
      `no local cluster "${cluster}" is running (start one with \`ambit local up <dir>\`)`,
    );
  }
  return state;
}

/** Reads a file from `offset` on (empty when it does not exist). */
export function readFrom(path: string, offset: number): { text: string; bytes: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { text: '', bytes: 0 };
  }
  try {
    const size = statSync(path).size;
    if (size <= offset) return { text: '', bytes: 0 };
    const buf = Buffer.alloc(size - offset);
    const n = readSync(fd, buf, 0, buf.length, offset);
    return { text: buf.subarray(0, n).toString('utf8'), bytes: n };
  } finally {
    closeSync(fd);
  }
}

/** `Running, container web waiting (CrashLoopBackOff, exit 1), 3 restarts`. */
export function describePod(p: PodState): string {
  const c = p.containers.find((x) => !x.ready);
  if (c === undefined) return p.phase;
  return `${p.phase}, container ${c.name} ${c.state}${c.reason === undefined ? '' : ` (${c.reason}${c.exitCode === undefined ? '' : `, exit ${c.exitCode}`})`}${c.restarts > 0 ? `, ${c.restarts} restarts` : ''}`;
}

/** The running local cluster named by `--name` (or the default). */
export function loadState(s: CliSettings, name: string | undefined): LocalState {
  const cluster = name ?? s.cluster;
  checkClusterName(cluster, '--name');
  return loadRunning(s, cluster);
}
