import type { Fields, IssueSink, StringCheck } from '../config/field-reader.js';
import { type FieldPath, show } from '../config/issue.js';
import { cidr, dns1123Label, dns1123Subdomain, labelValue, qualifiedName } from '../config/validators.js';
import {
  type AuthorizationPolicy,
  type AuthzCondition,
  type AuthzOperation,
  type AuthzRule,
  type AuthzSource,
  L4_CONDITION_KEYS,
  type L4ConditionKey,
  type L7ConditionKey,
  NEVER_MATCHING_RULE,
  type PolicyTargetRef,
} from './types.js';

/**
 * Parsers from Istio's AuthorizationPolicy and PeerAuthentication specs (under
 * `security.ambit.dev/v1alpha1`). A policy with a `selector` (or neither) is the L4 policy node proxies
 * enforce; HTTP attributes in it are handled as istiod handles them for ztunnel: an ALLOW rule that uses
 * one is dropped (it can never be proven to match), and a DENY rule loses them and keeps the rest (it
 * denies more, never less). A policy with `targetRefs` (a Service or the waypoint Gateway) is enforced
 * by the waypoint, per request, with its HTTP fields; ACTION AUDIT is accepted there only.
 */

export const SECURITY_API_VERSION = 'security.ambit.dev/v1alpha1';

export interface PolicyMeta {
  readonly namespace: string;
  readonly name: string;
}

const SOURCE_FIELDS = [
  'principals',
  'notPrincipals',
  'namespaces',
  'notNamespaces',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
  'serviceAccounts',
  'notServiceAccounts',
] as const;
const SOURCE_HTTP_FIELDS = ['requestPrincipals', 'notRequestPrincipals'] as const;
const OPERATION_FIELDS = ['ports', 'notPorts'] as const;
const OPERATION_HTTP_FIELDS = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;

/** Something in a rule that node proxies cannot see, with what to say about it. */
interface L7Finding {
  readonly path: FieldPath;
  /** The start of the warning: `is HTTP-only`. */
  readonly what: string;
}

/**
 * Unknown fields are errors here, not the warnings other kinds get: a mistyped matcher (`principal:`)
 * that was ignored would turn a narrow rule into one that matches every source. A rejected policy keeps
 * its last good version on reload, and `ambit local up` creates nothing.
 */
const UNKNOWN_POLICY_FIELD = 'a security policy with a field Ambit does not read is rejected';

export function onlyKeys(f: Fields, known: readonly string[]): void {
  f.rejectUnknown(known, UNKNOWN_POLICY_FIELD);
}

/** Set and not an empty list: Istio reads `principals: []` as unset. */
function isSet(f: Fields, key: string): boolean {
  const v = f.raw(key);
  return v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);
}

type Item<T> = (value: unknown, path: FieldPath) => T | undefined;

/** A list field; an empty list is the same as no field. */
function listOf<T>(f: Fields, key: string, item: Item<T>): T[] | undefined {
  const out = f.list(key, item);
  return out === undefined || out.length === 0 ? undefined : out;
}

function merge<T>(a: T[] | undefined, b: T[] | undefined): T[] | undefined {
  return a === undefined ? b : b === undefined ? a : [...a, ...b];
}

function text(sink: IssueSink, check?: StringCheck): Item<string> {
  return (value, path) => {
    if (typeof value !== 'string') {
      sink.error(
        path,
        `${show(value)} is not a string${typeof value === 'number' || typeof value === 'boolean' ? ' (quote it)' : ''}`,
      );
      return undefined;
    }
    const reason = value === '' ? 'is empty' : check?.(value);
    if (reason !== undefined) {
      sink.error(path, `${show(value)} ${reason}`);
      return undefined;
    }
    return value;
  };
}

/** Istio's match forms: exact, `prefix*`, `*suffix` and `*`. */
const matchPattern: StringCheck = (v) => {
  const inner = v.startsWith('*') ? v.slice(1) : v.endsWith('*') ? v.slice(0, -1) : v;
  return inner.includes('*')
    ? 'has "*" inside it; Istio matching allows only exact values, "prefix*", "*suffix" and "*"'
    : undefined;
};

