import { formatConditions, type GatewayStatus, type RouteStatus } from '../gateway-api/status.js';
import { fabricNetns } from '../local/layout.js';
import type { LocalState } from '../local/state.js';
import { httpInNetns } from './netns-http.js';

/** The control plane's monitoring port, on the fabric namespace of a local cluster. */
const CP_MONITORING_PORT = 15014;

export interface MeshStatusDump {
  readonly gateways: readonly { namespace: string; name: string; status: GatewayStatus }[];
  readonly routes: readonly {
    kind: string;
    namespace: string;
    name: string;
    status: RouteStatus;
    rejected?: string;
  }[];
}

/** The mesh's Gateway and route status, from the control plane of a local cluster. */
export async function fetchMeshStatus(state: LocalState): Promise<MeshStatusDump> {
  const body = await httpInNetns(
    fabricNetns(state.cluster),
    CP_MONITORING_PORT,
    '/debug/status',
    'GET',
    (why) => `the control plane did not answer (${why}); is it running? (ambit local status)`,
  );
  return JSON.parse(body) as MeshStatusDump;
}

/** Route and local-admission problems together: a route the local cluster refused never reached the mesh. */
export function routeRows(
  status: MeshStatusDump,
  state: LocalState,
  inNs: (ns: string) => boolean,
): string[][] {
  const rows = status.routes
    .filter((r) => inNs(r.namespace))
    .flatMap((r) =>
      r.rejected !== undefined
        ? [[`${r.kind}/${r.name}`, r.namespace, '-', `Accepted=False (UnsupportedValue: ${r.rejected})`]]
        : r.status.parents.length === 0
          ? [[`${r.kind}/${r.name}`, r.namespace, '-', 'no parent Ambit serves']]
          : r.status.parents.map((p) => [
              `${r.kind}/${r.name}`,
              r.namespace,
              `${p.parentRef.kind}/${p.parentRef.namespace ?? r.namespace}/${p.parentRef.name}${p.parentRef.port === undefined ? '' : `:${p.parentRef.port}`}`,
              formatConditions(p.conditions),
            ]),
    );
  // Refused at admission (the local cluster validates like an API server): file:line:path and why.
  for (const i of state.issues) {
    const m = /^(HTTPRoute|GRPCRoute)\/([^/]+)\/(.+)$/.exec(i.object ?? '');
    if (m === null || i.severity !== 'error' || !inNs(m[2]!)) continue;
    rows.push([
      `${m[1]}/${m[3]}`,
      m[2]!,
      '-',
      `Accepted=False (UnsupportedValue: ${i.file}:${i.line} ${i.path}: ${i.message}; the last good version, if any, keeps serving)`,
    ]);
  }
  return rows;
}
