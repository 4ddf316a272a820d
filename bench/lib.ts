import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { LocalState } from '../src/local/state.js';
import { cgroupPids, cgroupTree } from '../src/os/cgroup.js';

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

const interruptCleanups: (() => Promise<unknown>)[] = [];
let interrupted = false;

/** Runs a benchmark's main; once interrupted, its failures (commands cut off by the cleanup) are expected. */
export async function runBenchmark(main: () => Promise<void>): Promise<void> {
  await main().catch((err: unknown) => {
    if (!interrupted) throw err;
  });
}
/** Registers what to undo if the benchmark is interrupted (Ctrl-C, SIGTERM) instead of finishing. */
export function onInterrupt(cleanup: () => Promise<unknown>): void {
  interruptCleanups.push(cleanup);
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    progress(`${signal}: cleaning up (local cluster, temporary files)`);
    void (async () => {
      for (const cleanup of interruptCleanups.reverse()) await cleanup().catch(() => undefined);
      process.exit(130); // the exit handler removes the temporary folders
    })();
  });
}

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

/** A bare pod running `command` under /bin/sh on a given node. */
export function benchPod(ns: string, name: string, node: string, command: string): string {
  return `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns}, labels: { app: ${name} } }
spec:
  nodeName: ${node}
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      command: ["/bin/sh", "-c", ${JSON.stringify(command)}]
`;
}

const NGINX = `mkdir -p /tmp/nginx /tmp/www && head -c 200M /dev/zero > /tmp/www/big && exec nginx -c ${join(ROOT, 'bench/nginx.conf')} -g 'daemon off;'`;

/**
 * The benchmarks' app: a client (node-1) and an nginx server (node-2) in namespace bench-plain (outside
 * the mesh) and a client in bench-mesh (enrolled); with `meshServer`, a second nginx in bench-mesh.
 */
export function benchManifests(meshServer: boolean): string {
  return [
    'apiVersion: v1\nkind: Namespace\nmetadata: { name: bench-mesh, labels: { ambit.dev/dataplane-mode: ambient } }\n',
    'apiVersion: v1\nkind: Namespace\nmetadata: { name: bench-plain }\n',
    benchPod('bench-mesh', 'client', 'node-1', 'exec sleep infinity'),
    ...(meshServer ? [benchPod('bench-mesh', 'server', 'node-2', NGINX)] : []),
    benchPod('bench-plain', 'client', 'node-1', 'exec sleep infinity'),
    benchPod('bench-plain', 'server', 'node-2', NGINX),
  ].join('---\n');
}

/** Starts (after removing any leftover) a 2-node local cluster running `manifests`, and returns its state. */
export async function startBenchCluster(cluster: string, manifests: string): Promise<LocalState> {
  await ambit('local', 'down', '--name', cluster);
  // Teardown also stops what runs in the nodes' namespaces (haproxy).
  onInterrupt(() => ambit('local', 'down', '--name', cluster));
  await ambit('local', 'up', tempFile('bench.yaml', manifests), '--name', cluster, '--nodes', '2');
  return JSON.parse(await ambit('local', 'status', '--name', cluster, '-o', 'json')) as LocalState;
}

export function podIp4(state: LocalState, ns: string, name: string): string {
  const pod = state.pods.find((p) => p.namespace === ns && p.name === name);
  if (pod === undefined) throw new Error(`pod ${ns}/${name} is not in the bench cluster`);
  return pod.ip4;
}

/** CPU time (user + system) a process has used, in ms. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // USER_HZ is 100 on Linux
}

/** The pid of a node daemon (`proxy` or `agent`) of node `node` (0-based). */
export function daemonPid(state: LocalState, node: number, role: string): number {
  const cg = join(state.cgroupDir, state.nodes[node]!.systemCgroup);
  const pid = cgroupPids(cg).find((p) =>
    readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(
      role === 'agent' ? 'node-agent/main.js' : 'node-proxy/main.js',
    ),
  );
  if (pid === undefined) throw new Error(`node-${node + 1} ${role} not found`);
  return pid;
}

export interface LoadRun {
  readonly cluster: string;
  readonly ns: string;
  readonly url: string;
  readonly seconds: number;
  readonly connections: number;
  /** Proxy processes whose CPU is charged to the run. */
  readonly proxies: readonly number[];
  /** Headers every request carries (`name: value`), e.g. a bearer token. */
  readonly headers?: readonly string[];
}

/** `-H` arguments for wrk, hey and curl. */
export const headerArgs = (run: Pick<LoadRun, 'headers'>): string[] =>
  (run.headers ?? []).flatMap((h) => ['-H', h]);

/** wrk from the client pod against `url`/small; with `closeEach`, a new connection per request. */
export async function wrkRun(
  run: LoadRun,
  closeEach: boolean,
): Promise<{ r: WrkResult; cpuPer1k: number | undefined }> {
  const used = () => run.proxies.reduce((n, p) => n + cpuMs(p), 0);
  const before = used();
  const args = [
    'wrk',
    '-t1',
    `-c${run.connections}`,
    `-d${run.seconds}s`,
    '--latency',
    ...(closeEach ? ['-H', 'Connection: close'] : []),
    ...headerArgs(run),
    `${run.url}/small`,
  ];
  const r = parseWrk(await inPod(run.cluster, run.ns, 'client', args, (run.seconds + 30) * 1000));
  const cpu = used() - before;
  return { r, cpuPer1k: run.proxies.length === 0 ? undefined : (cpu / (r.rps * run.seconds)) * 1000 };
}