const ipOrCidr: StringCheck = (v) =>
  cidr(v) === undefined ? undefined : 'is not an IP address or CIDR (203.0.113.4, 10.0.0.0/8, fd00::/64)';

const IDENTITY = /^[^/]+\/ns\/[^/]+\/sa\/[^/]+$/;

/** A peer identity pattern; `spiffe://` is accepted once and dropped, since Istio writes it without. */
function principal(sink: IssueSink): Item<string> {
  const read = text(sink, matchPattern);
  return (value, path) => {
    const v = read(value, path);
    if (v === undefined) return undefined;
    let p = v;
    if (p.startsWith('spiffe://')) {
      p = p.slice('spiffe://'.length);
      sink.warn(path, `${show(v)} is read as ${show(p)}; principals are written without "spiffe://"`);
    }
    if (!p.includes('*') && !IDENTITY.test(p))
      sink.warn(
        path,
        `${show(p)} is not a workload identity (<trust-domain>/ns/<namespace>/sa/<service-account>), so it matches no peer`,
      );
    return p;
  };
}

function namespace(sink: IssueSink): Item<string> {
  const read = text(sink, matchPattern);
  return (value, path) => {
    const v = read(value, path);
    if (v !== undefined && !v.includes('*') && dns1123Label(v) !== undefined)
      sink.warn(path, `${show(v)} is not a namespace name, so it matches no peer`);
    return v;
  };
}

/**
 * Istio 1.24's `serviceAccounts: [ns/sa]`, as the identity pattern `*` + `/ns/<ns>/sa/<sa>`, which is
 * exactly what it matches (any trust domain).
 */
function serviceAccount(sink: IssueSink): Item<string> {
  const read = text(sink, (v) => {
    const [ns, sa, extra] = v.split('/');
    return extra === undefined &&
      ns !== undefined &&
      sa !== undefined &&
      dns1123Label(ns) === undefined &&
      dns1123Subdomain(sa) === undefined
      ? undefined
      : 'is not <namespace>/<service-account>';
  });
  return (value, path) => {
    const v = read(value, path);
    if (v === undefined) return undefined;
    const [ns, sa] = v.split('/');
    return `*/ns/${ns}/sa/${sa}`;
  };
}

/** Istio writes ports as strings; YAML authors often write numbers. Both are accepted. */
function port(sink: IssueSink): Item<number> {
  return (value, path) => {
    const n =
      typeof value === 'number'
        ? value
        : typeof value === 'string' && /^[0-9]+$/.test(value)
          ? Number(value)
          : NaN;
    if (!Number.isInteger(n) || n < 1 || n > 65535) {
      sink.error(path, `${show(value)} is not a port number (1 to 65535)`);
      return undefined;
    }
    return n;
  };
}

/** HTTP-only list fields: checked for shape, then reported, never enforced. */
function httpOnly(f: Fields, keys: readonly string[], found: L7Finding[]): void {
  for (const k of keys) {
    if (!isSet(f, k)) continue;
    f.list(k, text(f.sink));
    found.push({ path: f.at(k), what: 'is HTTP-only' });
  }
}

