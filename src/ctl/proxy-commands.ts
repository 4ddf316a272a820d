import { execFile } from 'node:child_process';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { AmbitError, ErrorCode } from '../errors.js';
import type { LocalState } from '../local/state.js';
import { explainConnection } from '../mesh/explain.js';
import { MeshIndex } from '../mesh/mesh-index.js';
import type { MeshView } from '../mesh/view.js';
import type { ActivePolicies } from '../policy/active.js';
import { loadRunning } from './local-common.js';
import { findPod } from './local-inspect.js';
import { age, parseOutputFormat, render, table } from './output.js';
import { type CliSettings, checkClusterName } from './settings.js';

export const PROXY_CONFIG_USAGE = `Usage: ambit proxy-config <workloads|services|policies|certificates|connections> --node <node> [-o table|json|yaml]

Shows what a node proxy holds, from its admin endpoint (localhost:15000 on the node).`;

export const EXPLAIN_USAGE = `Usage: ambit explain <source-pod> <destination>:<port> [-n namespace] [-o table|json|yaml]

Explains the decision path of a connection: how the source is captured and identified, the route,
how it is carried, and what PeerAuthentication and authorization decide at the destination.
<destination> is an IP, or a Service name (svc, svc.ns, svc.ns.svc.cluster.local).`;

export interface ConfigDump {
  readonly node: string;
  readonly version: string | null;
  readonly view: MeshView | null;
  readonly policies: ActivePolicies;
  readonly rejections: readonly {
    kind: string;
    namespace: string;
    name: string;
    file: string;
    line: number;
    path: string;
    message: string;
  }[];
  readonly certificates: readonly {
    identity: string;
    notBefore: string;
    notAfter: string;
    serial: string;
    /** Serial of the CA root the chain ends in. */
    root: string;
  }[];
}

/** The running local cluster named by `--name` (or the default). */
export function loadState(s: CliSettings, name: string | undefined): LocalState {
  const cluster = name ?? s.cluster;
  checkClusterName(cluster, '--name');
  return loadRunning(s, cluster);
}

/**
 * An HTTP request to a port on the loopback of a network namespace (where the mesh's admin endpoints
 * listen), made by a short Node process that enters it. Resolves to the body; rejects with `unreachable`
 * when nothing answers and with the body when the status is not 2xx.
 */
export function httpInNetns(
  netns: string,
  port: number,
  path: string,
  method: 'GET' | 'POST',
  unreachable: (why: string) => string,
): Promise<string> {
  const script = `fetch('http://127.0.0.1:${port}${path}', { method: '${method}' }).then(async (r) => { process.stdout.write(await r.text()); process.exitCode = r.ok ? 0 : 3; }, (e) => { process.stderr.write(e.cause?.message ?? e.message); process.exitCode = 1; })`;
  return new Promise((resolve, reject) => {
    execFile(
      'nsenter',
      [`--net=/run/netns/${netns}`, '--', process.execPath, '-e', script],
      { encoding: 'utf8', maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        if (err === null) resolve(stdout);
        else if (err.code === 3)
          reject(new AmbitError(ErrorCode.NOT_FOUND, `${method} ${path}: ${stdout.trim()}`));
        else reject(new AmbitError(ErrorCode.NOT_FOUND, unreachable(stderr.trim() || err.message)));
      },
    );
  });
}

/** GETs a path of a node proxy's admin endpoint, from inside the node's network namespace. */
export function adminGet(state: LocalState, node: string, path: string): Promise<string> {
  const layout = state.nodes.find((n) => n.name === node);
  if (layout === undefined) {
    return Promise.reject(
      new AmbitError(
        ErrorCode.NOT_FOUND,
        `no node ${node} (nodes: ${state.nodes.map((n) => n.name).join(', ')})`,
      ),
    );
  }
  return httpInNetns(
    layout.netns,
    15000,
    path,
    'GET',
    (why) => `the node proxy on ${node} did not answer (${why}); is it running? (ambit local status)`,
  );
}

