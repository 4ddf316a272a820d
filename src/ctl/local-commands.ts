import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatIssue } from '../config/issue.js';
import { AmbitError, ErrorCode } from '../errors.js';
import { CertificateAuthority, ROOT_CERT, ROOT_KEY } from '../identity/ca.js';
import { clusterBpfDir, clusterCgroupDir, clusterPaths, MAX_NODES, nodeName } from '../local/layout.js';
import { listNetns } from '../local/network.js';
import { CONTAINER_PATH, podCommand } from '../local/pod-runtime.js';
import { readProgress } from '../local/progress.js';
import { type LocalState, type PodState, readState, SYSTEM_NAMESPACE } from '../local/state.js';
import { pidAlive, teardownCluster } from '../local/teardown.js';
import { hasErrors, loadManifests } from '../manifests/load-manifests.js';
import { detectCgroup2Root, ensureCgroup2Root } from '../os/cgroup.js';
import { age, parseDuration, parseOutputFormat, render, table } from './output.js';
import { type CliSettings, checkClusterName } from './settings.js';

const here = dirname(fileURLToPath(import.meta.url));
const DAEMON_SCRIPT = join(here, '..', 'local', 'main.js');

export const LOCAL_USAGE = `Usage: ambit local <command>

Runs a whole Ambit mesh on this Linux machine: nodes and pods are network namespaces, containers are
processes, Services are VIPs. Needs root.

Commands:
  up <file|dir> [--nodes N] [--wait 120s]   start a cluster from Kubernetes manifests (the folder is watched)
     [--cert-ttl 24h] [--log-level info]    workload certificate lifetime; log level of the mesh's daemons
     [--ca-dir dir]                         use this CA root (root-cert.pem, root-key.pem) instead of a new one
  status [-o table|json|yaml]               nodes, pods, services and endpoints
  logs <pod> [-n ns] [-c container] [-f]    container output
  exec <pod> [-n ns] -- <cmd...>            run a command inside a pod (as the pod: same netns and cgroup)
  down                                      remove everything the cluster created (safe to repeat)

Common flags: --name <cluster> (default: ambit, or $AMBIT_CLUSTER).
A pod can be named by its full name or as deploy/<deployment>.`;

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new AmbitError(
      ErrorCode.PRECONDITION,
      'ambit local needs root (it creates network namespaces and cgroups); run it with sudo',
    );
  }
}

function clusterFlag(values: { name?: string | undefined }, s: CliSettings): string {
  const name = values.name ?? s.cluster;
  checkClusterName(name, '--name');
  return name;
}

function loadRunning(s: CliSettings, cluster: string): LocalState {
  const state = readState(clusterPaths(s.runRoot, cluster).state);
  if (state === undefined) {
    throw new AmbitError(
      ErrorCode.LOCAL_STATE,
      `no local cluster "${cluster}" is running (start one with \`ambit local up <dir>\`)`,
    );
  }
  return state;
}