function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function parseSource(f: Fields, found: L7Finding[], l7: boolean): AuthzSource {
  onlyKeys(f, [...SOURCE_FIELDS, ...SOURCE_HTTP_FIELDS]);
  if (![...SOURCE_FIELDS, ...SOURCE_HTTP_FIELDS].some((k) => isSet(f, k)))
    f.sink.error(f.path, 'must not be empty; leave out the from entry to match any source');
  const principals = listOf(f, 'principals', principal(f.sink));
  const serviceAccounts = listOf(f, 'serviceAccounts', serviceAccount(f.sink));
  if (principals !== undefined && serviceAccounts !== undefined)
    f.error('serviceAccounts', 'cannot be set together with principals; both name the peer identity');
  // "Not any of A" and "not any of B" is "not any of A or B", so the negative lists merge exactly.
  const notPrincipals = merge(
    listOf(f, 'notPrincipals', principal(f.sink)),
    listOf(f, 'notServiceAccounts', serviceAccount(f.sink)),
  );
  // remoteIpBlocks are the client address from X-Forwarded-For or PROXY protocol. Node proxies read
  // neither, so the remote address is the connection's source address and the two fields mean the same.
  // (istiod instead drops such a rule for ztunnel; merging enforces what the author wrote.)
  const ipBlocks = merge(
    listOf(f, 'ipBlocks', text(f.sink, ipOrCidr)),
    listOf(f, 'remoteIpBlocks', text(f.sink, ipOrCidr)),
  );
  const notIpBlocks = merge(
    listOf(f, 'notIpBlocks', text(f.sink, ipOrCidr)),
    listOf(f, 'notRemoteIpBlocks', text(f.sink, ipOrCidr)),
  );
  if (!l7) httpOnly(f, SOURCE_HTTP_FIELDS, found);
  const pattern = text(f.sink, matchPattern);
  return defined({
    ...(l7
      ? {
          requestPrincipals: listOf(f, 'requestPrincipals', pattern),
          notRequestPrincipals: listOf(f, 'notRequestPrincipals', pattern),
        }
      : {}),
    principals: merge(principals, serviceAccounts),
    notPrincipals,
    namespaces: listOf(f, 'namespaces', namespace(f.sink)),
    notNamespaces: listOf(f, 'notNamespaces', namespace(f.sink)),
    ipBlocks,
    notIpBlocks,
  });
}

const method: StringCheck = (v) =>
  /^[A-Za-z-]+$/.test(v) ? undefined : 'is not an HTTP method (GET, POST, ...); methods match exactly';

function parseOperation(f: Fields, found: L7Finding[], l7: boolean): AuthzOperation {
  onlyKeys(f, [...OPERATION_FIELDS, ...OPERATION_HTTP_FIELDS]);
  if (![...OPERATION_FIELDS, ...OPERATION_HTTP_FIELDS].some((k) => isSet(f, k)))
    f.sink.error(f.path, 'must not be empty; leave out the to entry to match any port');
  const ports = listOf(f, 'ports', port(f.sink));
  const notPorts = listOf(f, 'notPorts', port(f.sink));
  if (!l7) {
    httpOnly(f, OPERATION_HTTP_FIELDS, found);
    return defined({ ports, notPorts });
  }
  const pattern = text(f.sink, matchPattern);
  return defined({
    ports,
    notPorts,
    hosts: listOf(f, 'hosts', pattern),
    notHosts: listOf(f, 'notHosts', pattern),
    methods: listOf(f, 'methods', text(f.sink, method)),
    notMethods: listOf(f, 'notMethods', text(f.sink, method)),
    paths: listOf(f, 'paths', pattern),
    notPaths: listOf(f, 'notPaths', pattern),
  });
}

function conditionItem(key: L4ConditionKey, sink: IssueSink): Item<string> {
  switch (key) {
    case 'source.ip':
    case 'destination.ip':
      return text(sink, ipOrCidr);
    case 'destination.port': {
      const p = port(sink);
      return (v, path) => {
        const n = p(v, path);
        return n === undefined ? undefined : String(n);
      };
    }
    case 'source.principal':
      return principal(sink);
    case 'source.namespace':
      return namespace(sink);
  }
}

/** The request.* keys the waypoint reads. */
function isL7Key(key: string): key is L7ConditionKey {
  return (
    key === 'request.auth.principal' ||
    /^request\.headers\[[^[\]]+\]$/.test(key) ||
    /^request\.auth\.claims(\[[^[\]]+\])+$/.test(key)
  );
}

