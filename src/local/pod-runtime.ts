import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AmbitError, ErrorCode } from '../errors.js';

/*
 * How a local pod runs, mirroring a container runtime's sandbox:
 * - the pod's network namespace and cgroup are created first (the cgroup in the kubelet's layout, each
 *   process in a container scope below it, as containerd places a sandbox and its containers);
 * - a pause process (`sleep infinity`) is started in the sandbox's scope through `ip netns exec`, which gives it a
 *   private mount namespace with the pod's hosts and resolv.conf bind-mounted over /etc; it mounts a private
 *   tmpfs on /tmp, so every pod has its own scratch space like a container's writable layer; the host
 *   folders the pods must still run from (the Ambit installation, when it lives under /tmp) are bound back
 *   read-only over the fresh /tmp, from a descriptor of the host's /tmp opened before the mount;
 * - each container (and `ambit local exec`) joins the pause process's mount and network namespaces with
 *   nsenter, after writing its own PID into its container's cgroup, so the kernel sees it as the pod from its
 *   first instruction (which is what the eBPF redirection keys on).
 * Each step execs the next, so the PID the runtime holds is the application's own.
 */

const SH = '/bin/sh';

/** The PATH of every container and `exec`: a container image's default, not the caller's (no pyenv, no ~/bin). */
export const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
// $0 is the cgroup.procs file; the rest of argv is the command to exec once the process is in the cgroup.
const JOIN_CGROUP = 'echo $$ >"$0" && exec "$@"';

export interface SandboxPaths {
  readonly netns: string;
  /** Absolute cgroup directory of the pod. */
  readonly cgroupDir: string;
  /** Absolute cgroup directory of the pause process: a container scope below the pod's. */
  readonly sandboxCgroupDir: string;
  /** Folder of this pod's logs. */
  readonly podDir: string;
  /** Host folders under /tmp that stay visible (read-only) in the pod, whose /tmp is otherwise its own. */
  readonly keep?: readonly string[];
}

/**
 * The pause process's script: a private /tmp, then every kept folder bound back over it. The host's
 * /tmp is held open as descriptor 3 so that its folders can still be reached once the tmpfs hides
 * them; `mount -c` passes /proc/self/fd/3/... to the kernel as it is, which follows the descriptor.
 * The folders are the script's arguments (no quoting of paths into shell text).
 */
export const PAUSE_SCRIPT = [
  'exec 3</tmp',
  'mount -t tmpfs -o mode=1777,size=256m ambit-pod-tmp /tmp',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
  'for p; do mkdir -p "$p" && mount -c --bind "/proc/self/fd/3/${p#/tmp/}" "$p" && mount -c -o remount,bind,ro "$p" || exit 1; done',
  'exec 3<&-',
  'exec sleep infinity',
].join(' && ');

/** The kept folders the pause script must bind: those under /tmp, outermost only. */
export function foldersToKeep(paths: readonly string[]): string[] {
  const under = [...new Set(paths.map((p) => p.replace(/\/+$/, '')))]
    .filter((p) => p.startsWith('/tmp/') && !p.split('/').includes('..'))
    .sort();
  return under.filter((p, i) => !under.slice(0, i).some((q) => p.startsWith(`${q}/`)));
}

/** Starts the pod's pause process and waits until it holds the pod's namespaces. */
export async function startPause(sb: SandboxPaths): Promise<ChildProcess> {
  mkdirSync(sb.podDir, { recursive: true });
  mkdirSync(sb.sandboxCgroupDir, { recursive: true });
  const log = openSync(join(sb.podDir, 'pause.log'), 'a');
  const child = spawn(
    SH,
    [
      '-c',
      JOIN_CGROUP,
      join(sb.sandboxCgroupDir, 'cgroup.procs'),
      'ip',
      'netns',
      'exec',
      sb.netns,
      SH,
      '-c',
      PAUSE_SCRIPT,
      SH,
      ...foldersToKeep(sb.keep ?? []),
    ],
    { detached: true, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const pid = child.pid;
  if (pid === undefined)
    throw new AmbitError(ErrorCode.COMMAND_FAILED, `cannot start the sandbox of ${sb.netns}`);
  const target = statSync(join('/run/netns', sb.netns)).ino;
  const deadline = Date.now() + 10_000;
  // The pause process is ready when it has become `sleep` (after the tmpfs mount) inside the pod netns.
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new AmbitError(
        ErrorCode.COMMAND_FAILED,
        `the sandbox of ${sb.netns} exited during start: ${readTail(join(sb.podDir, 'pause.log'))}`,
      );
    }
    if (procComm(pid) === 'sleep' && netnsInode(pid) === target) return child;
    if (Date.now() > deadline)
      throw new AmbitError(ErrorCode.TIMEOUT, `the sandbox of ${sb.netns} did not start in 10s`);
    await sleep(5);
  }
}

function procComm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function netnsInode(pid: number): number | undefined {
  try {
    const link = readlinkSync(`/proc/${pid}/ns/net`);
    const m = /\[(\d+)\]/.exec(link);
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

function readTail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-3).join('; ') || 'no output';
  } catch {
    return 'no output';
  }
}

/**
 * argv that runs `command` inside a pod: joins a cgroup (its container's), then the pod's mount and
 * network namespaces.
 */
export function podCommand(
  sb: { cgroupDir: string },
  pausePid: number,
  workingDir: string,
  command: readonly string[],
): string[] {
  return [
    SH,
    '-c',
    JOIN_CGROUP,
    join(sb.cgroupDir, 'cgroup.procs'),
    'nsenter',
    '-t',
    String(pausePid),
    '-m',
    '-n',
    `--wdns=${workingDir}`,
    '--',
    ...command,
  ];
}

/** Starts one container process, in its own cgroup `cgroupDir`, with its output appended to `logFile`. */
export function startContainer(
  pausePid: number,
  c: {
    cgroupDir: string;
    command: readonly string[];
    workingDir: string;
    env: Readonly<Record<string, string>>;
    logFile: string;
  },
): ChildProcess {
  mkdirSync(c.cgroupDir, { recursive: true });
  const log = openSync(c.logFile, 'a');
  const [cmd, ...args] = podCommand(c, pausePid, c.workingDir, c.command);
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', log, log], env: { ...c.env } });
  closeSync(log);
  return child;
}

/** Sends SIGTERM, then SIGKILL after the grace period; resolves when the process has exited. */
export async function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
