import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { formatIssue } from '../config/issue.js';
import { AmbitError, ErrorCode } from '../errors.js';
import { formatConditions } from '../gateway-api/status.js';
import { clusterPaths, containerCgroup, containerId } from '../local/layout.js';
import { CONTAINER_PATH, podCommand } from '../local/pod-runtime.js';
import { type LocalState, type PodState, SYSTEM_NAMESPACE } from '../local/state.js';
import { pidAlive } from '../local/teardown.js';
import { clusterFlag, loadRunning, readFrom, requireRoot } from './local-common.js';
import { fetchMeshStatus, routeRows } from './mesh-status.js';
import { age, parseOutputFormat, render, table } from './output.js';
import type { CliSettings } from './settings.js';

export async function status(argv: readonly string[], s: CliSettings): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: { name: { type: 'string' }, output: { type: 'string', short: 'o' } },
  });
  const format = parseOutputFormat(values.output);
  const cluster = clusterFlag(values, s);
  const state = loadRunning(s, cluster);
  const { enrolled, excluded } = enrolledPods(clusterPaths(s.runRoot, cluster), state);
  if (format === 'json' || format === 'yaml') {
    process.stdout.write(
      `${render({ ...state, enrolled: [...enrolled].sort(), excluded: Object.fromEntries([...excluded].sort()) }, format)}\n`,
    );
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
        meshColumn(`${p.namespace}/${p.name}`, enrolled, excluded),
      ]),
    ),
  );
  // Why a pod has not started (its sandbox's network failed: the CNI step is retried), as kubectl
  // describe shows the event.
  const stuck = state.pods.filter((p) => p.message !== undefined);
  if (stuck.length > 0) out.push('', ...stuck.map((p) => `${p.namespace}/${p.name}: ${p.message}`));
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
  // Waypoints and their routes, with the status the control plane computes (when it answers).
  const mesh = alive ? await fetchMeshStatus(state).catch(() => undefined) : undefined;
  if (mesh !== undefined && (mesh.gateways.length > 0 || mesh.routes.length > 0)) {
    out.push('');
    out.push(
      table(
        ['NAMESPACE', 'WAYPOINT', 'ADDRESS', 'CONDITIONS'],
        mesh.gateways.map((g) => [
          g.namespace,
          g.name,
          g.status.addresses[0]?.value ?? '-',
          formatConditions(g.status.conditions),
        ]),
      ),
    );
    const rows = routeRows(mesh, state, () => true);
    if (rows.length > 0) {
      out.push('');
      out.push(table(['ROUTE', 'NAMESPACE', 'PARENT', 'CONDITIONS'], rows));
    }
  }
  const errors = state.issues.filter((i) => i.severity === 'error');
  if (errors.length > 0) {
    out.push('');
    out.push(`rejected objects (their last good version stays in effect):`);
    for (const i of errors) out.push(`  ${formatIssue(i)}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

/**
 * Pods the node agents report as enrolled (their traffic goes through the node proxy), and those the
 * labels put in the mesh that loop safety keeps out, with the reason (a hostNetwork pod, an Ambit pod).
 */
function enrolledPods(
  paths: ReturnType<typeof clusterPaths>,
  state: LocalState,
): { enrolled: Set<string>; excluded: Map<string, string> } {
  const enrolled = new Set<string>();
  const excluded = new Map<string, string>();
  for (const node of state.nodes) {
    try {
      const status = JSON.parse(readFileSync(join(paths.nodeDir(node.name), 'enrollment.json'), 'utf8')) as {
        enrolled: { pod: string }[];
        excluded?: { pod: string; reason: string }[];
      };
      for (const e of status.enrolled) enrolled.add(e.pod);
      for (const e of status.excluded ?? []) excluded.set(e.pod, e.reason);
    } catch {
      // the agent has not written it yet
    }
  }
  return { enrolled, excluded };
}

function meshColumn(pod: string, enrolled: Set<string>, excluded: Map<string, string>): string {
  if (enrolled.has(pod)) return 'ambient';
  const reason = excluded.get(pod);
  return reason === undefined ? '-' : `excluded (${reason})`;
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

export async function logs(argv: readonly string[], s: CliSettings): Promise<number> {
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

export async function exec(argv: readonly string[], s: CliSettings): Promise<number> {
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
  // Like kubectl exec without -c: in the first container, whose cgroup is a scope below the pod's.
  const first = pod.containers[0]?.name;
  const cgroup = first === undefined ? pod.cgroup : containerCgroup(pod.cgroup, containerId(pod.uid, first));
  const [cmd, ...args] = podCommand(
    { cgroupDir: join(state.cgroupDir, cgroup) },
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
