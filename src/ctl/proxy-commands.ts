import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import type { WaypointAuthnDump, WaypointClustersDump, WaypointRoutesDump } from '../api/waypoint-admin.js';
import { AmbitError, ErrorCode } from '../errors.js';
import type { MeshRoute } from '../gateway-api/types.js';
import { GATEWAY_NAME_LABEL } from '../gateway-api/waypoint.js';
import { podNetns } from '../local/layout.js';
import type { LocalState } from '../local/state.js';
import { explainConnection } from '../mesh/explain.js';
import { explainHttp, type HttpExplanation } from '../mesh/explain-http.js';
import { MeshIndex } from '../mesh/mesh-index.js';
import type { MeshView } from '../mesh/view.js';
import type { ActivePolicies } from '../policy/active.js';
import type { RequestAuthentication } from '../policy/types.js';
import { loadState } from './local-common.js';
import { findPod } from './local-inspect.js';
import { httpInNetns } from './netns-http.js';
import { age, parseOutputFormat, render, table } from './output.js';
import type { CliSettings } from './settings.js';

export const PROXY_CONFIG_USAGE = `Usage: ambit proxy-config <workloads|services|policies|certificates|connections> --node <node> [-o table|json|yaml]
       ambit proxy-config <routes|clusters|authn> --waypoint <ns/name> [-o table|json|yaml]

Shows what a node proxy holds, from its admin endpoint (localhost:15000 on the node), or what a
waypoint holds: the routes of each Service port it serves, the backends with their endpoints, and
the RequestAuthentications in force with the state of their JWKS fetches (authn).`;

export const EXPLAIN_USAGE = `Usage: ambit explain <source-pod> <destination>:<port> [-n namespace] [-o table|json|yaml]
       ambit explain <source-pod> http://<destination>[:port]/path [-X method] [-H 'name: value']...

Explains the decision path of a connection: how the source is captured and identified, the route,
how it is carried, and what PeerAuthentication and authorization decide at the destination.
With a URL, also what the destination's waypoint does with that request: the route rule that
matches, the backends and their shares, the filters, retries and timeouts in effect.
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
    options: {
      node: { type: 'string' },
      waypoint: { type: 'string' },
      name: { type: 'string' },
      output: { type: 'string', short: 'o' },
    },
    allowPositionals: true,
  });
  const what = positionals[0];
  if (what === 'routes' || what === 'clusters' || what === 'authn') {
    if (values.waypoint === undefined) throw new AmbitError(ErrorCode.USAGE, PROXY_CONFIG_USAGE);
    return waypointConfig(loadState(s, values.name), values.waypoint, what, parseOutputFormat(values.output));
  }
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
        p.failClosed === undefined ? p.action : 'DENY (fail-closed)',
        p.targetRefs !== undefined
          ? `(waypoint) ${p.targetRefs.map((t) => `${t.kind}/${t.name}`).join(',')}`
          : p.selector === undefined
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

/** A waypoint's pod in a local cluster (the first ready one): where its admin endpoint answers. */
export function waypointPod(
  state: LocalState,
  ref: string,
): { namespace: string; name: string; netns: string } {
  const m = /^([^/]+)\/([^/]+)$/.exec(ref);
  if (m === null) throw new AmbitError(ErrorCode.USAGE, `--waypoint ${ref}: give it as namespace/name`);
  const [, namespace, name] = m as unknown as [string, string, string];
  const pods = state.pods
    .filter(
      (p) => p.namespace === namespace && p.labels[GATEWAY_NAME_LABEL] === name && p.phase === 'Running',
    )
    .sort((a, b) => Number(b.ready) - Number(a.ready));
  const pod = pods[0];
  if (pod === undefined)
    throw new AmbitError(
      ErrorCode.NOT_FOUND,
      `no running pod of waypoint ${namespace}/${name} (ambit waypoint status -n ${namespace})`,
    );
  return { namespace, name: pod.name, netns: podNetns(state.cluster, namespace, pod.name) };
}

async function waypointAdmin<T>(state: LocalState, ref: string, path: string): Promise<T> {
  const pod = waypointPod(state, ref);
  const body = await httpInNetns(
    pod.netns,
    15000,
    path,
    'GET',
    (why) => `waypoint pod ${pod.namespace}/${pod.name} did not answer (${why})`,
  );
  return JSON.parse(body) as T;
}

async function waypointConfig(
  state: LocalState,
  ref: string,
  what: 'routes' | 'clusters' | 'authn',
  format: ReturnType<typeof parseOutputFormat>,
): Promise<number> {
  if (what === 'authn') {
    const d = await waypointAdmin<WaypointAuthnDump>(state, ref, '/authn');
    if (format === 'json' || format === 'yaml') return print(render(d, format));
    const rules = table(
      ['POLICY', 'TARGETS', 'ISSUER', 'AUDIENCES', 'JWKS', 'TOKEN FROM'],
      d.requestAuthentications.flatMap((p) =>
        p.rules.map((r) => [
          p.policy,
          p.targets.join(', '),
          r.issuer,
          r.audiences.join(', ') || '(any)',
          r.jwks,
          r.locations.join(', '),
        ]),
      ),
    );
    const fetches = table(
      ['JWKS URI', 'KEYS (kid)', 'FETCHED', 'FETCHES', 'LAST ERROR'],
      d.jwks.map((j) => [
        j.uri,
        j.kids.join(', ') || '-',
        j.fetchedAt ?? 'never',
        String(j.fetches),
        j.lastError ?? '-',
      ]),
    );
    return print(`${rules}

