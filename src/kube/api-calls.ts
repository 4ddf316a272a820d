import { AmbitError, ErrorCode } from '../errors.js';

/**
 * One kind of request to the Kubernetes API, in RBAC's terms: the verb, the API group ('' for the
 * core group), the resource and, for `pods/log` or `gateways/status`, the subresource. What an RBAC
 * rule grants and what the API server's authorizer asks about (its RequestInfo).
 */
export interface KubeCall {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource?: string;
}

/** `list gateway.networking.k8s.io/gateways/status`, for messages. */
export function showCall(c: KubeCall): string {
  const res = c.subresource === undefined ? c.resource : `${c.resource}/${c.subresource}`;
  return `${c.verb} ${c.group === '' ? 'core' : c.group}/${res}`;
}

const METHOD_VERBS: Readonly<Record<string, string>> = {
  POST: 'create',
  PUT: 'update',
  PATCH: 'patch',
};

/**
 * The RBAC attributes of a request, as the API server derives them from its method and path
 * (k8s.io/apiserver RequestInfoFactory): GET of one object is `get`, of a collection `list`, or `watch`
 * with `watch=1|true`; DELETE of a collection is `deletecollection`. Undefined for a path that is not
 * a resource path (`/version`, `/healthz`). Pure.
 */
export function requestCall(method: string, url: string): KubeCall | undefined {
  const [path = '', query = ''] = url.split('?', 2);
  const parts = path.split('/').filter((p) => p !== '');
  let rest: string[];
  let group: string;
  if (parts[0] === 'api' && parts.length >= 2) {
    group = '';
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 3) {
    group = parts[1] ?? '';
    rest = parts.slice(3);
  } else return undefined;
  // `namespaces/<ns>/<resource>...` is namespaced, unless it is the namespace itself (`namespaces/<ns>`
  // or its subresource `namespaces/<ns>/status`, `finalize`).
  if (rest[0] === 'namespaces' && rest.length >= 3 && !['status', 'finalize'].includes(rest[2] ?? ''))
    rest = rest.slice(2);
  const [resource, name, subresource] = rest;
  if (resource === undefined) return undefined;
  const params = new URLSearchParams(query);
  const watch = ['1', 'true'].includes(params.get('watch') ?? '');
  const m = method.toUpperCase();
  let verb: string;
  if (m === 'GET' || m === 'HEAD')
    verb = name === undefined ? (watch ? 'watch' : 'list') : watch ? 'watch' : 'get';
  else if (m === 'DELETE') verb = name === undefined ? 'deletecollection' : 'delete';
  else verb = METHOD_VERBS[m] ?? m.toLowerCase();
  return { verb, group, resource, ...(subresource === undefined ? {} : { subresource }) };
}

const sameCall = (a: KubeCall, b: KubeCall): boolean =>
  a.verb === b.verb && a.group === b.group && a.resource === b.resource && a.subresource === b.subresource;

/**
 * The API calls one daemon makes, declared once: its client refuses any other (so a new call shows up
 * in the first test that makes it), and `ambit install` grants exactly these in the daemon's ClusterRole.
 */
export class KubeCallTable {
  constructor(
    /** `node agent`, for messages. */
    readonly daemon: string,
    readonly calls: readonly KubeCall[],
  ) {}

  allows(c: KubeCall): boolean {
    return this.calls.some((d) => sameCall(d, c));
  }

  /** Throws when the request is not declared: the daemon would be refused by the RBAC it is installed with. */
  check(method: string, url: string): void {
    const c = requestCall(method, url);
    if (c === undefined || this.allows(c)) return;
    throw new AmbitError(
      ErrorCode.KUBE_API,
      `${method} ${url.split('?')[0]}: ${showCall(c)} is not among the ${this.daemon}'s declared API calls (src/cluster/daemon-calls.ts); declare it there so that \`ambit install\` grants it`,
    );
  }
}

/** `list` and `watch` of each resource: what a reflector (list, then watch) needs. */
export function watchCalls(
  resources: readonly { readonly group: string; readonly plural: string }[],
): KubeCall[] {
  return resources.flatMap((r) =>
    ['list', 'watch'].map((verb) => ({ verb, group: r.group, resource: r.plural })),
  );
}

/**
 * The resources (`deployments.apps`, `services`) a daemon's table writes (patch of the object itself,
 * not a subresource), as local mode's API grants a daemon principal its writes.
 */
export function writtenResources(table: KubeCallTable): string[] {
  const out = new Set<string>();
  for (const c of table.calls)
    if (c.verb === 'patch' && c.subresource === undefined)
      out.add(c.group === '' ? c.resource : `${c.resource}.${c.group}`);
  return [...out].sort();
}
