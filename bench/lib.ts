import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist/ctl/main.js');

export function sh(cmd: string, args: readonly string[], timeoutMs = 300_000): Promise<string> {
  return new Promise((res, rej) => {
    execFile(
      cmd,
      args,
      { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        if (err !== null) rej(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`));
        else res(stdout);
      },
    );
  });
}

export const ambit = (...args: string[]): Promise<string> => sh(process.execPath, [CLI, ...args]);

/** Runs a command inside a pod of the bench cluster. */
export const inPod = (
  cluster: string,
  ns: string,
  pod: string,
  cmd: readonly string[],
  timeoutMs?: number,
): Promise<string> =>
  sh(process.execPath, [CLI, 'local', 'exec', '--name', cluster, '-n', ns, pod, '--', ...cmd], timeoutMs);

/** Starts a long-running process in a node's network namespace (keeping host mounts). */
export function inNodeNetns(cluster: string, node: string, cmd: readonly string[]) {
  return spawn('nsenter', [`--net=/run/netns/${cluster}.${node}`, '--', ...cmd], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: false,
  });
}

export interface WrkResult {
  readonly rps: number;
  readonly p50ms: number;
  readonly p99ms: number;
  readonly errors: number;
}

function ms(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (m === null) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

/** Parses `wrk --latency` output. */
export function parseWrk(out: string): WrkResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const p50 = ms(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = ms(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = (errs === null ? 0 : errs.slice(1).reduce((a, b) => a + Number(b), 0)) + non2xx;
  return { rps, p50ms: p50, p99ms: p99, errors };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const tempDirs: string[] = [];
process.once('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** Writes a file (configs, keys) in a private temp folder that is removed when the benchmark exits. */
export function tempFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-bench-'));
  tempDirs.push(dir);
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

export function progress(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}
