import { inCidr } from '../net/ip.js';
import {
  type AuthorizationPolicy,
  type AuthzCondition,
  type AuthzOperation,
  type AuthzRule,
  type AuthzSource,
  type MtlsMode,
  type PeerAuthentication,
  policyName,
  ROOT_NAMESPACE,
} from '../policy/types.js';

/** What a node proxy knows about an inbound connection when it decides whether to let it through. */
export interface ConnAttrs {
  /** The peer identity without `spiffe://`, `cluster.local/ns/x/sa/y`; undefined for plaintext. */
  readonly srcPrincipal?: string;
  readonly srcIp: string;
  readonly dstIp: string;
  readonly dstPort: number;
  /** The destination workload. */
  readonly dst: { readonly namespace: string; readonly labels: Readonly<Record<string, string>> };
}

export interface AuthzDecision {
  readonly allowed: boolean;
  /** A sentence for logs and `explain`: which policy and rule decided, or why none did. */
  readonly reason: string;
  /** The policy and rule (index in the manifest's `rules`) that decided, when one did. */
  readonly matched?: { readonly policy: string; readonly action: 'ALLOW' | 'DENY'; readonly rule: number };
  /** `ns/name` of every policy that selects the destination, sorted. */
  readonly applicable: readonly string[];
}

type Workload = ConnAttrs['dst'];

function selects(
  p: { readonly namespace: string; readonly selector?: Readonly<Record<string, string>> },
  dst: Workload,
): boolean {
  return p.selector === undefined || Object.entries(p.selector).every(([k, v]) => dst.labels[k] === v);
}

/**
 * Istio's string match: `*` matches any present value, `*suffix` and `prefix*` match ends, anything
 * else matches exactly. An absent value (no peer identity) matches nothing, not even `*`.
 */