${fetches}

verified tokens kept for their next request: ${d.verifiedTokens}`);
  }
  if (what === 'routes') {
    const d = await waypointAdmin<WaypointRoutesDump>(state, ref, '/routes');
    if (format === 'json' || format === 'yaml') return print(render(d, format));
    let out = table(
      ['SERVICE', 'PORT', 'PROTOCOL', 'ROUTES'],
      d.services.map((x) => [
        x.service,
        `${x.port}${x.portName === undefined ? '' : ` (${x.portName})`}`,
        x.appProtocol ?? '-',
        x.routes.join(', ') || '(none: to the Service as it is)',
      ]),
    );
    if (d.consumerRoutes.length > 0)
      out += `\n\nconsumer routes (for clients of their own namespace only):\n${table(
        ['ROUTE', 'FOR CLIENTS IN', 'PARENTS'],
        d.consumerRoutes.map((c) => [c.route, c.namespace, c.parents.join(', ')]),
      )}`;
    return print(out);
  }
  const d = await waypointAdmin<WaypointClustersDump>(state, ref, '/clusters');
  if (format === 'json' || format === 'yaml') return print(render(d, format));
  const policies = (d.trafficPolicies ?? []).map(
    (t) =>
      `  ${t.service}: ${t.description} (in flight: ${t.inFlight.requests} requests, ${t.inFlight.connections} connections, ${t.inFlight.pending} pending, ${t.inFlight.retries} retries)${
        t.ejected === undefined
          ? ''
          : `; ejected now: ${t.ejected.map((e) => `${e.address} until ${e.until} (ejection ${e.ejections} in a row)`).join(', ') || 'none'}`
      }`,
  );
  const budgets = (d.retryBudgets ?? []).map(
    (b) => `  ${b.service}: ${b.constraint}; in its window now: ${b.requests} requests, ${b.retries} retries`,
  );
  return print(
    (policies.length === 0 ? '' : `traffic policies:\n${policies.join('\n')}\n\n`) +
      (budgets.length === 0 ? '' : `retry budgets:\n${budgets.join('\n')}\n\n`) +
      table(
        ['SERVICE', 'PORT', 'ENDPOINT', 'POD', 'IN FLIGHT', 'TRANSPORT', 'HEALTH'],
        d.clusters.flatMap((c) =>
          c.endpoints.map((e) => [
            c.service,
            String(c.port),
            e.address,
            e.pod,
            String(e.inFlight),
            e.hbone ? 'HBONE' : 'TCP',
            e.ejectedUntil === undefined ? 'ok' : `ejected (${remaining(e.ejectedUntil)} left)`,
          ]),
        ),
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
      request: { type: 'string', short: 'X', default: 'GET' },
      header: { type: 'string', short: 'H', multiple: true, default: [] },
    },
    allowPositionals: true,
  });
  if (positionals.length !== 2) throw new AmbitError(ErrorCode.USAGE, EXPLAIN_USAGE);
  const format = parseOutputFormat(values.output);
  const state = loadState(s, values.name);
  const pod = findPod(state, positionals[0]!, values.namespace);
  const target = positionals[1]!;
  let url: URL | undefined;
  if (/^https?:\/\//.test(target)) {
    try {
      url = new URL(target);
    } catch {
      throw new AmbitError(ErrorCode.USAGE, `${target}: not a URL`);
    }
  }
  const m =
    url === undefined
      ? /^(.+):(\d+)$/.exec(target)
      : ([target, url.hostname, url.port || (url.protocol === 'https:' ? '443' : '80')] as const);
  if (m === null)
    throw new AmbitError(
      ErrorCode.USAGE,
      `${target}: give the destination as host:port or a URL\n\n${EXPLAIN_USAGE}`,
    );
  const headers: Record<string, string> = {};
  for (const h of values.header) {
    const i = h.indexOf(':');
    if (i <= 0)
      throw new AmbitError(ErrorCode.USAGE, `-H ${JSON.stringify(h)}: give a header as 'name: value'`);
    headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
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
  const dst = { ip: resolveDestination(mesh, host, pod.namespace), port: Number(m[2]) };
  let e: HttpExplanation = explainConnection(mesh, dump.policies, src, dst);
  if (url !== undefined) {
    // The routes the waypoint holds, if the request goes through one.
    const via = e.steps.find((st) => st.step === 'waypoint');
    const wp = /waypoint ([^ ]+\/[^ ]+) \(for/.exec(
      e.steps.find((st) => st.step === 'route')?.detail ?? '',
    )?.[1];
    const held =
      via === undefined || wp === undefined
        ? { routes: [], requestAuthentications: [] }
        : await waypointAdmin<{ routes: MeshRoute[]; requestAuthentications?: RequestAuthentication[] }>(
            state,
            wp,
            '/config_dump',
          );
    const routes = held.routes;
    e = explainHttp(
      mesh,
      dump.policies,
      routes,
      src,
      dst,
      {
        method: values.request.toUpperCase(),
        path: `${url.pathname}${url.search}`,
        headers: { host: url.host, ...headers },
      },
      held.requestAuthentications ?? [],
    );
  }
  if (format === 'json' || format === 'yaml') return print(render(e, format));
  const lines = [`${e.source.pod} -> ${target} (${e.destination}): ${e.verdict.toUpperCase()}`];
  for (const st of e.steps) lines.push(`  ${st.step}: ${st.detail}`);
  if (e.l7 !== undefined) {
    const l = e.l7;
    lines.push(
      `  l7 (waypoint ${l.waypoint}): ${values.request.toUpperCase()} ${url?.pathname ?? ''}${url?.search ?? ''}`,
    );
    if (l.authn !== undefined) lines.push(`    authentication: ${l.authn}`);
    lines.push(`    authorization: ${l.authz}`);
    lines.push(`    route: ${l.route}`);
    if (l.outcome === 'refuse') lines.push(`    answered by the waypoint: ${l.status} (${l.reason})`);
    if (l.outcome === 'redirect') lines.push(`    redirected: ${l.status}`);
    for (const b of l.backends)
      lines.push(`    backend ${b.backend}: ${b.share}${b.problem === undefined ? '' : ` (${b.problem})`}`);
    for (const f of l.filters) lines.push(`    filter: ${f}`);
    lines.push(`    retry: ${l.retry}`);
    lines.push(`    timeouts: ${l.timeouts}`);
    for (const t of l.trafficPolicies ?? []) lines.push(`    traffic policy: ${t}`);
    lines.push(
      "    endpoint: picked per request by least request (two random choices) among the backend's ready endpoints:",
    );
  }
  for (const ep of e.endpoints) {
    lines.push(`  endpoint ${ep.endpoint} (${ep.address}, ${ep.node}): ${ep.verdict.toUpperCase()}`);
    for (const st of ep.steps) lines.push(`    ${st.step}: ${st.detail}`);
  }
  return print(lines.join('\n'));
}
