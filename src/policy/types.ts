/**
 * L4 security policy as node proxies enforce it: Istio's AuthorizationPolicy and PeerAuthentication
 * (`security.ambit.dev/v1alpha1`, same field shapes), reduced to what can be decided from a connection.
 * Plain readonly data: the control plane sends it to proxies as typed protobuf (src/api/config-codec*.ts).
 */

/** Policies in this namespace without a selector apply to the whole mesh (Istio's root namespace). */
export const ROOT_NAMESPACE = 'ambit-system';

/**
 * Who opened the connection. Every present field must match; `not*` fields must not. Principals and
 * namespaces use Istio's string matching: exact, `prefix*`, `*suffix`, or `*` (any, but present).
 */
export interface AuthzSource {
  /** Peer identities, `cluster.local/ns/<ns>/sa/<sa>` (the SPIFFE id without `spiffe://`). */
  readonly principals?: readonly string[];
  readonly notPrincipals?: readonly string[];
  /** Namespaces, read from the peer identity. */
  readonly namespaces?: readonly string[];
  readonly notNamespaces?: readonly string[];
  /** Source addresses: IPs or CIDRs. */
  readonly ipBlocks?: readonly string[];
  readonly notIpBlocks?: readonly string[];
  /** Waypoint only: the request's JWT principal, `<iss>/<sub>` (request.auth.principal). */
  readonly requestPrincipals?: readonly string[];
  readonly notRequestPrincipals?: readonly string[];
}

/** What the connection is to. An operation without fields matches any port. */
export interface AuthzOperation {
  readonly ports?: readonly number[];
  readonly notPorts?: readonly number[];
  /** Waypoint only (HTTP): the Host header, case-insensitive, with or without its port. */
  readonly hosts?: readonly string[];
  readonly notHosts?: readonly string[];
  /** Waypoint only (HTTP): the method, exactly. */
  readonly methods?: readonly string[];
  readonly notMethods?: readonly string[];
  /** Waypoint only (HTTP): the path without its query, in Istio's string matching. */
  readonly paths?: readonly string[];
  readonly notPaths?: readonly string[];
}

/** The `when` keys that can be decided at L4. */
export type L4ConditionKey =
  | 'source.ip'
  | 'source.namespace'
  | 'source.principal'
  | 'destination.ip'
  | 'destination.port';

export const L4_CONDITION_KEYS: readonly L4ConditionKey[] = [
  'source.ip',
  'source.namespace',
  'source.principal',
  'destination.ip',
  'destination.port',
];

/**
 * The `when` keys only a waypoint can decide: `request.headers[<name>]`, `request.auth.claims[<claim>]`
 * (nested: `request.auth.claims[a][b]`) and `request.auth.principal`.
 */
export type L7ConditionKey =
  | `request.headers[${string}]`
  | `request.auth.claims[${string}]`
  | 'request.auth.principal';

/** Matches when the attribute is one of `values` (if given) and none of `notValues` (if given). */
export interface AuthzCondition {
  readonly key: L4ConditionKey | L7ConditionKey;
  readonly values?: readonly string[];
  readonly notValues?: readonly string[];
}

/**
 * Matches when every present part matches: any `from` entry, any `to` entry, and all `when` conditions.
 * A rule with no parts matches every connection; a rule with an empty `from` list matches none (see
 * NEVER_MATCHING_RULE).
 */
export interface AuthzRule {
  readonly from?: readonly AuthzSource[];
  readonly to?: readonly AuthzOperation[];
  readonly when?: readonly AuthzCondition[];
}

/**
 * Stands in for an ALLOW rule that node proxies cannot enforce (it uses HTTP attributes), so that the
 * remaining rules keep the numbers they have in the manifest and a decision's "rule 2" is rule 2 there.
 * Any of zero sources matches nothing, so the rule never allows anything, as ztunnel does.
 */
export const NEVER_MATCHING_RULE: AuthzRule = { from: [] };

/** What a waypoint policy attaches to: a Service, or the waypoint's Gateway, in the policy's namespace. */
export interface PolicyTargetRef {
  readonly kind: 'Service' | 'Gateway';
  readonly name: string;
}

