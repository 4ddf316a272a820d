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
import { loadState } from './local-common.js';
import { fetchMeshStatus, routeRows } from './mesh-status.js';
import { parseOutputFormat, render, table } from './output.js';
import type { CliSettings } from './settings.js';

export const WAYPOINT_USAGE = `Usage: ambit waypoint <command> [name] [-n namespace | -A] [--name cluster]

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
                      Services, with theirs (Accepted, ResolvedRefs) and the reasons`;

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

export async function waypointCommand(argv: readonly string[], s: CliSettings): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      namespace: { type: 'string', short: 'n' },
      'all-namespaces': { type: 'boolean', short: 'A', default: false },
      name: { type: 'string' },
      output: { type: 'string', short: 'o' },
      for: { type: 'string', default: 'service' },
      'enroll-namespace': { type: 'boolean', default: false },
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