export async function localCommand(argv: readonly string[], s: CliSettings): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'up':
      return up(rest, s);
    case 'status':
      return status(rest, s);
    case 'logs':
      return logs(rest, s);
    case 'exec':
      return exec(rest, s);
    case 'down':
      return down(rest, s);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${LOCAL_USAGE}\n`);
      return sub === undefined ? 2 : 0;
    default:
      throw new AmbitError(ErrorCode.USAGE, `unknown command "local ${sub}"\n\n${LOCAL_USAGE}`);
  }
}

interface SuppliedCa {
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * Reads a supplied CA root (root-cert.pem and root-key.pem in `dir`) and has the CA load it in a scratch
 * folder, so that every check the control plane would make (a certificate, not expired, a matching key)
 * fails here, naming the supplied files, before a cluster exists.
 */
async function checkSuppliedCa(dir: string): Promise<SuppliedCa> {
  const read = (name: string): string => {
    try {
      return readFileSync(join(dir, name), 'utf8');
    } catch (err) {
      throw new AmbitError(
        ErrorCode.CERTIFICATE,
        `--ca-dir ${dir}: cannot read ${name} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the folder must hold ${ROOT_CERT} and ${ROOT_KEY}`,
      );
    }
  };
  const supplied = { certPem: read(ROOT_CERT), keyPem: read(ROOT_KEY) };
  const scratch = mkdtempSync(join(tmpdir(), 'ambit-ca-check-'));
  try {
    installCa(supplied, scratch);
    await CertificateAuthority.loadOrCreate(scratch, 'ambit');
  } catch (err) {
    throw new AmbitError(
      ErrorCode.CERTIFICATE,
      `--ca-dir: ${(err as Error).message.replaceAll(scratch, dir)}`,
      {
        cause: err,
      },
    );
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return supplied;
}

/** Places a CA root where the control plane loads it from; the key readable by root only. */
function installCa(ca: SuppliedCa, caDir: string): void {
  mkdirSync(caDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(caDir, ROOT_CERT), ca.certPem, { mode: 0o644 });
  writeFileSync(join(caDir, ROOT_KEY), ca.keyPem, { mode: 0o600 });
}

async function up(argv: readonly string[], s: CliSettings): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      nodes: { type: 'string', default: '2' },
      name: { type: 'string' },
      wait: { type: 'string', default: '120s' },
      'log-level': { type: 'string', default: 'info' },
      'cert-ttl': { type: 'string' },
      'ca-dir': { type: 'string' },
    },
    allowPositionals: true,
  });
  if (positionals.length !== 1)
    throw new AmbitError(
      ErrorCode.USAGE,
      'usage: ambit local up <file|dir> [--nodes N] [--wait 120s] [--cert-ttl 24h] [--ca-dir dir] [--log-level info]',
    );
  const cluster = clusterFlag(values, s);
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) {
    throw new AmbitError(
      ErrorCode.USAGE,
      `--nodes ${values.nodes}: must be a whole number from 1 to ${MAX_NODES}`,
    );
  }
  const waitMs = parseDuration(values.wait, '--wait');
  const manifests = resolve(positionals[0]!);

  // Validate everything before touching the machine: a broken manifest creates nothing.
  const nodeNames = Array.from({ length: nodes }, (_, i) => nodeName(i + 1));
  const { issues } = loadManifests(manifests, { requireCommand: true, nodeNames });
  for (const issue of issues) process.stderr.write(`${formatIssue(issue)}\n`);
  if (hasErrors(issues)) {
    const n = issues.filter((i) => i.severity === 'error').length;
    process.stderr.write(
      `error: ${n} problem${n === 1 ? '' : 's'} in ${positionals[0]}; nothing was created\n`,
    );
    return 1;
  }
  requireRoot();
  // A supplied CA root is checked before anything is created, like the manifests.
  const suppliedCa =
    values['ca-dir'] === undefined ? undefined : await checkSuppliedCa(resolve(values['ca-dir']));

  const paths = clusterPaths(s.runRoot, cluster);
  const existing = readState(paths.state);
  const lockPid = existsSync(paths.lock) ? Number(readFileSync(paths.lock, 'utf8')) : undefined;
  if (lockPid !== undefined && pidAlive(lockPid, 'local/main.js')) {
    throw new AmbitError(
      ErrorCode.LOCAL_STATE,
      `local cluster "${cluster}" is already running${existing === undefined ? '' : ` (manifests: ${existing.manifests})`}; run \`ambit local down\` first`,
    );
  }
  const cgroupRoot = await ensureCgroup2Root(s.cgroup2Root);
  const leftovers = listNetns().filter((n) => n.startsWith(`${cluster}.`));
  if (leftovers.length > 0 || existsSync(paths.dir)) {
    process.stdout.write(`cleaning up what an earlier run of "${cluster}" left behind\n`);
    await teardownCluster({
      cluster,
      clusterCgroup: clusterCgroupDir(cgroupRoot, cluster),
      runDir: paths.dir,
      bpfDir: clusterBpfDir(s.bpfRoot, cluster),
    });
  }

  const started = Date.now();
  process.stdout.write(
    `starting local cluster "${cluster}" with ${nodes} node${nodes === 1 ? '' : 's'} from ${positionals[0]}\n`,
  );
  mkdirSync(paths.dir, { recursive: true });
  if (suppliedCa !== undefined) installCa(suppliedCa, join(paths.dir, 'ca'));
  const stderrFd = openSync(join(paths.dir, 'local.stderr'), 'a');
  const daemon = spawn(
    process.execPath,
    [
      DAEMON_SCRIPT,
      '--cluster',
      cluster,
      '--manifests',
      manifests,
      '--nodes',
      String(nodes),
      '--run-root',
      s.runRoot,
      '--cgroup-root',
      cgroupRoot,
      '--bpf-root',
      s.bpfRoot,
      '--log-level',
      values['log-level'],
      ...(values['cert-ttl'] === undefined ? [] : ['--cert-ttl', values['cert-ttl']]),
    ],
    { detached: true, stdio: ['ignore', stderrFd, stderrFd] },
  );
  closeSync(stderrFd);
  daemon.unref();
  let exited: number | null | undefined;
  daemon.once('exit', (code) => {
    exited = code;
  });

  // Show the daemon's progress (its structured channel) until every pod is ready.
  let offset = 0;
  const deadline = Date.now() + waitMs;
  for (;;) {
    const read = readProgress(paths.progress, offset);
    offset = read.offset;
    for (const ev of read.events) {
      const t = ((Date.parse(ev.time) - started) / 1000).toFixed(1).padStart(5);
      process.stdout.write(
        `[${t}s] ${ev.event === 'error' || ev.event === 'failed' ? 'error: ' : ''}${ev.message}\n`,
      );
      if (ev.event === 'ready') {
        process.stdout.write(
          `\nlocal cluster "${cluster}" is up. Next:\n  ambit local status\n  ambit local exec <pod> -- <command>\n  ambit local logs <pod>\n  ambit local down\n`,
        );
        return 0;
      }
      if (ev.event === 'failed') return 1;
    }
    if (exited !== undefined) {
      const tail = readFrom(join(paths.dir, 'local.stderr'), 0).text.trim();
      process.stderr.write(
        `error: the local daemon exited (code ${exited})${tail === '' ? '' : `:\n${tail}`}\n`,
      );
      return 1;
    }
    if (Date.now() > deadline) {
      const state = readState(paths.state);
      const waiting = state?.pods.filter((p) => !p.ready && p.phase !== 'Succeeded') ?? [];
      process.stderr.write(`error: not every pod became ready within ${values.wait}:\n`);
      for (const p of waiting) process.stderr.write(`  ${p.namespace}/${p.name}: ${describePod(p)}\n`);
      process.stderr.write(
        'The cluster is still running: see `ambit local status` and `ambit local logs <pod>`.\n',
      );
      return 1;
    }
    await sleep(100);
  }
}

