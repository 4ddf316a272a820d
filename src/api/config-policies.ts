import { cidr } from '../config/validators.js';
import { jwksProblem } from '../policy/parse-request-authentication.js';
import {
  type AuthorizationPolicy,
  type AuthzCondition,
  type AuthzOperation,
  type AuthzRule,
  type AuthzSource,
  type JwtRule,
  L4_CONDITION_KEYS,
  type L4ConditionKey,
  type MeshPolicy,
  type MtlsMode,
  type PeerAuthentication,
  type PolicyTargetRef,
  type RequestAuthentication,
} from '../policy/types.js';

/*
 * Security policies on the config stream: typed protobuf messages (ambit.proto), encoded from the
 * domain types and decoded back with every field checked, so that a proxy never holds a policy it
 * did not validate. Repeated matcher fields are empty when unset (the parser never makes empty ones);
 * rule parts travel in wrappers because an absent part matches everything and an empty one nothing.
 */

type WireSelector = { match_labels: Record<string, string> } | null;

interface WireSource {
  principals: string[];
  not_principals: string[];
  namespaces: string[];
  not_namespaces: string[];
  ip_blocks: string[];
  not_ip_blocks: string[];
  request_principals: string[];
  not_request_principals: string[];
}

interface WireOperation {
  ports: number[];
  not_ports: number[];
  hosts: string[];
  not_hosts: string[];
  methods: string[];
  not_methods: string[];
  paths: string[];
  not_paths: string[];
}

interface WireRule {
  from: { items: WireSource[] } | null;
  to: { items: WireOperation[] } | null;
  when: { items: { key: string; values: string[]; not_values: string[] }[] } | null;
}

export interface WirePolicy {
  key: string;
  authorization: {
    namespace: string;
    name: string;
    selector: WireSelector;
    action: string;
    rules: WireRule[];
    fail_closed: string;
    target_refs: { kind: string; name: string }[];
  } | null;
  peer_authentication: {
    namespace: string;
    name: string;
    selector: WireSelector;
    mode: string;
    port_level: Record<string, string>;
  } | null;
  request_authentication: WireRequestAuthentication | null;
}

interface WireJwtRule {
  issuer: string;
  audiences: string[];
  jwks_uri: string;
  jwks: string;
  timeout_ms: number;
  from_headers: { name: string; prefix: string }[];
  from_params: string[];
  from_cookies: string[];
  output_payload_to_header: string;
  output_claim_to_headers: { header: string; claim: string }[];
  forward_original_token: boolean;
}

interface WireRequestAuthentication {
  namespace: string;
  name: string;
  selector: WireSelector;
  target_refs: { kind: string; name: string }[];
  jwt_rules: WireJwtRule[];
}

const list = <T>(v: readonly T[] | undefined): T[] => [...(v ?? [])];
const selector = (s: Readonly<Record<string, string>> | undefined): WireSelector =>
  s === undefined ? null : { match_labels: { ...s } };

function encodeRule(r: AuthzRule): WireRule {
  return {
    from:
      r.from === undefined
        ? null
        : {
            items: r.from.map((s) => ({
              principals: list(s.principals),
              not_principals: list(s.notPrincipals),
              namespaces: list(s.namespaces),
              not_namespaces: list(s.notNamespaces),
              ip_blocks: list(s.ipBlocks),
              not_ip_blocks: list(s.notIpBlocks),
              request_principals: list(s.requestPrincipals),
              not_request_principals: list(s.notRequestPrincipals),
            })),
          },
    to:
      r.to === undefined
        ? null
        : {
            items: r.to.map((o) => ({
              ports: list(o.ports),
              not_ports: list(o.notPorts),
              hosts: list(o.hosts),
              not_hosts: list(o.notHosts),
              methods: list(o.methods),
              not_methods: list(o.notMethods),
              paths: list(o.paths),
              not_paths: list(o.notPaths),
            })),
          },
    when:
      r.when === undefined
        ? null
        : {
            items: r.when.map((c) => ({ key: c.key, values: list(c.values), not_values: list(c.notValues) })),
          },
  };
}

