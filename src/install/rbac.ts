import { callRequests, type KubeCall, type KubeCallTable, type KubeRequest } from '../kube/api-calls.js';

/** One rule of a (Cluster)Role, as RBAC has it. */
export interface PolicyRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
  readonly resourceNames?: readonly string[];
}

/**
 * The built-in ClusterRoles Ambit binds to (their rules as the API server bootstraps them):
 * `system:auth-delegator` lets the control plane review tokens (TokenReview) and ask for access reviews.
 */
export const BUILTIN_CLUSTER_ROLES: Readonly<Record<string, readonly PolicyRule[]>> = {
  'system:auth-delegator': [
    { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
    { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
  ],
};

const matches = (list: readonly string[], v: string): boolean => list.includes('*') || list.includes(v);

/**
 * Whether a rule allows a request, as the API server's RBAC authorizer decides (rbac/v1 semantics):
 * the group, the verb and `resource` or `resource/subresource` must each be listed (or `*`); a rule
 * with `resourceNames` allows only a request naming one of them, so never a list, watch, create or
 * deletecollection of a collection (they name no object). Pure.
 */
export function ruleAllows(rule: PolicyRule, call: KubeRequest): boolean {
  const res = call.subresource === undefined ? call.resource : `${call.resource}/${call.subresource}`;
  const resourceOk =
    rule.resources.includes('*') ||
    rule.resources.includes(res) ||
    (call.subresource !== undefined && rule.resources.includes(`*/${call.subresource}`));
  if (!matches(rule.apiGroups, call.group) || !matches(rule.verbs, call.verb) || !resourceOk) return false;
  if (rule.resourceNames === undefined || rule.resourceNames.length === 0) return true;
  return call.name !== undefined && rule.resourceNames.includes(call.name);
}

export const rulesAllow = (rules: readonly PolicyRule[], call: KubeRequest): boolean =>
  rules.some((r) => ruleAllows(r, call));

/** Whether rules allow every request a declared call stands for (each of its names, when it has some). */
export const rulesAllowCall = (rules: readonly PolicyRule[], call: KubeCall): boolean =>
  callRequests(call).every((r) => rulesAllow(rules, r));

/** The calls a built-in role already grants (left out of Ambit's own rules). */
function builtin(call: KubeCall, roles: readonly string[]): boolean {
  return roles.some((r) => rulesAllowCall(BUILTIN_CLUSTER_ROLES[r] ?? [], call));
}

/**
 * A daemon's ClusterRole rules from its call table: one rule per API group, set of verbs and set of
 * resource names (a call narrowed to names gets a rule of its own, with `resourceNames`), every list
 * sorted, so the same table always renders the same rules. Calls that `alsoBound` built-in roles
 * grant are left out.
 */
export function rulesFor(table: KubeCallTable, alsoBound: readonly string[] = []): PolicyRule[] {
  type Entry = { group: string; resource: string; names: string[] | undefined; verbs: Set<string> };
  const byResource = new Map<string, Entry>();
  for (const c of table.calls) {
    if (builtin(c, alsoBound)) continue;
    const resource = c.subresource === undefined ? c.resource : `${c.resource}/${c.subresource}`;
    const names = c.resourceNames === undefined ? undefined : [...new Set(c.resourceNames)].sort();
    const key = `${c.group}\n${resource}\n${names?.join(',') ?? '*'}`;
    const e = byResource.get(key) ?? { group: c.group, resource, names, verbs: new Set<string>() };
    e.verbs.add(c.verb);
    byResource.set(key, e);
  }
  type Rule = { group: string; verbs: string[]; names: string[] | undefined; resources: string[] };
  const byVerbs = new Map<string, Rule>();
  for (const e of byResource.values()) {
    const verbs = [...e.verbs].sort();
    const key = `${e.group}\n${verbs.join(',')}\n${e.names?.join(',') ?? '*'}`;
    const r = byVerbs.get(key) ?? { group: e.group, verbs, names: e.names, resources: [] };
    r.resources.push(e.resource);
    byVerbs.set(key, r);
  }
  const sortKey = (r: PolicyRule): string =>
    `${r.apiGroups[0]}\n${r.resources[0]}\n${r.resourceNames === undefined ? '' : `\u0001${r.resourceNames.join(',')}`}`;
  return [...byVerbs.values()]
    .map(
      (r): PolicyRule => ({
        apiGroups: [r.group],
        resources: r.resources.sort(),
        verbs: r.verbs,
        ...(r.names === undefined ? {} : { resourceNames: r.names }),
      }),
    )
    .sort((a, b) => {
      const ka = sortKey(a);
      const kb = sortKey(b);
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
}

interface RbacObject {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly [field: string]: unknown;
}

interface Subject {
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
}

/**
 * Whether a ServiceAccount may make a call (cluster-wide, or in `namespace`), given the RBAC objects
 * of an install: its ClusterRoleBindings (to rendered or built-in ClusterRoles) and, in that
 * namespace, its RoleBindings (to Roles or ClusterRoles). Pure: the authorizer's answer for these
 * objects alone.
 */
export function serviceAccountAllowed(
  objects: readonly RbacObject[],
  sa: { readonly namespace: string; readonly name: string },
  call: KubeRequest,
  namespace?: string,
): boolean {
  const isSubject = (s: Subject): boolean =>
    s.kind === 'ServiceAccount' && s.name === sa.name && s.namespace === sa.namespace;
  const rolesOf = (kind: 'ClusterRole' | 'Role', name: string, ns?: string): readonly PolicyRule[] => {
    const o = objects.find(
      (x) =>
        x.kind === kind &&
        x.metadata.name === name &&
        (kind === 'ClusterRole' || x.metadata.namespace === ns),
    );
    if (o !== undefined) return (o.rules as PolicyRule[] | undefined) ?? [];
    return kind === 'ClusterRole' ? (BUILTIN_CLUSTER_ROLES[name] ?? []) : [];
  };
  for (const b of objects) {
    if (b.kind !== 'ClusterRoleBinding' && b.kind !== 'RoleBinding') continue;
    if (b.kind === 'RoleBinding' && (namespace === undefined || b.metadata.namespace !== namespace)) continue;
    if (!((b.subjects as Subject[] | undefined) ?? []).some(isSubject)) continue;
    const ref = b.roleRef as { kind: 'ClusterRole' | 'Role'; name: string };
    if (b.kind === 'ClusterRoleBinding' && ref.kind !== 'ClusterRole') continue;
    if (rulesAllow(rolesOf(ref.kind, ref.name, b.metadata.namespace), call)) return true;
  }
  return false;
}