function readFrom(path: string, offset: number): { text: string; bytes: number } {
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

function describePod(p: PodState): string {
  const c = p.containers.find((x) => !x.ready);
  if (c === undefined) return p.phase;
  return `${p.phase}, container ${c.name} ${c.state}${c.reason === undefined ? '' : ` (${c.reason}${c.exitCode === undefined ? '' : `, exit ${c.exitCode}`})`}${c.restarts > 0 ? `, ${c.restarts} restarts` : ''}`;
}

async function status(argv: readonly string[], s: CliSettings): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: { name: { type: 'string' }, output: { type: 'string', short: 'o' } },
  });
  const format = parseOutputFormat(values.output);
  const cluster = clusterFlag(values, s);
  const state = loadRunning(s, cluster);
  const enrolled = enrolledPods(clusterPaths(s.runRoot, cluster), state);
  if (format === 'json' || format === 'yaml') {
    process.stdout.write(`${render({ ...state, enrolled: [...enrolled].sort() }, format)}\n`);
    return 0;
  }
  const alive = pidAlive(state.daemonPid, 'local/main.js');
  const out: string[] = [];
  out.push(
    `cluster ${state.cluster}: ${alive ? state.phase : 'daemon not running (run `ambit local down`)'}, manifests ${state.manifests}`,
  );
  out.push('');
  out.push(
    table(
      ['NODE', 'INTERNAL-IP', 'POD-CIDR', 'NETNS'],
      state.nodes.map((n) => [n.name, `${n.ip4},${n.ip6}`, `${n.podCidr4},${n.podCidr6}`, n.netns]),
    ),
  );
  out.push('');
  out.push(
    table(
      ['NAMESPACE', 'NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', 'IP', 'NODE', 'MESH'],
      state.pods.map((p) => [
        p.namespace,
        p.name,
        `${p.containers.filter((c) => c.ready).length}/${p.containers.length}`,
        podStatus(p),
        String(p.containers.reduce((n, c) => n + c.restarts, 0)),
        age(p.createdAt),
        `${p.ip4},${p.ip6}`,
        p.node,
        enrolled.has(`${p.namespace}/${p.name}`) ? 'ambient' : '-',
      ]),
    ),
  );
  out.push('');
  out.push(
    table(
      ['NAMESPACE', 'SERVICE', 'CLUSTER-IP', 'PORTS', 'ENDPOINTS'],
      state.services.map((svc) => [
        svc.namespace,
        svc.name,
        svc.vips.length === 0 ? 'None' : svc.vips.join(','),
        svc.ports.map((p) => `${p.port}/${p.protocol}`).join(','),
        svc.endpoints
          .filter((e) => e.ready)
          .map((e) => `${e.ip4}:${Object.values(e.ports)[0] ?? '?'}`)
          .join(',') || '<none>',
      ]),
    ),
  );
  out.push('');
  out.push(
    table(
      ['NAMESPACE', 'NODE DAEMON', 'CONTAINER', 'READY', 'RESTARTS', 'PID'],
      (state.daemons ?? []).map((d) => [
        SYSTEM_NAMESPACE,
        d.node === '' ? `ambit-${d.name}` : `ambit-node-${d.node}`,
        d.node === '' ? d.name : d.name === 'node-proxy' ? 'proxy' : 'agent',
        d.ready ? 'true' : 'false',
        String(d.restarts),
        d.pid === undefined ? '-' : String(d.pid),
      ]),
    ),
  );
  const errors = state.issues.filter((i) => i.severity === 'error');
  if (errors.length > 0) {
    out.push('');
    out.push(`rejected objects (their last good version stays in effect):`);
    for (const i of errors) out.push(`  ${formatIssue(i)}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

/** Pods the node agents report as enrolled (their traffic goes through the node proxy). */
function enrolledPods(paths: ReturnType<typeof clusterPaths>, state: LocalState): Set<string> {
  const out = new Set<string>();
  for (const node of state.nodes) {
    try {
      const status = JSON.parse(readFileSync(join(paths.nodeDir(node.name), 'enrollment.json'), 'utf8')) as {
        enrolled: { pod: string }[];
      };
      for (const e of status.enrolled) out.add(e.pod);
    } catch {
      // the agent has not written it yet
    }
  }
  return out;
}

function podStatus(p: PodState): string {
  if (p.phase !== 'Running') return p.phase;
  const waiting = p.containers.find((c) => c.state === 'waiting' && c.reason !== undefined);
  return waiting?.reason ?? 'Running';
}

/** Finds a pod by name, or `deploy/<name>` (its first ready replica); `-n` narrows the namespace. */
export function findPod(state: LocalState, ref: string, namespace: string | undefined): PodState {
  const inNs = (p: PodState) => namespace === undefined || p.namespace === namespace;
  let candidates: PodState[];
  if (ref.startsWith('deploy/') || ref.startsWith('deployment/')) {
    const name = ref.slice(ref.indexOf('/') + 1);
    candidates = state.pods.filter(
      (p) => inNs(p) && p.owner === `Deployment/${name}` && p.phase !== 'Terminating',
    );
    candidates.sort((a, b) => Number(b.ready) - Number(a.ready) || a.name.localeCompare(b.name));
    candidates = candidates.slice(0, 1);
  } else {
    const name = ref.startsWith('pod/') ? ref.slice(4) : ref;
    candidates = state.pods.filter((p) => inNs(p) && p.name === name);
  }
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length === 0) {
    const where = namespace === undefined ? '' : ` in namespace ${namespace}`;
    const known = state.pods.map((p) => `${p.namespace}/${p.name}`).join(', ') || 'none';
    throw new AmbitError(
      ErrorCode.NOT_FOUND,
      `pod ${JSON.stringify(ref)} not found${where} (pods: ${known})`,
    );
  }
  throw new AmbitError(
    ErrorCode.USAGE,
    `pod ${JSON.stringify(ref)} exists in several namespaces (${candidates.map((p) => p.namespace).join(', ')}); pick one with -n`,
  );
}

async function logs(argv: readonly string[], s: CliSettings): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      name: { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      container: { type: 'string', short: 'c' },
      follow: { type: 'boolean', short: 'f', default: false },
      tail: { type: 'string' },
    },
    allowPositionals: true,
  });
  if (positionals.length !== 1)
    throw new AmbitError(ErrorCode.USAGE, 'usage: ambit local logs <pod> [-n ns] [-c container] [-f]');
  const cluster = clusterFlag(values, s);
  const state = loadRunning(s, cluster);
  const daemonFile = nodeDaemonLog(
    state,
    clusterPaths(s.runRoot, cluster),
    positionals[0]!,
    values.namespace,
    values.container,
  );
  if (daemonFile !== undefined) return printLog(daemonFile, values);
  const pod = findPod(state, positionals[0]!, values.namespace);
  const container = values.container ?? pod.containers[0]?.name;
  if (container === undefined || !pod.containers.some((c) => c.name === container)) {
    throw new AmbitError(
      ErrorCode.NOT_FOUND,
      `container ${JSON.stringify(container)} is not in pod ${pod.name} (containers: ${pod.containers.map((c) => c.name).join(', ')})`,
    );
  }
  if (values.container === undefined && pod.containers.length > 1) {
    process.stderr.write(
      `Defaulted container "${container}" out of: ${pod.containers.map((c) => c.name).join(', ')}\n`,
    );
  }
  return printLog(clusterPaths(s.runRoot, cluster).containerLog(pod.namespace, pod.name, container), values);
}

const DAEMON_CONTAINERS: Readonly<Record<string, string>> = { proxy: 'node-proxy', agent: 'node-agent' };

/**
 * Node daemons are the containers of the DaemonSet pod `ambit-system/ambit-node-<node>`: `proxy`
 * (the default) and `agent`. Returns their log file, or undefined when `ref` is not such a pod.
 */
function nodeDaemonLog(
  state: LocalState,
  paths: ReturnType<typeof clusterPaths>,
  ref: string,
  namespace: string | undefined,
  container: string | undefined,
): string | undefined {
  if (namespace !== undefined && namespace !== SYSTEM_NAMESPACE) return undefined;
  if (/^(?:pod\/)?ambit-control-plane$/.test(ref)) return join(paths.dir, 'control-plane.log');
  const m = /^(?:pod\/)?ambit-node-(.+)$/.exec(ref);
  if (m === null) return undefined;
  const node = state.nodes.find((n) => n.name === m[1]);
  if (node === undefined) {
    throw new AmbitError(
      ErrorCode.NOT_FOUND,
      `no node ${m[1]} (nodes: ${state.nodes.map((n) => n.name).join(', ')})`,
    );
  }
  const c = container ?? 'proxy';
  const daemon = DAEMON_CONTAINERS[c];
  if (daemon === undefined) {
    throw new AmbitError(
      ErrorCode.NOT_FOUND,
      `container ${JSON.stringify(c)} is not in pod ${ref} (containers: proxy, agent)`,
    );
  }
  if (container === undefined) process.stderr.write('Defaulted container "proxy" out of: proxy, agent\n');
  return join(paths.nodeDir(node.name), `${daemon}.log`);
}

async function printLog(
  file: string,
  values: { follow?: boolean | undefined; tail?: string | undefined },
): Promise<number> {
  let { text, bytes } = readFrom(file, 0);
  if (values.tail !== undefined) {
    const n = Number(values.tail);
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    text = lines.slice(Math.max(0, lines.length - n)).join('\n') + (lines.length > 0 ? '\n' : '');
  }
  process.stdout.write(text);
  if (!values.follow) return 0;
  let offset = bytes;
  for (;;) {
    await sleep(200);
    const chunk = readFrom(file, offset);
    if (chunk.bytes > 0) {
      process.stdout.write(chunk.text);
      offset += chunk.bytes;
    }
    if (!existsSync(file)) return 0;
  }
}

async function exec(argv: readonly string[], s: CliSettings): Promise<number> {
  const dash = argv.indexOf('--');
  if (dash < 0 || dash === argv.length - 1)
    throw new AmbitError(ErrorCode.USAGE, 'usage: ambit local exec <pod> [-n ns] -- <command...>');
  const { values, positionals } = parseArgs({
    args: argv.slice(0, dash),
    options: {
      name: { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      workdir: { type: 'string', short: 'w' },
    },
    allowPositionals: true,
  });
  if (positionals.length !== 1)
    throw new AmbitError(ErrorCode.USAGE, 'usage: ambit local exec <pod> [-n ns] -- <command...>');
  requireRoot();
  const cluster = clusterFlag(values, s);
  const state = loadRunning(s, cluster);
  const pod = findPod(state, positionals[0]!, values.namespace);
  if (pod.pausePid === undefined || !pidAlive(pod.pausePid)) {
    throw new AmbitError(
      ErrorCode.LOCAL_STATE,
      `pod ${pod.namespace}/${pod.name} is not running (${pod.phase})`,
    );
  }
  const [cmd, ...args] = podCommand(
    { cgroupDir: join(state.cgroupDir, pod.cgroup) },
    pod.pausePid,
    values.workdir ?? '/',
    argv.slice(dash + 1),
  );
  const child = spawn(cmd!, args, {
    stdio: 'inherit',
    env: { PATH: CONTAINER_PATH, HOME: '/root', HOSTNAME: pod.name, TERM: s.term },
  });
  return new Promise((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit(code ?? (signal === null ? 1 : 128 + 9)));
    child.once('error', () => resolveExit(127));
  });
}

async function down(argv: readonly string[], s: CliSettings): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: { name: { type: 'string' } } });
  requireRoot();
  const cluster = clusterFlag(values, s);
  const paths = clusterPaths(s.runRoot, cluster);
  const lockPid = existsSync(paths.lock) ? Number(readFileSync(paths.lock, 'utf8')) : undefined;
  if (lockPid !== undefined && pidAlive(lockPid, 'local/main.js')) {
    process.stdout.write(`stopping local cluster "${cluster}" (daemon pid ${lockPid})\n`);
    process.kill(lockPid, 'SIGTERM');
    const deadline = Date.now() + 30_000;
    while (pidAlive(lockPid) && Date.now() < deadline) await sleep(50);
    if (pidAlive(lockPid)) process.kill(lockPid, 'SIGKILL');
  }
  const cgroupRoot = detectCgroup2Root(s.cgroup2Root);
  const report = await teardownCluster({
    cluster,
    clusterCgroup: cgroupRoot === undefined ? undefined : clusterCgroupDir(cgroupRoot, cluster),
    runDir: paths.dir,
    bpfDir: clusterBpfDir(s.bpfRoot, cluster),
  });
  const extra = report.netns.length + report.killed.length + report.cgroups;
  process.stdout.write(
    extra === 0
      ? `local cluster "${cluster}" is down\n`
      : `local cluster "${cluster}" is down (removed ${report.netns.length} namespaces, ${report.cgroups} cgroups, stopped ${report.killed.length} processes left behind)\n`,
  );
  return 0;
}