export async function configDump(state: LocalState, node: string): Promise<ConfigDump> {
  return JSON.parse(await adminGet(state, node, '/config_dump')) as ConfigDump;
}

export async function proxyConfigCommand(argv: readonly string[], s: CliSettings): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { node: { type: 'string' }, name: { type: 'string' }, output: { type: 'string', short: 'o' } },
    allowPositionals: true,
  });
  const what = positionals[0];
  const kinds = ['workloads', 'services', 'policies', 'certificates', 'connections'];
  if (what === undefined || !kinds.includes(what) || values.node === undefined)
    throw new AmbitError(ErrorCode.USAGE, PROXY_CONFIG_USAGE);
  const format = parseOutputFormat(values.output);
  const state = loadState(s, values.name);
  if (what === 'connections') {
    const conns = JSON.parse(await adminGet(state, values.node, '/connections')) as {
      direction: string;
      src: string;
      dst: string;
      srcWorkload?: string;
      dstWorkload?: string;
      service?: string;
      startedAt: string;
    }[];
    if (format === 'json' || format === 'yaml') return print(render(conns, format));
    return print(
      table(
        ['DIRECTION', 'SOURCE', 'DESTINATION', 'SOURCE WORKLOAD', 'DESTINATION WORKLOAD', 'SERVICE', 'AGE'],
        conns.map((c) => [
          c.direction,
          c.src,
          c.dst,
          c.srcWorkload ?? '-',
          c.dstWorkload ?? '-',
          c.service ?? '-',
          age(c.startedAt),
        ]),
      ),
    );
  }
  const dump = await configDump(state, values.node);
  const view = dump.view;
  if (what === 'workloads') {
    const rows = view?.workloads ?? [];
    if (format === 'json' || format === 'yaml') return print(render(rows, format));
    return print(
      table(
        ['NAMESPACE', 'NAME', 'IP', 'NODE', 'PROTOCOL', 'IDENTITY'],
        rows.map((w) => [
          w.namespace,
          w.name,
          w.ips.join(','),
          w.node,
          w.captured ? 'HBONE' : 'TCP',
          w.identity,
        ]),
      ),
    );
  }
  if (what === 'services') {
    const rows = view?.services ?? [];
    if (format === 'json' || format === 'yaml') return print(render(rows, format));
    return print(
      table(
        ['NAMESPACE', 'NAME', 'VIPS', 'PORTS', 'ENDPOINTS'],
        rows.map((svc) => [
          svc.namespace,
          svc.name,
          svc.vips.join(',') || 'None',
          svc.ports.map((p) => `${p.port}/${p.protocol}`).join(','),
          `${svc.endpoints.filter((e) => e.ready).length}/${svc.endpoints.length}`,
        ]),
      ),
    );
  }
  if (what === 'policies') {
    const data = { ...dump.policies, rejected: dump.rejections };
    if (format === 'json' || format === 'yaml') return print(render(data, format));
    const rows = [
      ...dump.policies.authz.map((p) => [
        'AuthorizationPolicy',
        p.namespace,
        p.name,
        p.action,
        p.selector === undefined
          ? p.namespace === 'ambit-system'
            ? '(mesh)'
            : '(namespace)'
          : Object.entries(p.selector)
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
        String(p.rules.length),
      ]),
      ...dump.policies.peerAuth.map((p) => [
        'PeerAuthentication',
        p.namespace,
        p.name,
        p.mode ?? 'UNSET',
        p.selector === undefined
          ? p.namespace === 'ambit-system'
            ? '(mesh)'
            : '(namespace)'
          : Object.entries(p.selector)
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
        '-',
      ]),
    ];
    let out = table(['KIND', 'NAMESPACE', 'NAME', 'ACTION/MODE', 'SELECTOR', 'RULES'], rows);
    if (dump.rejections.length > 0) {
      out += `\n\nrejected:\n${dump.rejections.map((r) => `  ${r.file}:${r.line} ${r.path}: ${r.message} (${r.kind}/${r.namespace}/${r.name})`).join('\n')}`;
    }
    return print(out);
  }
  const certs = dump.certificates;
  if (format === 'json' || format === 'yaml') return print(render(certs, format));
  return print(
    table(
      ['IDENTITY', 'SERIAL', 'ROOT', 'NOT BEFORE', 'NOT AFTER', 'EXPIRES IN'],
      certs.map((c) => [
        c.identity,
        c.serial.slice(0, 16),
        c.root.slice(0, 16),
        c.notBefore,
        c.notAfter,
        remaining(c.notAfter),
      ]),
    ),
  );
}