function encodeJwtRule(r: JwtRule): WireJwtRule {
  return {
    issuer: r.issuer,
    audiences: list(r.audiences),
    jwks_uri: r.jwks.kind === 'uri' ? r.jwks.uri : '',
    jwks: r.jwks.kind === 'inline' ? r.jwks.json : '',
    timeout_ms: r.timeoutMs,
    from_headers: r.fromHeaders.map((h) => ({ name: h.name, prefix: h.prefix })),
    from_params: list(r.fromParams),
    from_cookies: list(r.fromCookies),
    output_payload_to_header: r.outputPayloadToHeader ?? '',
    output_claim_to_headers: r.outputClaimToHeaders.map((c) => ({ header: c.header, claim: c.claim })),
    forward_original_token: r.forwardOriginalToken,
  };
}

export function encodePolicy(key: string, p: MeshPolicy): WirePolicy {
  if (p.kind === 'RequestAuthentication') {
    return {
      key,
      authorization: null,
      peer_authentication: null,
      request_authentication: {
        namespace: p.namespace,
        name: p.name,
        selector: selector(p.selector),
        target_refs: (p.targetRefs ?? []).map((t) => ({ kind: t.kind, name: t.name })),
        jwt_rules: p.jwtRules.map(encodeJwtRule),
      },
    };
  }
  if (p.kind === 'AuthorizationPolicy') {
    return {
      key,
      authorization: {
        namespace: p.namespace,
        name: p.name,
        selector: selector(p.selector),
        action: p.action,
        rules: p.rules.map(encodeRule),
        fail_closed: p.failClosed ?? '',
        target_refs: (p.targetRefs ?? []).map((t) => ({ kind: t.kind, name: t.name })),
      },
      peer_authentication: null,
      request_authentication: null,
    };
  }
  return {
    key,
    authorization: null,
    peer_authentication: {
      namespace: p.namespace,
      name: p.name,
      selector: selector(p.selector),
      mode: p.mode ?? 'UNSET',
      port_level: { ...(p.portLevel ?? {}) },
    },
    request_authentication: null,
  };
}

/** A decoding failure: what is wrong with which field. */
class Bad extends Error {}

function strings(v: unknown, field: string, check?: (s: string) => string | undefined): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === ''))
    throw new Bad(`${field} is not a list of strings`);
  for (const x of v as string[]) {
    const why = check?.(x);
    if (why !== undefined) throw new Bad(`${field}: ${JSON.stringify(x)} ${why}`);
  }
  return v.length === 0 ? undefined : (v as string[]);
}

function ports(v: unknown, field: string): number[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => !Number.isInteger(x) || x < 1 || x > 65535))
    throw new Bad(`${field} is not a list of ports`);
  return v.length === 0 ? undefined : (v as number[]);
}

function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function wrapped<T>(
  v: { items?: unknown } | null | undefined,
  field: string,
  item: (x: never) => T,
): T[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v.items)) throw new Bad(`${field} has no item list`);
  return (v.items as never[]).map(item);
}

function decodeRule(r: WireRule, i: number, l7: boolean): AuthzRule {
  const at = `rules[${i}]`;
  const from = wrapped(
    r.from,
    `${at}.from`,
    (s: WireSource): AuthzSource =>
      defined({
        principals: strings(s.principals, `${at}.from.principals`),
        notPrincipals: strings(s.not_principals, `${at}.from.notPrincipals`),
        namespaces: strings(s.namespaces, `${at}.from.namespaces`),
        notNamespaces: strings(s.not_namespaces, `${at}.from.notNamespaces`),
        ipBlocks: strings(s.ip_blocks, `${at}.from.ipBlocks`, cidr),
        notIpBlocks: strings(s.not_ip_blocks, `${at}.from.notIpBlocks`, cidr),
        requestPrincipals: strings(s.request_principals, `${at}.from.requestPrincipals`),
        notRequestPrincipals: strings(s.not_request_principals, `${at}.from.notRequestPrincipals`),
      }),
  );
  const to = wrapped(
    r.to,
    `${at}.to`,
    (o: WireOperation): AuthzOperation =>
      defined({
        ports: ports(o.ports, `${at}.to.ports`),
        notPorts: ports(o.not_ports, `${at}.to.notPorts`),
        hosts: strings(o.hosts, `${at}.to.hosts`),
        notHosts: strings(o.not_hosts, `${at}.to.notHosts`),
        methods: strings(o.methods, `${at}.to.methods`),
        notMethods: strings(o.not_methods, `${at}.to.notMethods`),
        paths: strings(o.paths, `${at}.to.paths`),
        notPaths: strings(o.not_paths, `${at}.to.notPaths`),
      }),
  );
  const when = wrapped(
    r.when,
    `${at}.when`,
    (c: { key: unknown; values: unknown; not_values: unknown }): AuthzCondition => {
      const l7Key =
        l7 &&
        typeof c.key === 'string' &&
        (c.key === 'request.auth.principal' ||
          c.key.startsWith('request.headers[') ||
          c.key.startsWith('request.auth.claims['));
      if (!l7Key && !L4_CONDITION_KEYS.includes(c.key as L4ConditionKey))
        throw new Bad(`${at}.when.key ${JSON.stringify(c.key)} is not an L4 key`);
      return defined({
        key: c.key as AuthzCondition['key'],
        values: strings(c.values, `${at}.when.values`),
        notValues: strings(c.not_values, `${at}.when.notValues`),
      });
    },
  );
  return defined({ from, to, when });
}

