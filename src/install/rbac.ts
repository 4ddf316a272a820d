import type { KubeCall, KubeCallTable } from '../kube/api-calls.js';

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
 * Whether a rule allows a call, as the API server's RBAC authorizer decides (rbac/v1 semantics):
 * the group, the verb and `resource` or `resource/subresource` must each be listed (or `*`); a rule
 * with `resourceNames` never allows list, watch, create or deletecollection of a collection, so
 * it is not taken for a call that names no object. Pure.
 */
export function ruleAllows(rule: PolicyRule, call: KubeCall): boolean {
  const res = call.subresource === undefined ? call.resource : `${call.resource}/${call.subresource}`;
  const resourceOk =
    rule.resources.includes('*') ||
    rule.resources.includes(res) ||
    (call.subresource !== undefined && rule.resources.includes(`*/${call.subresource}`));
  if (!matches(rule.apiGroups, call.group) || !matches(rule.verbs, call.verb) || !resourceOk) return false;
  return rule.resourceNames === undefined || rule.resourceNames.length === 0;
}

export const rulesAllow = (rules: readonly PolicyRule[], call: KubeCall): boolean =>
  rules.some((r) => ruleAllows(r, call));

/** The calls a built-in role already grants (left out of Ambit's own rules). */
function builtin(call: KubeCall, roles: readonly string[]): boolean {
  return roles.some((r) => rulesAllow(BUILTIN_CLUSTER_ROLES[r] ?? [], call));
}

/**
 * A daemon's ClusterRole rules from its call table: one rule per API group and set of verbs, every
 * list sorted, so the same table always renders the same rules. Calls that `alsoBound` built-in roles
 * grant are left out.
 */
export function rulesFor(table: KubeCallTable, alsoBound: readonly string[] = []): PolicyRule[] {
  const byResource = new Map<string, { group: string; resource: string; verbs: Set<string> }>();
  for (const c of table.calls) {
    if (builtin(c, alsoBound)) continue;
    const resource = c.subresource === undefined ? c.resource : `${c.resource}/${c.subresource}`;
    const key = `${c.group}\n${resource}`;
    const e = byResource.get(key) ?? { group: c.group, resource, verbs: new Set<string>() };
    e.verbs.add(c.verb);
    byResource.set(key, e);
  }
  const byVerbs = new Map<string, { group: string; verbs: string[]; resources: string[] }>();
  for (const e of byResource.values()) {
    const verbs = [...e.verbs].sort();
    const key = `${e.group}\n${verbs.join(',')}`;
    const r = byVerbs.get(key) ?? { group: e.group, verbs, resources: [] };
    r.resources.push(e.resource);
    byVerbs.set(key, r);
  }
  return [...byVerbs.values()]
    .map((r) => ({ apiGroups: [r.group], resources: r.resources.sort(), verbs: r.verbs }))
    .sort((a, b) => {
      const ka = `${a.apiGroups[0]}\n${a.resources[0]}`;
      const kb = `${b.apiGroups[0]}\n${b.resources[0]}`;
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
  call: KubeCall,
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
