import type { HeaderRecord } from '../gateway-api/route-filters.js';
import { type JwtRule, policyName, type RequestAuthentication, ROOT_NAMESPACE } from '../policy/types.js';
import type { RequestTarget } from './authz-l7.js';
import { policyTargets } from './authz-l7.js';

/*
 * Istio's RequestAuthentication at a waypoint, the decisions without the I/O: which policies and JWT
 * rules apply to a request, where its tokens are, which rule a token is checked against, what the
 * verification results mean for the request (Envoy jwt_authn's answers), and what the request looks
 * like afterwards (token removed, claims copied to headers). Key fetching and signature checks are in
 * the waypoint (src/l7-waypoint/jwks.ts).
 */

/** A request's destination as RequestAuthentications select it. */
export interface AuthnTarget extends RequestTarget {
  /** The namespace of the Service (or pod) addressed. */
  readonly namespace: string;
  /** The labels of the workloads behind it (a selector must match every one, and there must be one). */
  readonly workloadLabels: readonly Readonly<Record<string, string>>[];
}

/** One JWT rule in force, with the policy it comes from (`ns/name`). */
export interface ApplicableRule {
  readonly policy: string;
  readonly rule: JwtRule;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Whether a RequestAuthentication applies: with targetRefs, when one names the Service or this
 * waypoint's Gateway; otherwise when it is in the destination's namespace (or the root namespace)
 * and its selector, if any, matches every workload behind the destination.
 */
export function authnApplies(p: RequestAuthentication, t: AuthnTarget): boolean {
  if (p.targetRefs !== undefined) return policyTargets(p, t);
  if (p.namespace !== ROOT_NAMESPACE && p.namespace !== t.namespace) return false;
  const sel = p.selector;
  if (sel === undefined) return true;
  return (
    t.workloadLabels.length > 0 &&
    t.workloadLabels.every((l) => Object.entries(sel).every(([k, v]) => l[k] === v))
  );
}

/** The JWT rules in force for a request, from every policy that applies, in `ns/name` order. */
export function jwtRulesFor(
  policies: readonly RequestAuthentication[],
  t: AuthnTarget,
): { readonly policies: readonly string[]; readonly rules: readonly ApplicableRule[] } {
  const selected = policies
    .filter((p) => authnApplies(p, t))
    .sort((a, b) => cmp(policyName(a), policyName(b)));
  return {
    policies: selected.map(policyName),
    rules: selected.flatMap((p) => p.jwtRules.map((rule) => ({ policy: policyName(p), rule }))),
  };
}

export type TokenLocation =
  | { readonly kind: 'header'; readonly name: string; readonly prefix: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string };

/** A token found in a request, and the rules that read from where it was found. */
export interface FoundToken {
  readonly token: string;
  readonly at: TokenLocation;
  readonly rules: readonly ApplicableRule[];
}

/** What the token step reads from a request (header names lowercase). */
export interface AuthnRequest {
  /** Path and query, as sent. */
  readonly path: string;
  readonly headers: HeaderRecord;
}

function headerValues(h: HeaderRecord, name: string): string[] {
  const v = h[name];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function queryOf(path: string): URLSearchParams {
  const q = path.indexOf('?');
  return new URLSearchParams(q === -1 ? '' : path.slice(q + 1));
}

function cookie(h: HeaderRecord, name: string): string | undefined {
  for (const line of headerValues(h, 'cookie'))
    for (const part of line.split(';')) {
      const eq = part.indexOf('=');
      if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
    }
  return undefined;
}

function locationsOf(r: JwtRule): TokenLocation[] {
  return [
    ...r.fromHeaders.map((h) => ({ kind: 'header', name: h.name, prefix: h.prefix }) as const),
    ...r.fromParams.map((name) => ({ kind: 'param', name }) as const),
    ...r.fromCookies.map((name) => ({ kind: 'cookie', name }) as const),
  ];
}

const locKey = (l: TokenLocation): string =>
  l.kind === 'header' ? `header:${l.name}:${l.prefix}` : `${l.kind}:${l.name}`;

/** The token at a location: a header's value after its prefix (case-insensitive, as Envoy), a parameter, a cookie. */
function tokenAt(l: TokenLocation, req: AuthnRequest, query: () => URLSearchParams): string | undefined {
  if (l.kind === 'param') return query().get(l.name) ?? undefined;
  if (l.kind === 'cookie') return cookie(req.headers, l.name);
  for (const v of headerValues(req.headers, l.name)) {
    if (v.length < l.prefix.length || v.slice(0, l.prefix.length).toLowerCase() !== l.prefix.toLowerCase())
      continue;
    const t = v.slice(l.prefix.length).trim();
    if (t !== '') return t;
  }
  return undefined;
}

/**
 * Every token the request carries at a location some rule reads, once per location, in rule order
 * (headers, then parameters, then cookies, as each rule lists them).
 */
export function findTokens(rules: readonly ApplicableRule[], req: AuthnRequest): FoundToken[] {
  let q: URLSearchParams | undefined;
  const query = (): URLSearchParams => {
    q ??= queryOf(req.path);
    return q;
  };
  const byLoc = new Map<string, { at: TokenLocation; token: string; rules: ApplicableRule[] }>();
  for (const r of rules)
    for (const l of locationsOf(r.rule)) {
      const k = locKey(l);
      const seen = byLoc.get(k);
      if (seen !== undefined) {
        if (!seen.rules.includes(r)) seen.rules.push(r);
        continue;
      }
      const token = tokenAt(l, req, query);
      if (token !== undefined) byLoc.set(k, { at: l, token, rules: [r] });
    }
  return [...byLoc.values()];
}

/** The `iss` of a token, read without verifying it (to pick its rule); undefined when it is not a JWT. */
export function unverifiedIssuer(token: string): string | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    const iss = (payload as { iss?: unknown } | null)?.iss;
    return typeof iss === 'string' ? iss : '';
  } catch {
    return undefined;
  }
}