function decodeSelector(s: WireSelector | undefined): Readonly<Record<string, string>> | undefined {
  if (s === undefined || s === null) return undefined;
  const labels = s.match_labels ?? {};
  if (Object.values(labels).some((v) => typeof v !== 'string'))
    throw new Bad('selector labels are not strings');
  return Object.keys(labels).length === 0 ? undefined : labels;
}

const MODES: readonly string[] = ['STRICT', 'PERMISSIVE', 'DISABLE'];

/** Policy targets; the any-target name `*` only in a fail-closed stand-in (`closed`). */
function decodeRefs(refs: { kind: string; name: string }[] | undefined, closed = false): PolicyTargetRef[] {
  return (refs ?? []).map((t) => {
    if ((t.kind !== 'Service' && t.kind !== 'Gateway') || typeof t.name !== 'string' || t.name === '')
      throw new Bad(`targetRefs: ${JSON.stringify(t)} is not a Service or Gateway reference`);
    if (t.name === '*' && !closed)
      throw new Bad('targetRefs: "*" (any target) is only for a fail-closed stand-in');
    return { kind: t.kind, name: t.name } as const;
  });
}

const HEADER = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

function decodeJwtRule(r: WireJwtRule, i: number): JwtRule {
  const at = `jwtRules[${i}]`;
  if (typeof r.issuer !== 'string' || r.issuer === '') throw new Bad(`${at}.issuer is required`);
  const uri = r.jwks_uri ?? '';
  const json = r.jwks ?? '';
  if ((uri === '') === (json === '')) throw new Bad(`${at}: exactly one of jwksUri and jwks is required`);
  if (uri !== '' && !/^https?:\/\/[^/]/.test(uri))
    throw new Bad(`${at}.jwksUri ${JSON.stringify(uri)} is not http(s)`);
  if (json !== '') {
    const why = jwksProblem(json);
    if (why !== undefined) throw new Bad(`${at}.jwks ${why}`);
  }
  if (!Number.isInteger(r.timeout_ms) || r.timeout_ms <= 0) throw new Bad(`${at}.timeout is not positive`);
  const header = (v: string, field: string): string => {
    if (typeof v !== 'string' || !HEADER.test(v))
      throw new Bad(`${at}.${field} ${JSON.stringify(v)} is not a header name`);
    return v;
  };
  const audiences = strings(r.audiences, `${at}.audiences`);
  const out = r.output_payload_to_header ?? '';
  return {
    issuer: r.issuer,
    ...(audiences === undefined ? {} : { audiences }),
    jwks: uri !== '' ? { kind: 'uri', uri } : { kind: 'inline', json },
    timeoutMs: r.timeout_ms,
    fromHeaders: (r.from_headers ?? []).map((h) => ({
      name: header(h.name, 'fromHeaders.name'),
      prefix: typeof h.prefix === 'string' ? h.prefix : '',
    })),
    fromParams: strings(r.from_params, `${at}.fromParams`) ?? [],
    fromCookies: strings(r.from_cookies, `${at}.fromCookies`) ?? [],
    ...(out === '' ? {} : { outputPayloadToHeader: header(out, 'outputPayloadToHeader') }),
    outputClaimToHeaders: (r.output_claim_to_headers ?? []).map((c) => {
      if (typeof c.claim !== 'string' || c.claim === '')
        throw new Bad(`${at}.outputClaimToHeaders.claim is empty`);
      return { header: header(c.header, 'outputClaimToHeaders.header'), claim: c.claim };
    }),
    forwardOriginalToken: r.forward_original_token === true,
  };
}