export function stringMatches(pattern: string, value: string | undefined): boolean {
  if (value === undefined || value === '') return false;
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return value.endsWith(pattern.slice(1));
  if (pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  return pattern === value;
}

/** `cluster.local/ns/shop/sa/web` -> `shop`: Istio's source.namespace comes from the peer identity. */
export function namespaceOfPrincipal(principal: string | undefined): string | undefined {
  return principal === undefined ? undefined : /(?:^|\/)ns\/([^/]+)\/sa\/[^/]+$/.exec(principal)?.[1];
}

const anyString = (patterns: readonly string[], value: string | undefined): boolean =>
  patterns.some((p) => stringMatches(p, value));
const anyCidr = (blocks: readonly string[], ip: string): boolean => blocks.some((b) => inCidr(ip, b));

/** A positive list must match when present; a negative list must not. */
export function check<T>(
  list: readonly T[] | undefined,
  hit: (l: readonly T[]) => boolean,
  positive: boolean,
): boolean {
  if (list === undefined) return true;
  return hit(list) === positive;
}

export function sourceMatches(s: AuthzSource, a: ConnAttrs): boolean {
  const ns = namespaceOfPrincipal(a.srcPrincipal);
  return (
    check(s.principals, (l) => anyString(l, a.srcPrincipal), true) &&
    check(s.notPrincipals, (l) => anyString(l, a.srcPrincipal), false) &&
    check(s.namespaces, (l) => anyString(l, ns), true) &&
    check(s.notNamespaces, (l) => anyString(l, ns), false) &&
    check(s.ipBlocks, (l) => anyCidr(l, a.srcIp), true) &&
    check(s.notIpBlocks, (l) => anyCidr(l, a.srcIp), false)
  );
}

export function operationMatches(o: AuthzOperation, a: ConnAttrs): boolean {
  return (
    check(o.ports, (l) => l.includes(a.dstPort), true) &&
    check(o.notPorts, (l) => l.includes(a.dstPort), false)
  );
}

export function conditionMatches(c: AuthzCondition, a: ConnAttrs): boolean {
  const hit = (values: readonly string[]): boolean => {
    switch (c.key) {
      case 'source.ip':
        return anyCidr(values, a.srcIp);
      case 'destination.ip':
        return anyCidr(values, a.dstIp);
      case 'destination.port':
        return values.some((v) => Number(v) === a.dstPort);
      case 'source.principal':
        return anyString(values, a.srcPrincipal);
      case 'source.namespace':
        return anyString(values, namespaceOfPrincipal(a.srcPrincipal));
      default:
        // request.* keys are only in waypoint policies (targetRefs), which node proxies never evaluate.
        return false;
    }
  };
  return check(c.values, hit, true) && check(c.notValues, hit, false);
}

/** Whether every present part of a rule matches the connection. */
export function ruleMatches(r: AuthzRule, a: ConnAttrs): boolean {
  return (
    (r.from === undefined || r.from.some((s) => sourceMatches(s, a))) &&
    (r.to === undefined || r.to.some((o) => operationMatches(o, a))) &&
    (r.when === undefined || r.when.every((c) => conditionMatches(c, a)))
  );
}

/**
 * Whether a policy applies to a workload at L4: its own namespace or the root namespace, and its
 * selector. A policy with targetRefs is a waypoint's (src/mesh/authz-l7.ts) and applies to none here.
 */
export function policySelects(
  p: {
    readonly namespace: string;
    readonly selector?: Readonly<Record<string, string>>;
    readonly targetRefs?: readonly unknown[];
  },
  dst: Workload,
  rootNamespace = ROOT_NAMESPACE,
): boolean {
  return (
    p.targetRefs === undefined &&
    (p.namespace === dst.namespace || p.namespace === rootNamespace) &&
    selects(p, dst)
  );
}

function firstMatch(p: AuthorizationPolicy, a: ConnAttrs): number {
  return p.rules.findIndex((r) => ruleMatches(r, a));
}

/**
 * Istio's L4 authorization: any matching DENY policy denies; otherwise, when ALLOW policies apply to
 * the destination, one of them must match; otherwise the connection is allowed. Policies are tried in
 * `ns/name` order, so the reported match does not depend on the order they arrived in.
 */
export function authorize(
  policies: readonly AuthorizationPolicy[],
  attrs: ConnAttrs,
  rootNamespace = ROOT_NAMESPACE,
): AuthzDecision {
  const selected = policies
    .filter((p) => policySelects(p, attrs.dst, rootNamespace))
    .sort((x, y) => cmp(policyName(x), policyName(y)));
  const applicable = selected.map(policyName);
  for (const p of selected.filter((x) => x.action === 'DENY')) {
    const rule = firstMatch(p, attrs);
    if (rule >= 0) {
      const policy = policyName(p);
      return {
        allowed: false,
        reason:
          p.failClosed === undefined
            ? `denied by DENY policy ${policy} (rule ${rule})`
            : `denied: AuthorizationPolicy ${policy} failed validation and may be a DENY, so it denies everything it selects until it is fixed (${p.failClosed})`,
        matched: { policy, action: 'DENY', rule },
        applicable,
      };
    }
  }
  const allows = selected.filter((x) => x.action === 'ALLOW');
  if (allows.length === 0) {
    return {
      allowed: true,
      reason:
        applicable.length === 0
          ? 'allowed: no policy applies'
          : `allowed: no DENY policy matches (${applicable.join(', ')}) and no ALLOW policy applies`,
      applicable,
    };
  }
  for (const p of allows) {
    const rule = firstMatch(p, attrs);
    if (rule >= 0) {
      const policy = policyName(p);
      return {
        allowed: true,
        reason: `allowed by ALLOW policy ${policy} (rule ${rule})`,
        matched: { policy, action: 'ALLOW', rule },
        applicable,
      };
    }
  }
  const names = allows.map(policyName);
  const only = allows.length === 1 ? allows[0] : undefined;
  return {
    allowed: false,
    reason:
      only === undefined
        ? `denied: ALLOW policies ${names.join(', ')} apply and none matches`
        : only.rules.length === 0
          ? `denied: ALLOW policy ${names[0]} applies and has no rules, so it allows nothing`
          : `denied: ALLOW policy ${names[0]} applies and none of its rules matches`,
    applicable,
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The mTLS mode for inbound connections to a workload port. The most specific policy decides:
 * workload (same namespace, selector matches) > namespace (same namespace, no selector) > mesh (root
 * namespace, no selector) > PERMISSIVE. A policy whose mode is UNSET passes the decision to the next
 * level; the workload policy's `portLevel` entry for the port overrides its own mode. Istio picks the
 * oldest policy when several sit at one level; Ambit has no creation times in local mode, so it picks
 * the one whose name sorts first, which is stable across restarts.
 * `from` names (`ns/name`) the policy that set the mode, undefined for the default.
 */
export function mtlsMode(
  peerAuths: readonly PeerAuthentication[],
  dst: { namespace: string; labels: Readonly<Record<string, string>> },
  port: number,
  rootNamespace = ROOT_NAMESPACE,
): { mode: MtlsMode; from?: string } {
  const first = (pred: (p: PeerAuthentication) => boolean): PeerAuthentication | undefined =>
    peerAuths.filter(pred).sort((x, y) => cmp(x.name, y.name))[0];
  // A selector policy in the root namespace selects only root-namespace workloads, as in Istio.
  const workload = first((p) => p.namespace === dst.namespace && p.selector !== undefined && selects(p, dst));
  const namespace = first(
    (p) => p.namespace === dst.namespace && p.namespace !== rootNamespace && p.selector === undefined,
  );
  const mesh = first((p) => p.namespace === rootNamespace && p.selector === undefined);
  let out: { mode: MtlsMode; from?: string } = { mode: 'PERMISSIVE' };
  for (const p of [mesh, namespace, workload]) {
    if (p?.mode !== undefined) out = { mode: p.mode, from: policyName(p) };
  }
  const portMode = workload?.portLevel?.[String(port)];
  if (workload !== undefined && portMode !== undefined) out = { mode: portMode, from: policyName(workload) };
  return out;
}