export interface AuthorizationPolicy {
  readonly kind: 'AuthorizationPolicy';
  readonly namespace: string;
  readonly name: string;
  /** Workloads whose labels include all of these; undefined selects every workload in scope. */
  readonly selector?: Readonly<Record<string, string>>;
  /**
   * Set: the policy is enforced by waypoints, per request, for these targets (and never by node
   * proxies); its rules may use HTTP fields. Unset: node proxies enforce it at L4.
   */
  readonly targetRefs?: readonly PolicyTargetRef[];
  /** AUDIT only with targetRefs: a matching request is logged as audited and decides nothing. */
  readonly action: 'ALLOW' | 'DENY' | 'AUDIT';
  /** An ALLOW policy without rules matches nothing: Istio's deny-all idiom (`spec: {}`). */
  readonly rules: readonly AuthzRule[];
  /**
   * Set on the stand-in for a policy that failed validation and is (or may be) a DENY: why it was
   * rejected. The stand-in denies every connection to what it selects until the policy is fixed
   * (src/policy/fail-closed.ts).
   */
  readonly failClosed?: string;
}

/** DISABLE behaves like PERMISSIVE for node proxies: they accept plaintext and mTLS alike. */
export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface PeerAuthentication {
  readonly kind: 'PeerAuthentication';
  readonly namespace: string;
  readonly name: string;
  readonly selector?: Readonly<Record<string, string>>;
  /** Undefined is Istio's UNSET: inherit from the namespace, then the mesh. */
  readonly mode?: MtlsMode;
  /** Port number as decimal text -> mode for that port (only with a selector). */
  readonly portLevel?: Readonly<Record<string, MtlsMode>>;
}

/** Where a JWT is read from: a header, with the prefix before the token (`Bearer `), the value as sent. */
export interface JwtHeaderLocation {
  /** Lowercase. */
  readonly name: string;
  /** Stripped from the value; '' when the header holds the token alone. */
  readonly prefix: string;
}

/** Where a JWT rule's keys come from: inline JWKS JSON, or a URI the waypoint fetches and refreshes. */
export type JwksSource =
  | { readonly kind: 'inline'; readonly json: string }
  | { readonly kind: 'uri'; readonly uri: string };

/** The default token locations (Istio): `Authorization: Bearer <token>`, then the `access_token` query parameter. */
export const DEFAULT_JWT_HEADERS: readonly JwtHeaderLocation[] = [
  { name: 'authorization', prefix: 'Bearer ' },
];
export const DEFAULT_JWT_PARAMS: readonly string[] = ['access_token'];

/** One issuer a RequestAuthentication accepts tokens from (Istio's JWTRule), every default applied. */
export interface JwtRule {
  /** The `iss` a token must carry. */
  readonly issuer: string;
  /** Unset: any audience (or none). Set: the token's `aud` must include one of these. */
  readonly audiences?: readonly string[];
  readonly jwks: JwksSource;
  /** How long a JWKS fetch may take, in ms (Istio's `timeout`, default 5 s). */
  readonly timeoutMs: number;
  readonly fromHeaders: readonly JwtHeaderLocation[];
  readonly fromParams: readonly string[];
  readonly fromCookies: readonly string[];
  /** The header that gets the verified payload, base64url-encoded JSON. */
  readonly outputPayloadToHeader?: string;
  /** Headers (lowercase) set from claims of the verified token. */
  readonly outputClaimToHeaders: readonly { readonly header: string; readonly claim: string }[];
  /** false (Istio's default): the header or parameter carrying the token is removed before forwarding. */
  readonly forwardOriginalToken: boolean;
}

/**
 * Istio's RequestAuthentication, enforced by waypoints: which JWTs a request may carry. A request with
 * an invalid token is refused (401); one with no token goes on unauthenticated; a valid one carries
 * its principal `<iss>/<sub>` and claims into authorization.
 */
export interface RequestAuthentication {
  readonly kind: 'RequestAuthentication';
  readonly namespace: string;
  readonly name: string;
  /** Workloads whose labels include all of these (undefined: every workload in scope). */
  readonly selector?: Readonly<Record<string, string>>;
  /** Set: the Services or waypoint Gateway it targets. */
  readonly targetRefs?: readonly PolicyTargetRef[];
  readonly jwtRules: readonly JwtRule[];
}

export type MeshPolicy = AuthorizationPolicy | PeerAuthentication | RequestAuthentication;

/** `AuthorizationPolicy/shop/allow-web`. */
export function policyKey(p: MeshPolicy): string {
  return `${p.kind}/${p.namespace}/${p.name}`;
}

/** `shop/allow-web`, the short form decisions and logs use. */
export function policyName(p: { readonly namespace: string; readonly name: string }): string {
  return `${p.namespace}/${p.name}`;
}
