import type {
  AuthorizationPolicy,
  AuthzCondition,
  AuthzOperation,
  AuthzRule,
  AuthzSource,
} from '../policy/types.js';
import { policyName } from '../policy/types.js';
import {
  type ConnAttrs,
  check,
  conditionMatches,
  operationMatches,
  sourceMatches,
  stringMatches,
} from './authz.js';

/**
 * Istio's authorization for one HTTP request at a waypoint: the AuthorizationPolicies whose targetRefs
 * name the Service the request addressed, or the waypoint's own Gateway. Pure; evaluated once per
 * request, before routing.
 */

/** What the waypoint knows about a request when it decides whether to let it through. */
export interface RequestAttrs {
  /** The client's peer identity without `spiffe://` (what its node proxy proved). */
  readonly srcPrincipal?: string;
  readonly srcIp: string;
  /** The address and port the client dialled (the Service VIP and port). */
  readonly dstIp: string;
  readonly dstPort: number;
  readonly method: string;
  /** The path without its query. */
  readonly path: string;
  /** The Host header (`:authority`), as sent. */
  readonly host: string;
  /** A request header by lowercase name; several values joined with `, `. */
  readonly header: (name: string) => string | undefined;
  /** The request's verified JWT (RequestAuthentication), when it carried one. */
  readonly auth?: {
    /** `<iss>/<sub>`. */
    readonly principal: string;
    readonly claims: Readonly<Record<string, unknown>>;
  };
}

/** The request's destination as policies target it. */
export interface RequestTarget {
  /** The waypoint this is (its Gateway). */
  readonly waypoint: { readonly namespace: string; readonly name: string };
  /** The Service addressed; undefined for a request addressed to a pod. */
  readonly service?: { readonly namespace: string; readonly name: string };
}

export interface RequestAuthzDecision {
  readonly allowed: boolean;
  /** A sentence for the access log and `explain`. */
  readonly reason: string;
  /** The policy and rule (index in its `rules`) that decided, when one did. */
  readonly matched?: { readonly policy: string; readonly action: 'ALLOW' | 'DENY'; readonly rule: number };
  /**
   * What the access log names: the policy that matched, or, for a request no ALLOW policy matched,
   * those ALLOW policies; empty when no DENY or ALLOW policy decided.
   */
  readonly decidedBy: readonly string[];
  /** `ns/name` of the AUDIT policies that matched (the request is marked audited, nothing more). */
  readonly audited: readonly string[];
  /** `ns/name` of every policy that targets the request, sorted. */
  readonly applicable: readonly string[];
}

/**
 * Whether a waypoint policy (authorization or authentication) targets the request: same namespace,
 * and a ref naming the Service or the Gateway (`*`, only in a fail-closed stand-in whose targets
 * could not be read: any of the namespace).
 */
export function policyTargets(
  p: { readonly namespace: string; readonly targetRefs?: AuthorizationPolicy['targetRefs'] },
  t: RequestTarget,
): boolean {
  return (p.targetRefs ?? []).some((r) =>
    r.kind === 'Gateway'
      ? t.waypoint.namespace === p.namespace && (r.name === t.waypoint.name || r.name === '*')
      : t.service !== undefined &&
        t.service.namespace === p.namespace &&
        (r.name === t.service.name || r.name === '*'),
  );
}

const anyOf = (patterns: readonly string[], value: string | undefined): boolean =>
  patterns.some((p) => stringMatches(p, value));

/** Istio compares hosts case-insensitively; a pattern matches the Host header with or without its port. */
function hostMatches(patterns: readonly string[], host: string): boolean {
  const h = host.toLowerCase();
  const bare = /^(\[[^\]]+\]|[^:]+)(:\d+)?$/.exec(h)?.[1] ?? h;
  return patterns.some((p) => stringMatches(p.toLowerCase(), h) || stringMatches(p.toLowerCase(), bare));
}

/**
 * A claim by its path (`[groups]`, `[a][b]`): a string, or each string in a list (Istio matches a list
 * claim when any element matches). Other values (numbers, objects) are their JSON text.
 */
export function claimValues(
  claims: Readonly<Record<string, unknown>> | undefined,
  path: readonly string[],
): string[] {
  let v: unknown = claims;
  for (const k of path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return [];
    v = (v as Record<string, unknown>)[k];
  }
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x)));
  return [typeof v === 'string' ? v : JSON.stringify(v)];
}

/** `request.auth.claims[a][b]` -> `['a', 'b']`; undefined when the key is not a claims key. */
export function claimPath(key: string): string[] | undefined {
  const m = /^request\.auth\.claims((?:\[[^[\]]+\])+)$/.exec(key);
  return m === null ? undefined : [...m[1]!.matchAll(/\[([^[\]]+)\]/g)].map((x) => x[1]!);
}

/** `request.headers[x-user]` -> `x-user`. */
export function headerKey(key: string): string | undefined {
  return /^request\.headers\[([^[\]]+)\]$/.exec(key)?.[1]?.toLowerCase();
}