function parseCondition(f: Fields, found: L7Finding[], l7: boolean): AuthzCondition | undefined {
  onlyKeys(f, ['key', 'values', 'notValues']);
  const key = f.string('key', { required: true });
  if (!isSet(f, 'values') && !isSet(f, 'notValues'))
    f.sink.error(f.path, 'sets neither values nor notValues; at least one is required');
  if (key === undefined) return undefined;
  // remote.ip is remoteIpBlocks' attribute: the connection's source address at L4 (see parseSource).
  const l4 = (key === 'remote.ip' ? 'source.ip' : key) as L4ConditionKey;
  if (L4_CONDITION_KEYS.includes(l4)) {
    const item = conditionItem(l4, f.sink);
    return defined({ key: l4, values: listOf(f, 'values', item), notValues: listOf(f, 'notValues', item) });
  }
  if (l7 && isL7Key(key)) {
    const item = text(f.sink, matchPattern);
    return defined({ key, values: listOf(f, 'values', item), notValues: listOf(f, 'notValues', item) });
  }
  if (l7) {
    f.error(
      'key',
      `${show(key)} is not a condition key the waypoint reads (request.headers[<name>], request.auth.claims[<claim>], request.auth.principal, or an L4 key: ${L4_CONDITION_KEYS.join(', ')})`,
    );
    return undefined;
  }
  if (key.startsWith('request.') || key.startsWith('experimental.')) {
    found.push({ path: f.at('key'), what: `${show(key)} is HTTP-only` });
  } else if (key === 'connection.sni') {
    found.push({
      path: f.at('key'),
      what: `${show(key)} is in the application's own TLS handshake, which node proxies do not read`,
    });
  } else {
    f.error(
      'key',
      `${show(key)} is not a condition key Ambit knows (L4 keys: ${L4_CONDITION_KEYS.join(', ')}; request.* keys are HTTP-only)`,
    );
    return undefined;
  }
  f.list('values', text(f.sink));
  f.list('notValues', text(f.sink));
  return undefined;
}

/** A non-empty list of `{<inner>: {...}}` entries, each read by `read`. */
function entries<T>(
  f: Fields,
  key: string,
  inner: string,
  hint: string,
  read: (f: Fields) => T,
): T[] | undefined {
  if (Array.isArray(f.raw(key)) && (f.raw(key) as unknown[]).length === 0)
    f.error(key, `must not be empty; leave it out to ${hint}`);
  return f.objects(key, (e) => {
    onlyKeys(e, [inner]);
    const o = e.object(inner, { required: true });
    return o === undefined ? undefined : read(o);
  });
}

function parseRule(f: Fields, l7: boolean): { rule: AuthzRule; found: L7Finding[] } {
  onlyKeys(f, ['from', 'to', 'when']);
  const found: L7Finding[] = [];
  const from = entries(f, 'from', 'source', 'match any source', (s) => parseSource(s, found, l7));
  const to = entries(f, 'to', 'operation', 'match any port', (o) => parseOperation(o, found, l7));
  const when = f.objects('when', (c) => parseCondition(c, found, l7));
  return {
    rule: defined({
      from: from?.length ? from : undefined,
      to: to?.length ? to : undefined,
      when: when?.length ? when : undefined,
    }),
    found,
  };
}

export function parseSelector(f: Fields): Readonly<Record<string, string>> | undefined {
  const s = f.object('selector');
  if (s === undefined) return undefined;
  onlyKeys(s, ['matchLabels']);
  const labels = s.stringMap('matchLabels', { keyCheck: qualifiedName, valueCheck: labelValue });
  // Empty matchLabels select every workload in scope, which is what no selector means.
  return labels === undefined || Object.keys(labels).length === 0 ? undefined : labels;
}

function parseAction(f: Fields, l7: boolean): 'ALLOW' | 'DENY' | 'AUDIT' {
  const raw = f.raw('action');
  if (raw === 'CUSTOM' || (raw === 'AUDIT' && !l7)) {
    f.error(
      'action',
      raw === 'AUDIT'
        ? '"AUDIT" is enforced by waypoints only: set targetRefs, or use ALLOW or DENY'
        : `${show(raw)} is not supported by Ambit (use ALLOW, DENY, or AUDIT with targetRefs)`,
    );
    return 'ALLOW';
  }
  return f.oneOf('action', ['ALLOW', 'DENY', 'AUDIT'] as const) ?? 'ALLOW';
}