/** Why a token was refused: Envoy jwt_authn's statuses, the ones a waypoint can reach. */
export type JwtFailure =
  | 'malformed'
  | 'issuer-not-configured'
  | 'expired'
  | 'not-yet-valid'
  | 'bad-signature'
  | 'audience-not-allowed'
  | 'unknown-key'
  | 'jwks-fetch-failed';

/**
 * The answer to each failure: Envoy's status code (403 for audiences, 401 for the rest) and its status
 * text, which it sends as the body and in the response details (`jwt_authn_access_denied{...}`).
 */
export const JWT_FAILURES: Readonly<
  Record<JwtFailure, { readonly status: 401 | 403; readonly message: string }>
> = {
  malformed: {
    status: 401,
    message: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  },
  'issuer-not-configured': { status: 401, message: 'Jwt issuer is not configured' },
  expired: { status: 401, message: 'Jwt is expired' },
  'not-yet-valid': { status: 401, message: 'Jwt not yet valid' },
  'bad-signature': { status: 401, message: 'Jwt verification fails' },
  'audience-not-allowed': { status: 403, message: 'Audiences in Jwt are not allowed' },
  'unknown-key': { status: 401, message: "Jwks doesn't have key to match kid or alg from Jwt" },
  'jwks-fetch-failed': { status: 401, message: 'Jwks remote fetch is failed' },
};

/** The rule a found token is checked against, by its unverified issuer; or why there is none. */
export function ruleForToken(
  found: FoundToken,
): { readonly rule: ApplicableRule } | { readonly failure: 'malformed' | 'issuer-not-configured' } {
  const iss = unverifiedIssuer(found.token);
  if (iss === undefined) return { failure: 'malformed' };
  const rule = found.rules.find((r) => r.rule.issuer === iss);
  return rule === undefined ? { failure: 'issuer-not-configured' } : { rule };
}

/** What checking one token gave. */
export type TokenResult =
  | { readonly ok: true; readonly payload: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly failure: JwtFailure; readonly detail?: string };

export interface CheckedToken {
  readonly found: FoundToken;
  /** Undefined when no rule could check it (see `result`). */
  readonly rule?: ApplicableRule;
  readonly result: TokenResult;
}

/** What the authentication step makes of a request. */
export type AuthnOutcome =
  /** No RequestAuthentication applies. */
  | { readonly kind: 'none' }
  /** Policies apply and the request carries no token: on to authorization, unauthenticated. */
  | { readonly kind: 'missing'; readonly policies: readonly string[] }
  | {
      readonly kind: 'authenticated';
      readonly policies: readonly string[];
      /** `<iss>/<sub>`, of the first token. */
      readonly principal: string;
      readonly claims: Readonly<Record<string, unknown>>;
    }
  | {
      readonly kind: 'denied';
      readonly policies: readonly string[];
      readonly failure: JwtFailure;
      readonly status: 401 | 403;
      /** Envoy's status text: the body of the answer. */
      readonly message: string;
      /** The access log's reason: the policy, where the token was, and what was wrong. */
      readonly reason: string;
    };

const where = (l: TokenLocation): string =>
  l.kind === 'header'
    ? `header ${l.name}`
    : l.kind === 'param'
      ? `query parameter ${l.name}`
      : `cookie ${l.name}`;

/**
 * Envoy's rule for a request under `allow_missing` (what Istio generates): no token is fine, every
 * token present must verify, and the first verified one is the request's principal.
 */
