import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll } from 'vitest';
import type { LocalState } from '../../src/local/state.js';
import { cgroupPids } from '../../src/os/cgroup.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'dist/ctl/main.js');

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the ambit CLI as a user would, and collects its output. */
export function ambit(
  args: readonly string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<RunResult> {
  return runCmd(process.execPath, [CLI, ...args], opts);
}

export function runCmd(
  cmd: string,
  args: readonly string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${cmd} ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 120_000}ms\n${stdout}\n${stderr}`,
        ),
      );
    }, opts.timeoutMs ?? 120_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? (signal === null ? 1 : 128), stdout, stderr });
    });
  });
}

/** Starts the CLI without waiting, for tests that interrupt it. */
export function ambitSpawn(args: readonly string[]): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Polls `check` until it returns a value (not undefined/false), or fails with `what` after the deadline. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
    await sleep(100);
  }
}

const tempDirs: string[] = [];
// Registered while the importing test file is collected, so it runs when that file ends.
afterAll(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/**
 * `ambit local down`, then checks that nothing of the cluster is left (namespaces, cgroups, pinned BPF
 * objects, state): a leftover here would otherwise surface as a confusing failure in a later file.
 */
export async function downCluster(cluster: string): Promise<void> {
  const r = await ambit(['local', 'down', '--name', cluster]);
  const left = [
    ...netnsOf(cluster).map((n) => `netns ${n}`),
    ...[
      `/sys/fs/cgroup/unified/ambit/${cluster}`,
      `/sys/fs/cgroup/ambit/${cluster}`,
      `/sys/fs/bpf/ambit/local-${cluster}`,
      `/run/ambit/${cluster}`,
    ].filter((p) => existsSync(p)),
  ];
  if (r.code !== 0 || left.length > 0) {
    throw new Error(
      `local down --name ${cluster} (exit ${r.code}) left: ${left.join(', ') || 'nothing'}\n${r.stdout}${r.stderr}`,
    );
  }
}

/** A private temporary folder, removed when the test file ends. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** A private copy of a manifests folder (relative to the repo), so a test can edit it without touching the repo. */
export function copyManifests(path: string): string {
  const dir = tempDir('ambit-manifests-');
  cpSync(join(ROOT, path), dir, {
    recursive: true,
    filter: (src) => !src.endsWith('.sh') && !src.endsWith('.md'),
  });
  return dir;
}

export async function status(cluster: string): Promise<LocalState> {
  const r = await ambit(['local', 'status', '--name', cluster, '-o', 'json']);
  if (r.code !== 0) throw new Error(`status failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as LocalState;
}

/** PID of a node daemon (`agent` or `proxy`) of a node, found in the node's system cgroup. */
export function daemonPid(state: LocalState, node: string, role: 'agent' | 'proxy'): number {
  const layout = state.nodes.find((n) => n.name === node)!;
  const pid = cgroupPids(join(state.cgroupDir, layout.systemCgroup)).find((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8')
        .split('\0')
        .join(' ')
        .includes(role === 'agent' ? 'node-agent/main.js' : 'node-proxy/main.js');
    } catch {
      return false;
    }
  });
  if (pid === undefined) throw new Error(`no ${role} process on ${node}`);
  return pid;
}

/** Runs a command inside a pod with `ambit local exec`. */
export function podExec(
  cluster: string,
  pod: string,
  cmd: readonly string[],
  namespace = 'hello',
): Promise<RunResult> {
  return ambit(['local', 'exec', '--name', cluster, '-n', namespace, pod, '--', ...cmd]);
}

export function curl(
  cluster: string,
  pod: string,
  url: string,
  extra: readonly string[] = [],
  namespace = 'hello',
): Promise<RunResult> {
  return podExec(cluster, pod, ['curl', '-sS', '--max-time', '5', ...extra, url], namespace);
}

export function netnsOf(cluster: string): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(`${cluster}.`)) : [];
}

/** True when the process exists and is not a zombie waiting for init to reap it. */
export function processLives(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