const GATEWAY_GROUP = 'gateway.networking.k8s.io';

/** `targetRefs` (or Istio's older single `targetRef`): Services and Gateways in the policy's namespace. */
export function parseTargetRefs(f: Fields, meta: PolicyMeta): PolicyTargetRef[] | undefined {
  const one = (e: Fields): PolicyTargetRef | undefined => {
    onlyKeys(e, ['group', 'kind', 'name', 'namespace']);
    const group = e.string('group', { allowEmpty: true }) ?? '';
    const kind = e.oneOf('kind', ['Service', 'Gateway'] as const, { required: true });
    const name = e.string('name', { required: true, check: dns1123Subdomain });
    const ns = e.string('namespace');
    if (ns !== undefined && ns !== meta.namespace)
      e.error(
        'namespace',
        `${show(ns)} is not the policy's namespace; a policy targets only its own namespace`,
      );
    if (kind === 'Service' && group !== '' && group !== 'core')
      e.error('group', `${show(group)} is not the group of a Service (leave it out, or "")`);
    if (kind === 'Gateway' && group !== GATEWAY_GROUP)
      e.error('group', `${show(group)} is not the group of a Gateway (${GATEWAY_GROUP})`);
    return kind === undefined || name === undefined ? undefined : { kind, name };
  };
  if (f.has('targetRef') && f.has('targetRefs'))
    f.error('targetRef', 'cannot be set together with targetRefs; use targetRefs');
  const single = f.object('targetRef');
  const refs =
    single === undefined ? f.objects('targetRefs', one) : [one(single)].filter((x) => x !== undefined);
  if (Array.isArray(f.raw('targetRefs')) && (f.raw('targetRefs') as unknown[]).length === 0)
    f.error('targetRefs', 'must not be empty; leave it out for a policy node proxies enforce');
  return refs === undefined || refs.length === 0 ? undefined : refs;
}

/**
 * Reads an AuthorizationPolicy spec. No spec (or `{}`) is an ALLOW policy without rules, which
 * matches nothing: Istio's deny-all. Returns undefined when any error was reported.
 */
export function parseAuthorizationPolicy(
  spec: Fields | undefined,
  meta: PolicyMeta,
): AuthorizationPolicy | undefined {
  const head = { kind: 'AuthorizationPolicy', namespace: meta.namespace, name: meta.name } as const;
  if (spec === undefined) return { ...head, action: 'ALLOW', rules: [] };
  const { f, errors } = spec.counted();
  onlyKeys(f, ['selector', 'action', 'rules', 'targetRef', 'targetRefs', 'provider']);
  const l7 = f.has('targetRef') || f.has('targetRefs');
  const targetRefs = l7 ? parseTargetRefs(f, meta) : undefined;
  if (l7 && f.has('selector'))
    f.error(
      'selector',
      'cannot be set together with targetRefs; a policy selects workloads or targets a waypoint',
    );
  if (f.has('provider')) f.error('provider', 'belongs to action CUSTOM, which is not supported by Ambit');
  const selector = parseSelector(f);
  const action = parseAction(f, l7);
  const rules =
    f.objects('rules', (r) => {
      const { rule, found } = parseRule(r, l7);
      for (const x of found) {
        f.sink.warn(
          x.path,
          action === 'ALLOW'
            ? `${x.what}; node proxies enforce L4, so this ALLOW rule is dropped (as ztunnel does)`
            : `${x.what}; stripped, so this DENY rule applies at L4 to everything else it matches (as ztunnel does)`,
        );
      }
      // HTTP fields are never part of `rule`, so a DENY rule is already stripped of them.
      return found.length > 0 && action === 'ALLOW' ? NEVER_MATCHING_RULE : rule;
    }) ?? [];
  if (errors() > 0) return undefined;
  return {
    ...head,
    ...(selector === undefined ? {} : { selector }),
    ...(targetRefs === undefined ? {} : { targetRefs }),
    action,
    rules,
  };
}
