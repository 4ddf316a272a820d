import { dns1123Subdomain, labelValue, qualifiedName } from '../config/validators.js';
import { type AuthorizationPolicy, type PolicyTargetRef, policyName, ROOT_NAMESPACE } from './types.js';

/**
 * What node proxies enforce in place of an AuthorizationPolicy that failed validation. An invalid ALLOW
 * is left out, as istiod leaves out a policy it cannot translate: it allows nothing, and if it was the
 * only ALLOW for its workloads they go back to "no ALLOW applies". An invalid DENY (or one whose action
 * cannot be read, so that it may be a DENY, or CUSTOM, whose external authorizer may deny) must not fail
 * open: the traffic it meant to stop would flow. It is replaced by a DENY of everything its selector
 * covers (the whole namespace, or the mesh for the root namespace, when the selector cannot be read
 * either) until it is fixed. A policy that attaches to a waypoint (`targetRef(s)`) is the waypoint's
 * to enforce, not the node proxies': its stand-in keeps the targets, and waypoints deny every request
 * to them; when the targets cannot be read either, every Service and waypoint Gateway of its namespace
 * (the refs named `*`, ANY_TARGET).
 *
 * `spec` is the raw `spec` of the manifest; `why` the rejection reasons. Returns undefined when the
 * policy does not fail closed.
 */
export function failClosedPolicy(
  spec: unknown,
  meta: { readonly namespace: string; readonly name: string },
  why: string,
): AuthorizationPolicy | undefined {
  // A spec that is not an object has no readable action either.
  const o = isObject(spec) ? spec : undefined;
  const action = o === undefined ? 'unreadable' : o.action;
  if (action === undefined || action === 'ALLOW' || action === 'AUDIT') return undefined;
  const head = { kind: 'AuthorizationPolicy', namespace: meta.namespace, name: meta.name } as const;
  if (o !== undefined && (o.targetRef !== undefined || o.targetRefs !== undefined))
    return {
      ...head,
      targetRefs: readTargetRefs(o.targetRefs ?? [o.targetRef]) ?? ANY_TARGET,
      action: 'DENY',
      rules: [{}],
      failClosed: why,
    };
  const selector = o === undefined ? undefined : readSelector(o.selector);
  return {
    ...head,
    ...(selector === undefined ? {} : { selector }),
    action: 'DENY',
    rules: [{}],
    failClosed: why,
  };
}

/** The stand-in's targets when its own cannot be read: every Service and waypoint of its namespace. */
export const ANY_TARGET: readonly PolicyTargetRef[] = [
  { kind: 'Service', name: '*' },
  { kind: 'Gateway', name: '*' },
];

/** The refs when every one of them names a Service or Gateway readably; undefined otherwise. */
function readTargetRefs(raw: unknown): PolicyTargetRef[] | undefined {
  if (!Array.isArray(raw) || raw.length === 0) return undefined;
  const out: PolicyTargetRef[] = [];
  for (const r of raw) {
    if (!isObject(r) || typeof r.name !== 'string' || dns1123Subdomain(r.name) !== undefined)
      return undefined;
    if (r.kind !== 'Service' && r.kind !== 'Gateway') return undefined;
    out.push({ kind: r.kind, name: r.name });
  }
  return out;
}

/** The selector's labels when every one of them is readable; undefined means "every workload in scope". */
function readSelector(raw: unknown): Readonly<Record<string, string>> | undefined {
  if (!isObject(raw)) return undefined;
  const m = raw.matchLabels;
  if (!isObject(m)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) {
    if (typeof v !== 'string' || qualifiedName(k) !== undefined || labelValue(v) !== undefined)
      return undefined;
    out[k] = v;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What the rejection adds about the stand-in: what is denied now, and until when. */
export function failClosedNote(p: AuthorizationPolicy): string {
  if (p.targetRefs !== undefined) {
    const what = p.targetRefs.some((r) => r.name === '*')
      ? `every Service and waypoint in namespace ${p.namespace} (its targetRefs cannot be read)`
      : p.targetRefs.map((r) => `${r.kind} ${p.namespace}/${r.name}`).join(', ');
    return `fails closed: it is (or may be) a DENY, so waypoints deny every request to ${what} until ${policyName(p)} is fixed`;
  }
  const scope =
    p.selector !== undefined
      ? `the workloads it selects (${Object.entries(p.selector)
          .map(([k, v]) => `${k}=${v}`)
          .join(
            ',',
          )}${p.namespace === ROOT_NAMESPACE ? ', in every namespace' : `, in namespace ${p.namespace}`})`
      : p.namespace === ROOT_NAMESPACE
        ? 'every workload in the mesh (its selector cannot be read, and it is in the root namespace)'
        : `every workload in namespace ${p.namespace}`;
  return `fails closed: it is (or may be) a DENY, so node proxies deny every connection to ${scope} until ${policyName(p)} is fixed`;
}