export function authnOutcome(policies: readonly string[], checked: readonly CheckedToken[]): AuthnOutcome {
  if (policies.length === 0) return { kind: 'none' };
  if (checked.length === 0) return { kind: 'missing', policies };
  for (const c of checked) {
    if (c.result.ok) continue;
    const f = JWT_FAILURES[c.result.failure];
    const by = c.rule === undefined ? policies.join(', ') : `${c.rule.policy} (issuer ${c.rule.rule.issuer})`;
    return {
      kind: 'denied',
      policies,
      failure: c.result.failure,
      status: f.status,
      message: f.message,
      reason: `JWT in ${where(c.found.at)} refused by RequestAuthentication ${by}: ${f.message}${c.result.detail === undefined ? '' : ` (${c.result.detail})`}`,
    };
  }
  const first = checked[0]!.result as Extract<TokenResult, { ok: true }>;
  const iss = typeof first.payload.iss === 'string' ? first.payload.iss : '';
  const sub = typeof first.payload.sub === 'string' ? first.payload.sub : '';
  return { kind: 'authenticated', policies, principal: `${iss}/${sub}`, claims: first.payload };
}

/** A claim for a header: a string as it is, anything else as JSON; a dotted name reaches into objects. */
function claimText(claims: Readonly<Record<string, unknown>>, name: string): string | undefined {
  let v: unknown = name in claims ? claims[name] : undefined;
  if (v === undefined && name.includes('.')) {
    v = claims;
    for (const k of name.split('.'))
      v =
        v !== null && typeof v === 'object' && !Array.isArray(v)
          ? (v as Record<string, unknown>)[k]
          : undefined;
  }
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * The request as it goes on after a successful (or absent) authentication: each verified token is
 * removed from where it was found unless its rule forwards it (a parameter is cut from the query);
 * the rules' output headers are set from the verified claims. The output headers of every rule in
 * force are first removed, so that a client cannot send a claim header no token backs.
 */
export function authnRewrite(
  req: AuthnRequest,
  rules: readonly ApplicableRule[],
  checked: readonly CheckedToken[],
): { readonly path: string; readonly headers: HeaderRecord } {
  const headers: HeaderRecord = { ...req.headers };
  for (const { rule } of rules) {
    if (rule.outputPayloadToHeader !== undefined) delete headers[rule.outputPayloadToHeader];
    for (const c of rule.outputClaimToHeaders) delete headers[c.header];
  }
  const cut: string[] = [];
  for (const c of checked) {
    if (!c.result.ok || c.rule === undefined) continue;
    const rule = c.rule.rule;
    if (!rule.forwardOriginalToken) {
      if (c.found.at.kind === 'header') delete headers[c.found.at.name];
      else if (c.found.at.kind === 'param') cut.push(c.found.at.name);
    }
    if (rule.outputPayloadToHeader !== undefined)
      headers[rule.outputPayloadToHeader] = c.found.token.split('.')[1] ?? '';
    for (const o of rule.outputClaimToHeaders) {
      const v = claimText(c.result.payload, o.claim);
      if (v !== undefined) headers[o.header] = v;
    }
  }
  let path = req.path;
  if (cut.length > 0) {
    const q = path.indexOf('?');
    const params = queryOf(path);
    for (const n of cut) params.delete(n);
    const rest = params.toString();
    path = path.slice(0, q) + (rest === '' ? '' : `?${rest}`);
  }
  return { path, headers };
}

/** The unverified claims of a token (for `explain`, which holds no keys); undefined when it is not a JWT. */
function unverifiedClaims(token: string): Record<string, unknown> | undefined {
  try {
    const p = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as unknown;
    return p !== null && typeof p === 'object' && !Array.isArray(p)
      ? (p as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What `explain` can say of a request's authentication without the keys: which RequestAuthentications
 * apply, where the token is, and whether its issuer is configured. A token whose rule is found is taken
 * as valid (its signature and times are checked only by the waypoint), so that authorization can be
 * explained with its claims.
 */
export function explainAuthn(
  policies: readonly RequestAuthentication[],
  t: AuthnTarget,
  req: AuthnRequest,
):
  | {
      readonly text: string;
      readonly refused?: { readonly status: number; readonly message: string };
      readonly auth?: { readonly principal: string; readonly claims: Readonly<Record<string, unknown>> };
    }
  | undefined {
  const { policies: names, rules } = jwtRulesFor(policies, t);
  if (names.length === 0) return undefined;
  const by = `RequestAuthentication ${names.join(', ')}`;
  const [found] = findTokens(rules, req);
  if (found === undefined) return { text: `${by} applies; no token: the request goes on unauthenticated` };
  const pick = ruleForToken(found);
  if ('failure' in pick) {
    const f = JWT_FAILURES[pick.failure];
    return { text: `${by}: the token in ${where(found.at)} is refused: ${f.message}`, refused: f };
  }
  const claims = unverifiedClaims(found.token) ?? {};
  const principal = `${pick.rule.rule.issuer}/${typeof claims.sub === 'string' ? claims.sub : ''}`;
  return {
    text: `${by}: the token in ${where(found.at)} is checked against issuer ${pick.rule.rule.issuer} (${pick.rule.policy}); if its signature, exp, nbf and aud hold, the request carries principal ${principal} (a bad one is refused 401)`,
    auth: { principal, claims },
  };
}
