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
  /**
   * Only the objects of these names (RBAC's `resourceNames`): a declared call with them allows, and
   * its rule grants, a request for one of these objects only.
   */
  readonly resourceNames?: readonly string[];
}

/**
 * One request's RBAC attributes: its call and, when it names an object (a get, patch, update or delete
 * of `.../<resource>/<name>`), that object's name. A list, watch or create of a collection names none.
 */
export interface KubeRequest {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource?: string;
  readonly name?: string;
}

/**
 * `list gateway.networking.k8s.io/gateways/status`, `patch core/configmaps[ambit-ca-root-cert]` (a
 * call narrowed to names), for messages. A request's object name is not shown.
 */
export function showCall(c: KubeCall | KubeRequest): string {
  const res = c.subresource === undefined ? c.resource : `${c.resource}/${c.subresource}`;
  const names = 'resourceNames' in c && c.resourceNames !== undefined ? `[${c.resourceNames.join(',')}]` : '';
  return `${c.verb} ${c.group === '' ? 'core' : c.group}/${res}${names}`;
}

/**
 * The requests a declared call stands for: one per name when it is narrowed to names, else the call
 * itself (naming no object). Pure.
 */
export function callRequests(c: KubeCall): KubeRequest[] {
  const base = {
    verb: c.verb,
    group: c.group,
    resource: c.resource,
    ...(c.subresource === undefined ? {} : { subresource: c.subresource }),
  };
  return c.resourceNames === undefined ? [base] : c.resourceNames.map((name) => ({ ...base, name }));
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
export function requestCall(method: string, url: string): KubeRequest | undefined {
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
  return {
    verb,
    group,
    resource,
    ...(subresource === undefined ? {} : { subresource }),
    ...(name === undefined ? {} : { name }),
  };
}

const sameCall = (a: KubeCall, b: KubeCall | KubeRequest): boolean =>
  a.verb === b.verb && a.group === b.group && a.resource === b.resource && a.subresource === b.subresource;

/**
 * Whether a declared call covers a request: the same verb, group, resource and subresource and, when
 * the call is narrowed to names, a request for one of them (a request that names no object is not
 * covered by a narrowed call, as RBAC decides). Pure.
 */
export function callCovers(declared: KubeCall, r: KubeRequest): boolean {
  if (!sameCall(declared, r)) return false;
  return (
    declared.resourceNames === undefined || (r.name !== undefined && declared.resourceNames.includes(r.name))
  );
}

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

  /** Whether a request is declared (for a call narrowed to names, the request's object must be one of them). */
  allows(r: KubeRequest): boolean {
    return this.calls.some((d) => callCovers(d, r));
  }

  /**
   * Whether a grant (a call, maybe narrowed to names) is declared: every request it allows is. A grant
   * of all names is not declared by a call narrowed to some.
   */
  declares(c: KubeCall): boolean {
    return this.calls.some(
      (d) =>
        sameCall(d, c) &&
        (d.resourceNames === undefined ||
          c.resourceNames?.every((n) => d.resourceNames?.includes(n)) === true),
    );
  }

  /** Throws when the request is not declared: the daemon would be refused by the RBAC it is installed with. */
  check(method: string, url: string): void {
    const c = requestCall(method, url);
    if (c === undefined || this.allows(c)) return;
    throw new AmbitError(
      ErrorCode.KUBE_API,
      `${method} ${url.split('?')[0]}: ${showCall(c)} is not among the ${this.daemon}'s declared API calls${c.name === undefined ? '' : ` for the object ${c.name}`} (src/cluster/daemon-calls.ts); declare it there so that \`ambit install\` grants it`,
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
