import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { AmbitError, ErrorCode } from '../errors.js';
import { type Condition, formatConditions } from '../gateway-api/status.js';
import { GATEWAY_GROUP, WAYPOINT_CLASS } from '../gateway-api/types.js';
import {
  USE_WAYPOINT,
  WAYPOINT_FOR,
  WAYPOINT_FOR_VALUES,
  WAYPOINT_HBONE_PORT,
} from '../gateway-api/waypoint.js';
import type { LocalState } from '../local/state.js';
import { type KubectlRunner, type KubectlTarget, mustRun, spawnKubectl } from './kubectl.js';
import { loadState } from './local-common.js';
import { fetchMeshStatus, routeRows } from './mesh-status.js';
import { parseOutputFormat, render, table } from './output.js';
import type { CliSettings } from './settings.js';

export const WAYPOINT_USAGE = `Usage: ambit waypoint <command> [name] [-n namespace | -A] [--name cluster | --kubectl | --kubeconfig file | --context name]

Waypoints are the L7 proxies of a namespace: a Gateway of class ${WAYPOINT_CLASS} that the mesh runs as
pods, through which the namespace's Service traffic goes (istioctl waypoint, with Ambit's names).

Commands:
  generate [name] [--for service|workload|all|none] [-o yaml|json]
                      print the waypoint Gateway (name: waypoint)
  apply [name] [--for ...] [--enroll-namespace]
                      create it in the local cluster (a file in its manifests folder); --enroll-namespace
                      also labels the namespace ${USE_WAYPOINT}=<name>
  delete <name>       remove a waypoint made by apply (and its namespace label)
  list [-A] [-o table|json|yaml]
                      the waypoints: what they take, their address and whether they are programmed
  status [name] [-A] [-o table|json|yaml]
                      each waypoint's conditions (Accepted, Programmed) and the routes attached to its
                      Services, with theirs (Accepted, ResolvedRefs) and the reasons

Where: a local cluster (--name, default ${'$'}AMBIT_CLUSTER or ambit) unless --kubectl, --kubeconfig or --context
is given: then apply, delete, list and status go through kubectl to that cluster (apply: kubectl apply
--server-side; KUBECONFIG alone does not switch, as \`ambit local up\` suggests exporting it for kubectl).`;

/** The Gateway that makes a waypoint, as `generate` prints it and `apply` writes it. */
export function waypointGateway(namespace: string, name: string, forWhat: string): Record<string, unknown> {
  return {
    apiVersion: `${GATEWAY_GROUP}/v1`,
    kind: 'Gateway',
    metadata: { name, namespace, labels: { [WAYPOINT_FOR]: forWhat } },
    spec: {
      gatewayClassName: WAYPOINT_CLASS,
      listeners: [{ name: 'mesh', port: WAYPOINT_HBONE_PORT, protocol: 'HBONE' }],
    },
  };
}

function condition(conditions: readonly Condition[], type: string): string {
  const c = conditions.find((x) => x.type === type);
  return c === undefined ? 'Unknown' : c.status;
}

