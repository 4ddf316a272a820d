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

/** Mounts bpffs at /sys/fs/bpf when the machine has not (some hosts do not mount it by default). */
export async function ensureBpffs(dir: string): Promise<void> {
  if (bpffsMounts().some((m) => dir === m || dir.startsWith(`${m}/`))) return;
  if (!dir.startsWith(BPFFS)) {
    throw new AmbitError(
      ErrorCode.PRECONDITION,
      `${dir} is not on a bpffs mount; mount one (mount -t bpf bpf <dir>)`,
    );
  }
  mkdirSync(BPFFS, { recursive: true });
  await run('mount', ['-t', 'bpf', 'bpf', BPFFS]);
}