function remaining(iso: string): string {
  const s = Math.floor((Date.parse(iso) - Date.now()) / 1000);
  if (s <= 0) return 'expired';
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h`;
}

function print(text: string): number {
  process.stdout.write(`${text}\n`);
  return 0;
}

/** `web`, `web.shop`, `web.shop.svc`, `web.shop.svc.cluster.local`, or an IP, to an address. */
function resolveDestination(mesh: MeshIndex, host: string, namespace: string): string {
  if (isIP(host) !== 0) return host;
  const parts = host.split('.');
  const name = parts[0]!;
  const ns = parts[1] ?? namespace;
  const svc = mesh.serviceByHost(`${name}.${ns}.svc.cluster.local`);
  if (svc === undefined || svc.vips.length === 0) {
    throw new AmbitError(
      ErrorCode.NOT_FOUND,
      `${host}: no Service ${ns}/${name} with a VIP (give an IP, or svc.namespace)`,
    );
  }
  return svc.vips[0]!;
}

export async function explainCommand(argv: readonly string[], s: CliSettings): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      namespace: { type: 'string', short: 'n' },
      name: { type: 'string' },
      output: { type: 'string', short: 'o' },
    },
    allowPositionals: true,
  });
  if (positionals.length !== 2) throw new AmbitError(ErrorCode.USAGE, EXPLAIN_USAGE);
  const format = parseOutputFormat(values.output);
  const state = loadState(s, values.name);
  const pod = findPod(state, positionals[0]!, values.namespace);
  const m = /^(.+):(\d+)$/.exec(positionals[1]!);
  if (m === null)
    throw new AmbitError(
      ErrorCode.USAGE,
      `${positionals[1]}: give the destination as host:port\n\n${EXPLAIN_USAGE}`,
    );
  const dump = await configDump(state, pod.node);
  if (dump.view === null)
    throw new AmbitError(ErrorCode.CONTROL_PLANE, `the node proxy on ${pod.node} has no config yet`);
  const mesh = new MeshIndex(dump.view);
  const src = mesh.view.workloads.find((w) => w.namespace === pod.namespace && w.name === pod.name);
  if (src === undefined)
    throw new AmbitError(
      ErrorCode.NOT_FOUND,
      `${pod.namespace}/${pod.name} is not in the proxy's config (is it running?)`,
    );
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const e = explainConnection(mesh, dump.policies, src, {
    ip: resolveDestination(mesh, host, pod.namespace),
    port: Number(m[2]),
  });
  if (format === 'json' || format === 'yaml') return print(render(e, format));
  const lines = [`${e.source.pod} -> ${positionals[1]} (${e.destination}): ${e.verdict.toUpperCase()}`];
  for (const st of e.steps) lines.push(`  ${st.step}: ${st.detail}`);
  for (const ep of e.endpoints) {
    lines.push(`  endpoint ${ep.endpoint} (${ep.address}, ${ep.node}): ${ep.verdict.toUpperCase()}`);
    for (const st of ep.steps) lines.push(`    ${st.step}: ${st.detail}`);
  }
  return print(lines.join('\n'));
}