function l4(a: RequestAttrs): ConnAttrs {
  return {
    ...(a.srcPrincipal === undefined ? {} : { srcPrincipal: a.srcPrincipal }),
    srcIp: a.srcIp,
    dstIp: a.dstIp,
    dstPort: a.dstPort,
    dst: { namespace: '', labels: {} },
  };
}

function sourceMatchesRequest(s: AuthzSource, a: RequestAttrs): boolean {
  const rp = a.auth?.principal;
  return (
    sourceMatches(s, l4(a)) &&
    check(s.requestPrincipals, (l) => anyOf(l, rp), true) &&
    check(s.notRequestPrincipals, (l) => anyOf(l, rp), false)
  );
}

function operationMatchesRequest(o: AuthzOperation, a: RequestAttrs): boolean {
  return (
    operationMatches(o, l4(a)) &&
    check(o.hosts, (l) => hostMatches(l, a.host), true) &&
    check(o.notHosts, (l) => hostMatches(l, a.host), false) &&
    check(o.methods, (l) => l.includes(a.method), true) &&
    check(o.notMethods, (l) => l.includes(a.method), false) &&
    check(o.paths, (l) => anyOf(l, a.path), true) &&
    check(o.notPaths, (l) => anyOf(l, a.path), false)
  );
}

function conditionMatchesRequest(c: AuthzCondition, a: RequestAttrs): boolean {
  if (!c.key.startsWith('request.')) return conditionMatches(c, l4(a));
  const observed = (): string[] => {
    const h = headerKey(c.key);
    if (h !== undefined) {
      const v = a.header(h);
      return v === undefined ? [] : [v];
    }
    if (c.key === 'request.auth.principal') return a.auth === undefined ? [] : [a.auth.principal];
    const path = claimPath(c.key);
    return path === undefined ? [] : claimValues(a.auth?.claims, path);
  };
  const seen = observed();
  const hit = (values: readonly string[]): boolean => seen.some((v) => anyOf(values, v));
  return check(c.values, hit, true) && check(c.notValues, hit, false);
}

/** Whether every present part of a rule matches the request. */
export function ruleMatchesRequest(r: AuthzRule, a: RequestAttrs): boolean {
  return (
    (r.from === undefined || r.from.some((s) => sourceMatchesRequest(s, a))) &&
    (r.to === undefined || r.to.some((o) => operationMatchesRequest(o, a))) &&
    (r.when === undefined || r.when.every((c) => conditionMatchesRequest(c, a)))
  );
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Istio's order: AUDIT policies are noted; any matching DENY policy denies; otherwise, when ALLOW
 * policies target the request, one of them must match; otherwise the request is allowed. Policies are
 * tried in `ns/name` order so that the reported match does not depend on arrival order.
 */
export function authorizeRequest(
  policies: readonly AuthorizationPolicy[],
  target: RequestTarget,
  a: RequestAttrs,
): RequestAuthzDecision {
  const selected = policies
    .filter((p) => policyTargets(p, target))
    .sort((x, y) => cmp(policyName(x), policyName(y)));
  const applicable = selected.map(policyName);
  const first = (p: AuthorizationPolicy): number => p.rules.findIndex((r) => ruleMatchesRequest(r, a));
  const audited = selected.filter((p) => p.action === 'AUDIT' && first(p) >= 0).map(policyName);
  for (const p of selected.filter((x) => x.action === 'DENY')) {
    const rule = first(p);
    if (rule >= 0) {
      const policy = policyName(p);
      return {
        allowed: false,
        reason:
          p.failClosed === undefined
            ? `denied by DENY policy ${policy} (rule ${rule})`
            : `denied: AuthorizationPolicy ${policy} failed validation and may be a DENY, so the waypoint denies every request to what it targets until it is fixed (${p.failClosed})`,
        matched: { policy, action: 'DENY', rule },
        decidedBy: [policy],
        audited,
        applicable,
      };
    }
  }
  const allows = selected.filter((x) => x.action === 'ALLOW');
  if (allows.length === 0)
    return {
      allowed: true,
      reason:
        applicable.length === 0
          ? 'allowed: no waypoint policy applies'
          : `allowed: no DENY policy matches (${applicable.join(', ')}) and no ALLOW policy applies`,
      decidedBy: [],
      audited,
      applicable,
    };
  for (const p of allows) {
    const rule = first(p);
    if (rule >= 0) {
      const policy = policyName(p);
      return {
        allowed: true,
        reason: `allowed by ALLOW policy ${policy} (rule ${rule})`,
        matched: { policy, action: 'ALLOW', rule },
        decidedBy: [policy],
        audited,
        applicable,
      };
    }
  }
  const names = allows.map(policyName);
  return {
    allowed: false,
    reason:
      names.length === 1
        ? `denied: ALLOW policy ${names[0]} applies and none of its rules matches`
        : `denied: ALLOW policies ${names.join(', ')} apply and none matches`,
    decidedBy: names,
    audited,
    applicable,
  };
}
