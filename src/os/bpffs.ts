import { mkdirSync, readFileSync } from 'node:fs';
import { AmbitError, ErrorCode } from '../errors.js';
import { run } from './run-command.js';

export const BPFFS = '/sys/fs/bpf';

/** Mount points of bpffs, from /proc/self/mountinfo. */
export function bpffsMounts(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  return mountinfo
    .split('\n')
    .filter((l) => l.includes(' - bpf '))
    .map((l) => l.split(' ')[4]!)
    .filter((m) => m !== undefined);
}

/**
 * Pure: what ensureBpffs does for `dir` given the bpffs mount points: nothing (`mounted`), or mount
 * one at /sys/fs/bpf (`mount`); throws when it may not. A mount made by the agent lands in its own
 * mount namespace: on a host (local mode) that is the host's, but in a container it is the
 * container's, invisible to the node proxy and the cleanup pod, and gone with the agent together with
 * every pin in it. So `mayMount: false` (the agent runs as a pod) refuses instead.
 */
export function bpffsPlan(
  dir: string,
  mountPoints: readonly string[],
  mayMount: boolean,
): 'mounted' | 'mount' {
  if (mountPoints.some((m) => dir === m || dir.startsWith(`${m}/`))) return 'mounted';
  if (!dir.startsWith(BPFFS)) {
    throw new AmbitError(
      ErrorCode.PRECONDITION,
      `${dir} is not on a bpffs mount; mount one (mount -t bpf bpf <dir>)`,
    );
  }
  if (!mayMount) throw bpffsMissingInPod(dir);
  return 'mount';
}

/** Mounts bpffs at /sys/fs/bpf when the machine has not (some hosts do not mount it by default); see bpffsPlan. */
export async function ensureBpffs(dir: string, opts: { readonly mayMount?: boolean } = {}): Promise<void> {
  if (bpffsPlan(dir, bpffsMounts(), opts.mayMount ?? true) === 'mounted') return;
  mkdirSync(BPFFS, { recursive: true });
  await run('mount', ['-t', 'bpf', 'bpf', BPFFS]);
}

/** The error of an agent running as a pod whose hostPath /sys/fs/bpf is not the host's bpffs. */
export function bpffsMissingInPod(dir: string): AmbitError {
  return new AmbitError(
    ErrorCode.PRECONDITION,
    `${dir} is not on a bpffs mount, and the node agent runs as a pod: a bpffs it mounted would be private to its container (the node proxy and the cleanup pod would not see the pins, and they would go with the agent). Mount bpffs on the node (mount -t bpf bpf ${BPFFS}, or a systemd sys-fs-bpf.mount unit), then restart the pod`,
  );
}