export async function waypointCommand(
  argv: readonly string[],
  s: CliSettings,
  kubectl: (s: CliSettings, t: KubectlTarget) => KubectlRunner = (s, t) => spawnKubectl(s.kubectl, t),
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      namespace: { type: 'string', short: 'n' },
      'all-namespaces': { type: 'boolean', short: 'A', default: false },
      name: { type: 'string' },
      output: { type: 'string', short: 'o' },
      for: { type: 'string', default: 'service' },
      'enroll-namespace': { type: 'boolean', default: false },
      kubectl: { type: 'boolean', default: false },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [action, wpName, ...extra] = positionals;
  if (action === undefined || extra.length > 0) throw new AmbitError(ErrorCode.USAGE, WAYPOINT_USAGE);
  if (!(WAYPOINT_FOR_VALUES as readonly string[]).includes(values.for))
    throw new AmbitError(
      ErrorCode.USAGE,
      `--for ${values.for}: use one of ${WAYPOINT_FOR_VALUES.join(', ')}`,
    );
  const namespace = values.namespace ?? 'default';
  const name = wpName ?? 'waypoint';
  const inNs = (ns: string): boolean => values['all-namespaces'] || ns === namespace;
  const cluster = values.kubectl || values.kubeconfig !== undefined || values.context !== undefined;
  if (cluster && values.name !== undefined)
    throw new AmbitError(
      ErrorCode.USAGE,
      '--name picks a local cluster; --kubectl, --kubeconfig and --context a cluster through kubectl: use one',
    );
  if (cluster && action !== 'generate') {
    const k = kubectl(s, {
      ...(values.kubeconfig === undefined ? {} : { kubeconfig: values.kubeconfig }),
      ...(values.context === undefined ? {} : { context: values.context }),
    });
    return clusterWaypoint(k, action, {
      namespace,
      name,
      forWhat: values.for,
      enroll: values['enroll-namespace'],
      all: values['all-namespaces'],
      named: wpName !== undefined,
      output: values.output,
    });
  }
  switch (action) {
    case 'generate': {
      const format = parseOutputFormat(values.output, 'yaml');
      const gw = waypointGateway(namespace, name, values.for);
      process.stdout.write(`${format === 'json' ? JSON.stringify(gw, null, 2) : stringify(gw).trimEnd()}\n`);
      return 0;
    }
    case 'apply':
      return apply(loadState(s, values.name), namespace, name, values.for, values['enroll-namespace']);
    case 'delete':
      if (wpName === undefined)
        throw new AmbitError(ErrorCode.USAGE, `delete needs a name\n\n${WAYPOINT_USAGE}`);
      return remove(loadState(s, values.name), namespace, name);
    case 'list':
    case 'status': {
      const format = parseOutputFormat(values.output);
      const state = loadState(s, values.name);
      const st = await fetchMeshStatus(state);
      const gws = st.gateways.filter(
        (g) => inNs(g.namespace) && (action === 'list' || wpName === undefined || g.name === wpName),
      );
      if (format === 'json' || format === 'yaml') {
        const data =
          action === 'list' ? gws : { gateways: gws, routes: st.routes.filter((r) => inNs(r.namespace)) };
        process.stdout.write(`${render(data, format)}\n`);
        return 0;
      }
      const lines = [
        table(
          [
            'NAMESPACE',
            'NAME',
            'ADDRESS',
            'ACCEPTED',
            'PROGRAMMED',
            ...(action === 'status' ? ['CONDITIONS'] : []),
          ],
          gws.map((g) => [
            g.namespace,
            g.name,
            g.status.addresses[0]?.value ?? '-',
            condition(g.status.conditions, 'Accepted'),
            condition(g.status.conditions, 'Programmed'),
            ...(action === 'status' ? [formatConditions(g.status.conditions)] : []),
          ]),
        ),
      ];
      if (gws.length === 0)
        lines[0] = `no waypoints${values['all-namespaces'] ? '' : ` in namespace ${namespace}`} (ambit waypoint apply -n <ns>)`;
      if (action === 'status') {
        const rows = routeRows(st, state, inNs);
        if (rows.length > 0) lines.push('', table(['ROUTE', 'NAMESPACE', 'PARENT', 'CONDITIONS'], rows));
      }
      process.stdout.write(`${lines.join('\n')}\n`);
      return 0;
    }
    default:
      throw new AmbitError(ErrorCode.USAGE, `unknown command "waypoint ${action}"\n\n${WAYPOINT_USAGE}`);
  }
}

/** The manifests folder of a local cluster: where `apply` writes (the cluster watches it). */
function manifestsDir(state: LocalState): string {
  if (!existsSync(state.manifests) || !statSync(state.manifests).isDirectory())
    throw new AmbitError(
      ErrorCode.LOCAL_STATE,
      `the cluster was started from the file ${state.manifests}; waypoint apply writes into a manifests folder (start it from a folder)`,
    );
  return state.manifests;
}

const fileOf = (dir: string, namespace: string, name: string): string =>
  join(dir, `waypoint.${namespace}.${name}.yaml`);

