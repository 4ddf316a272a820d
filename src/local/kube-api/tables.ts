import type { ApiResource } from '../../kube/api-resources.js';
import type { Json } from './selectors.js';

/**
 * Server-side printing: what `kubectl get` shows. kubectl asks for a `meta.k8s.io/v1` Table and prints
 * its columns as they come (priority 1 columns only with `-o wide`), so the columns here are the API
 * server's own for each kind. Pure.
 */
interface Column {
  readonly name: string;
  readonly type?: 'string' | 'integer' | 'date';
  readonly priority?: 0 | 1;
  readonly cell: (o: Json) => string | number;
}

// biome-ignore lint/suspicious/noExplicitAny: cells read API objects by path; a missing field prints as <none>
type Any = Record<string, any>;

function meta(o: Json): Any {
  return (o.metadata ?? {}) as Any;
}

/** Kubernetes' HumanDuration: 45s, 3m20s, 25m, 5h10m, 3d4h, 12d, 3y. */
export function humanAge(from: string | undefined, now: number): string {
  if (from === undefined) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(from)) / 1000));
  if (s < 60 * 2) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 60 * 3) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

const none = (v: unknown): string => (v === undefined || v === '' || v === null ? '<none>' : String(v));

function columnsOf(kind: string, now: number): Column[] {
  const name: Column = { name: 'Name', cell: (o) => String(meta(o).name ?? '') };
  const age: Column = { name: 'Age', type: 'date', cell: (o) => humanAge(meta(o).creationTimestamp, now) };
  switch (kind) {
    case 'Pod':
      return [
        name,
        {
          name: 'Ready',
          cell: (o) => {
            const cs = ((o.status as Any)?.containerStatuses ?? []) as Any[];
            return `${cs.filter((c) => c.ready === true).length}/${((o.spec as Any)?.containers ?? []).length}`;
          },
        },
        { name: 'Status', cell: (o) => podStatus(o) },
        {
          name: 'Restarts',
          type: 'integer',
          cell: (o) =>
            (((o.status as Any)?.containerStatuses ?? []) as Any[]).reduce(
              (n, c) => n + Number(c.restartCount ?? 0),
              0,
            ),
        },
        age,
        { name: 'IP', priority: 1, cell: (o) => none((o.status as Any)?.podIP) },
        { name: 'Node', priority: 1, cell: (o) => none((o.spec as Any)?.nodeName) },
        { name: 'Nominated Node', priority: 1, cell: () => '<none>' },
        { name: 'Readiness Gates', priority: 1, cell: () => '<none>' },
      ];
    case 'Service':
      return [
        name,
        { name: 'Type', cell: (o) => String((o.spec as Any)?.type ?? 'ClusterIP') },
        { name: 'Cluster-IP', cell: (o) => none((o.spec as Any)?.clusterIP) },
        { name: 'External-IP', cell: () => '<none>' },
        {
          name: 'Port(s)',
          cell: (o) =>
            none(
              (((o.spec as Any)?.ports ?? []) as Any[])
                .map((p) => `${p.port}/${p.protocol ?? 'TCP'}`)
                .join(','),
            ),
        },
        age,
        {
          name: 'Selector',
          priority: 1,
          cell: (o) =>
            none(
              Object.entries(((o.spec as Any)?.selector ?? {}) as Record<string, string>)
                .map(([k, v]) => `${k}=${v}`)
                .join(','),
            ),
        },
      ];
    case 'EndpointSlice':
      return [
        name,
        { name: 'AddressType', cell: (o) => String(o.addressType ?? '') },
        { name: 'Ports', cell: (o) => none(((o.ports ?? []) as Any[]).map((p) => p.port).join(',')) },
        {
          name: 'Endpoints',
          cell: (o) => {
            const addrs = ((o.endpoints ?? []) as Any[]).flatMap((e) => (e.addresses ?? []) as string[]);
            if (addrs.length === 0) return '<unset>';
            return addrs.length > 3
              ? `${addrs.slice(0, 3).join(',')} + ${addrs.length - 3} more...`
              : addrs.join(',');
          },
        },
        age,
      ];
    case 'Namespace':
      return [name, { name: 'Status', cell: (o) => String((o.status as Any)?.phase ?? 'Active') }, age];
    case 'Node':
      return [
        name,
        { name: 'Status', cell: () => 'Ready' },
        { name: 'Roles', cell: () => '<none>' },
        age,
        { name: 'Version', cell: (o) => String((o.status as Any)?.nodeInfo?.kubeletVersion ?? '') },
        {
          name: 'Internal-IP',
          priority: 1,
          cell: (o) =>
            none(
              (((o.status as Any)?.addresses ?? []) as Any[]).find((a) => a.type === 'InternalIP')?.address,
            ),
        },
      ];
    case 'Deployment':
      return [
        name,
        {
          name: 'Ready',
          cell: (o) =>
            `${Number((o.status as Any)?.readyReplicas ?? 0)}/${Number((o.spec as Any)?.replicas ?? 1)}`,
        },
        { name: 'Up-to-date', type: 'integer', cell: (o) => Number((o.status as Any)?.updatedReplicas ?? 0) },
        {
          name: 'Available',
          type: 'integer',
          cell: (o) => Number((o.status as Any)?.availableReplicas ?? 0),
        },
        age,
      ];
    case 'Gateway':
      return [
        name,
        { name: 'Class', cell: (o) => String((o.spec as Any)?.gatewayClassName ?? '') },
        { name: 'Address', cell: (o) => String(((o.status as Any)?.addresses ?? [])[0]?.value ?? '') },
        { name: 'Programmed', cell: (o) => condition(o, 'Programmed') },
        age,
      ];
    case 'HTTPRoute':
    case 'GRPCRoute':
      return [name, { name: 'Hostnames', cell: (o) => ((o.spec as Any)?.hostnames ?? []).join(',') }, age];
    default:
      return [name, age];
  }
}

function condition(o: Json, type: string): string {
  return String(
    (((o.status as Any)?.conditions ?? []) as Any[]).find((c) => c.type === type)?.status ?? 'Unknown',
  );
}

/** The pod's STATUS column: a waiting reason (CrashLoopBackOff), Terminating, or the phase. */
function podStatus(o: Json): string {
  if (meta(o).deletionTimestamp !== undefined) return 'Terminating';
  for (const c of ((o.status as Any)?.containerStatuses ?? []) as Any[]) {
    const reason = c.state?.waiting?.reason ?? c.state?.terminated?.reason;
    if (reason !== undefined && reason !== 'Completed') return String(reason);
  }
  return String((o.status as Any)?.phase ?? 'Pending');
}

/** A Table of `objects`, each row carrying the object's metadata (kubectl prints NAMESPACE and labels from it). */
export function toTable(
  resource: ApiResource,
  objects: readonly Json[],
  resourceVersion: string,
  now = Date.now(),
): Json {
  const cols = columnsOf(resource.kind, now);
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: cols.map((c) => ({
      name: c.name,
      type: c.type ?? 'string',
      format: c.name === 'Name' ? 'name' : '',
      description: '',
      priority: c.priority ?? 0,
    })),
    rows: objects.map((o) => ({
      cells: cols.map((c) => c.cell(o)),
      object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: meta(o) },
    })),
  };
}