function decodeRequestAuthentication(ra: WireRequestAuthentication): RequestAuthentication {
  if (ra.namespace === '' || ra.name === '') throw new Bad('namespace and name are required');
  const refs = decodeRefs(ra.target_refs);
  const sel = decodeSelector(ra.selector);
  if (refs.length > 0 && sel !== undefined) throw new Bad('selector and targetRefs are both set');
  return {
    kind: 'RequestAuthentication',
    namespace: ra.namespace,
    name: ra.name,
    ...(sel === undefined ? {} : { selector: sel }),
    ...(refs.length > 0 ? { targetRefs: refs } : {}),
    jwtRules: (ra.jwt_rules ?? []).map(decodeJwtRule),
  };
}

const present = <T>(v: T | null | undefined): v is T => v !== null && v !== undefined;

/** Decodes one policy; throws a message naming the field when it does not check out. */
function decode(w: WirePolicy): MeshPolicy {
  const a = w.authorization;
  const p = w.peer_authentication;
  const ra = w.request_authentication;
  if ([a, p, ra].filter(present).length !== 1)
    throw new Bad(
      'must be exactly one of an AuthorizationPolicy, a PeerAuthentication and a RequestAuthentication',
    );
  if (present(ra)) return decodeRequestAuthentication(ra);
  if (a !== null && a !== undefined) {
    if (a.namespace === '' || a.name === '') throw new Bad('namespace and name are required');
    const closed = typeof a.fail_closed === 'string' && a.fail_closed !== '';
    const refs = decodeRefs(a.target_refs, closed);
    const l7 = refs.length > 0;
    if (a.action !== 'ALLOW' && a.action !== 'DENY' && !(l7 && a.action === 'AUDIT'))
      throw new Bad(`action ${JSON.stringify(a.action)} is not ALLOW or DENY${l7 ? ' or AUDIT' : ''}`);
    const sel = decodeSelector(a.selector);
    const policy: AuthorizationPolicy = {
      kind: 'AuthorizationPolicy',
      namespace: a.namespace,
      name: a.name,
      ...(sel === undefined ? {} : { selector: sel }),
      ...(l7 ? { targetRefs: refs } : {}),
      action: a.action as AuthorizationPolicy['action'],
      rules: (a.rules ?? []).map((r, i) => decodeRule(r, i, l7)),
      ...(closed ? { failClosed: a.fail_closed } : {}),
    };
    if (policy.failClosed !== undefined && policy.action !== 'DENY')
      throw new Bad('a fail-closed stand-in must be a DENY');
    return policy;
  }
  const pa = p!;
  if (pa.namespace === '' || pa.name === '') throw new Bad('namespace and name are required');
  if (pa.mode !== 'UNSET' && !MODES.includes(pa.mode))
    throw new Bad(`mode ${JSON.stringify(pa.mode)} is not an mTLS mode`);
  const portLevel: Record<string, MtlsMode> = {};
  for (const [port, mode] of Object.entries(pa.port_level ?? {})) {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Bad(`portLevel key ${port} is not a port`);
    if (!MODES.includes(mode))
      throw new Bad(`portLevel[${port}] ${JSON.stringify(mode)} is not an mTLS mode`);
    portLevel[String(n)] = mode as MtlsMode;
  }
  const sel = decodeSelector(pa.selector);
  const policy: PeerAuthentication = {
    kind: 'PeerAuthentication',
    namespace: pa.namespace,
    name: pa.name,
    ...(sel === undefined ? {} : { selector: sel }),
    ...(pa.mode === 'UNSET' ? {} : { mode: pa.mode as MtlsMode }),
    ...(Object.keys(portLevel).length === 0 ? {} : { portLevel }),
  };
  return policy;
}

/** Decodes a policy from the stream, or says why it cannot be used. */
export function decodePolicy(w: WirePolicy): { policy: MeshPolicy } | { problem: string } {
  try {
    return { policy: decode(w) };
  } catch (err) {
    if (err instanceof Bad) return { problem: `policy ${w.key}: ${err.message}; ignored` };
    throw err;
  }
}