function writeAtomic(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** Sets (or removes, with `undefined`) a label of the Namespace object declared in the manifests folder. */
function labelNamespace(
  dir: string,
  namespace: string,
  key: string,
  value: string | undefined,
): string | undefined {
  for (const f of readdirYaml(dir)) {
    const text = readFileSync(f, 'utf8');
    const docs = parseAllDocuments(text);
    let changed = false;
    for (const d of docs) {
      const o = d.toJS() as { kind?: string; metadata?: { name?: string } } | null;
      if (o?.kind !== 'Namespace' || o.metadata?.name !== namespace) continue;
      if (value === undefined) {
        if (d.hasIn(['metadata', 'labels', key])) d.deleteIn(['metadata', 'labels', key]);
      } else d.setIn(['metadata', 'labels', key], value);
      changed = true;
    }
    if (changed) {
      writeAtomic(f, docs.map((d) => d.toString()).join(''));
      return f;
    }
  }
  return undefined;
}

function readdirYaml(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .map((f) => join(dir, f));
}

function apply(state: LocalState, namespace: string, name: string, forWhat: string, enroll: boolean): number {
  const dir = manifestsDir(state);
  if (!state.namespaces.some((n) => n.name === namespace))
    throw new AmbitError(
      ErrorCode.NOT_FOUND,
      `namespace ${namespace} is not in the cluster (declare it in ${dir})`,
    );
  const file = fileOf(dir, namespace, name);
  writeAtomic(
    file,
    `# Made by \`ambit waypoint apply\`; \`ambit waypoint delete ${name} -n ${namespace}\` removes it.\n${stringify(waypointGateway(namespace, name, forWhat))}`,
  );
  process.stdout.write(`waypoint ${namespace}/${name} applied (${file})\n`);
  if (enroll) {
    const f = labelNamespace(dir, namespace, USE_WAYPOINT, name);
    if (f === undefined)
      throw new AmbitError(ErrorCode.NOT_FOUND, `no Namespace ${namespace} object in ${dir} to label`);
    process.stdout.write(`namespace ${namespace} labelled ${USE_WAYPOINT}=${name} (${f})\n`);
  }
  return 0;
}

function remove(state: LocalState, namespace: string, name: string): number {
  const dir = manifestsDir(state);
  const file = fileOf(dir, namespace, name);
  if (!existsSync(file))
    throw new AmbitError(
      ErrorCode.NOT_FOUND,
      `no waypoint ${namespace}/${name} made by \`ambit waypoint apply\` (a Gateway declared in your own manifests is removed there)`,
    );
  rmSync(file);
  process.stdout.write(`waypoint ${namespace}/${name} deleted\n`);
  const ns = state.namespaces.find((n) => n.name === namespace);
  if (ns?.labels[USE_WAYPOINT] === name) {
    const f = labelNamespace(dir, namespace, USE_WAYPOINT, undefined);
    if (f !== undefined)
      process.stdout.write(`namespace ${namespace}: label ${USE_WAYPOINT} removed (${f})\n`);
  }
  return 0;
}

interface ClusterWaypointArgs {
  readonly namespace: string;
  readonly name: string;
  readonly forWhat: string;
  readonly enroll: boolean;
  readonly all: boolean;
  /** Whether a name was given (status of one waypoint). */
  readonly named: boolean;
  readonly output: string | undefined;
}

interface WireGateway {
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
  readonly spec?: { readonly gatewayClassName?: string };
  readonly status?: { readonly conditions?: Condition[]; readonly addresses?: { value?: string }[] };
}

/** The waypoint commands against a cluster, through kubectl (Ambit carries no kubeconfig code). */
async function clusterWaypoint(k: KubectlRunner, action: string, a: ClusterWaypointArgs): Promise<number> {
  const gatewayRes = `gateways.${GATEWAY_GROUP}`;
  switch (action) {
    case 'apply': {
      const gw = waypointGateway(a.namespace, a.name, a.forWhat);
      await mustRun(k, ['apply', '--server-side', '--field-manager=ambit', '-f', '-'], {
        stdin: stringify(gw),
      });
      if (a.enroll)
        await mustRun(k, ['label', 'namespace', a.namespace, `${USE_WAYPOINT}=${a.name}`, '--overwrite']);
      return 0;
    }
    case 'delete': {
      if (!a.named) throw new AmbitError(ErrorCode.USAGE, `delete needs a name\n\n${WAYPOINT_USAGE}`);
      await mustRun(k, ['delete', '-n', a.namespace, `${gatewayRes}/${a.name}`]);
      const ns = JSON.parse(
        await mustRun(k, ['get', 'namespace', a.namespace, '-o', 'json'], { capture: true }),
      ) as { metadata?: { labels?: Record<string, string> } };
      if (ns.metadata?.labels?.[USE_WAYPOINT] === a.name)
        await mustRun(k, ['label', 'namespace', a.namespace, `${USE_WAYPOINT}-`]);
      return 0;
    }
    case 'list':
    case 'status': {
      const format = parseOutputFormat(a.output);
      const scope = a.all ? ['-A'] : ['-n', a.namespace];
      const list = JSON.parse(
        await mustRun(k, ['get', gatewayRes, ...scope, '-o', 'json'], { capture: true }),
      ) as { items?: WireGateway[] };
      const gws = (list.items ?? []).filter(
        (g) =>
          g.spec?.gatewayClassName === WAYPOINT_CLASS &&
          (action === 'list' || !a.named || g.metadata?.name === a.name),
      );
      if (format === 'json' || format === 'yaml') {
        process.stdout.write(`${render(gws, format)}\n`);
        return 0;
      }
      const conditions = (g: WireGateway): Condition[] => g.status?.conditions ?? [];
      const text =
        gws.length === 0
          ? `no waypoints${a.all ? '' : ` in namespace ${a.namespace}`} (ambit waypoint apply -n <ns> --kubectl)`
          : table(
              [
                'NAMESPACE',
                'NAME',
                'ADDRESS',
                'ACCEPTED',
                'PROGRAMMED',
                ...(action === 'status' ? ['CONDITIONS'] : []),
              ],
              gws.map((g) => [
                g.metadata?.namespace ?? '',
                g.metadata?.name ?? '',
                g.status?.addresses?.[0]?.value ?? '-',
                condition(conditions(g), 'Accepted'),
                condition(conditions(g), 'Programmed'),
                ...(action === 'status' ? [formatConditions(conditions(g))] : []),
              ]),
            );
      process.stdout.write(`${text}\n`);
      return 0;
    }
    default:
      throw new AmbitError(ErrorCode.USAGE, `unknown command "waypoint ${action}"\n\n${WAYPOINT_USAGE}`);
  }
}