/** One 200 MB download with curl from the client pod, in Gbit/s. */
export async function bulkGbps(run: LoadRun): Promise<number> {
  const out = await inPod(
    run.cluster,
    run.ns,
    'client',
    ['curl', '-s', '-o', '/dev/null', '-w', '%{speed_download}', `${run.url}/big`],
    120_000,
  );
  return (Number(out) * 8) / 1e9;
}

/** The flags every benchmark takes (`-- --seconds 10 --rounds 2 --connections 32`), plus its own string flags. */
export function benchOptions<E extends string>(
  extra: Record<E, string> = {} as Record<E, string>,
): { seconds: number; rounds: number; connections: number } & Record<E, number> {
  const options: Record<string, { type: 'string'; default: string }> = {};
  for (const [name, def] of Object.entries({ seconds: '10', rounds: '2', connections: '32', ...extra }))
    options[name] = { type: 'string', default: def as string };
  const { values } = parseArgs({ args: process.argv.slice(2).filter((a) => a !== '--'), options });
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Number(v)])) as {
    seconds: number;
    rounds: number;
    connections: number;
  } & Record<E, number>;
}

// ---- Helpers added for bench/l7.ts (waypoint and pod processes, fixed-rate runs with hey) ----

/**
 * A private folder outside /tmp (each pod mounts its own tmpfs on /tmp, so files under /tmp are not
 * visible to pods), removed when the benchmark exits: for certificates a pod's process reads.
 */
export function sharedTempDir(): string {
  const dir = mkdtempSync('/var/tmp/ambit-bench-');
  tempDirs.push(dir);
  return dir;
}

/** Resident set size of a process, in kB. */
export function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

/** The pid of the process of pod `ns/name` whose command line contains `match` (searched in the pod's cgroups). */
export function podProcess(state: LocalState, ns: string, name: string, match: string): number {
  const pod = state.pods.find((p) => p.namespace === ns && p.name === name);
  if (pod === undefined) throw new Error(`pod ${ns}/${name} is not in the bench cluster`);
  for (const dir of cgroupTree(join(state.cgroupDir, pod.cgroup)))
    for (const pid of cgroupPids(dir)) {
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      } catch {
        continue; // exited meanwhile
      }
      if (cmdline.includes(match) && !cmdline.startsWith('nsenter')) return pid;
    }
  throw new Error(`no process matching ${JSON.stringify(match)} in pod ${ns}/${name}`);
}

/** Runs `fn` while sampling the RSS of `pids` (summed) every 200 ms; returns its result and the peak in kB. */
export async function withPeakRss<T>(
  pids: readonly number[],
  fn: () => Promise<T>,
): Promise<{ result: T; peakRssKb: number }> {
  let peak = 0;
  const sample = (): void => {
    peak = Math.max(
      peak,
      pids.reduce((n, p) => n + rssKb(p), 0),
    );
  };
  sample();
  const timer = setInterval(sample, 200);
  try {
    const result = await fn();
    sample();
    return { result, peakRssKb: peak };
  } finally {
    clearInterval(timer);
  }
}

export interface HeyResult {
  readonly rps: number;
  readonly p50ms: number;
  readonly p99ms: number;
  /** Wall time of the run as hey measured it, in seconds. */
  readonly totalS: number;
  /** Responses with a 2xx status. */
  readonly ok: number;
  /** Other statuses plus transport errors. */
  readonly failed: number;
}

/** Parses hey's summary output. */
export function parseHey(out: string): HeyResult {
  const secs = (re: RegExp): number => Number(re.exec(out)?.[1] ?? Number.NaN);
  let ok = 0;
  let failed = 0;
  const codes = /Status code distribution:\n([\s\S]*?)(?:\n\n|$)/.exec(out)?.[1] ?? '';
  for (const m of codes.matchAll(/\[(\d+)\]\s+(\d+) responses/g)) {
    if (m[1]!.startsWith('2')) ok += Number(m[2]);
    else failed += Number(m[2]);
  }
  const errs = /Error distribution:\n([\s\S]*?)(?:\n\n|$)/.exec(out)?.[1] ?? '';
  for (const m of errs.matchAll(/\[(\d+)\]/g)) failed += Number(m[1]);
  return {
    rps: secs(/Requests\/sec:\s+([\d.]+)/),
    p50ms: secs(/50%+ in ([\d.]+) secs/) * 1000,
    p99ms: secs(/99%+ in ([\d.]+) secs/) * 1000,
    totalS: secs(/Total:\s+([\d.]+) secs/),
    ok,
    failed,
  };
}

/**
 * A fixed-rate run with hey from the client pod against `url`/small: `workers` connections, each at
 * `perWorker` requests per second, for `seconds`. Returns hey's result and the CPU (ms) `pids` used.
 */
export async function heyRun(
  run: Pick<LoadRun, 'cluster' | 'ns' | 'url' | 'headers'>,
  o: { seconds: number; workers: number; perWorker: number; pids: readonly number[] },
): Promise<{ r: HeyResult; cpuMs: number }> {
  const used = () => o.pids.reduce((n, p) => n + cpuMs(p), 0);
  const before = used();
  const out = await inPod(
    run.cluster,
    run.ns,
    'client',
    [
      'hey',
      '-z',
      `${o.seconds}s`,
      '-c',
      String(o.workers),
      '-q',
      String(o.perWorker),
      ...headerArgs(run),
      `${run.url}/small`,
    ],
    (o.seconds + 60) * 1000,
  );
  return { r: parseHey(out), cpuMs: used() - before };
}
