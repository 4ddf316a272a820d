import { createLocalJWKSet } from 'jose';
import { parseDuration } from '../config/duration.js';
import type { Fields, StringCheck } from '../config/field-reader.js';
import { show } from '../config/issue.js';
import { onlyKeys, type PolicyMeta, parseSelector, parseTargetRefs } from './parse-authorization-policy.js';
import {
  DEFAULT_JWT_HEADERS,
  DEFAULT_JWT_PARAMS,
  type JwksSource,
  type JwtHeaderLocation,
  type JwtRule,
  type RequestAuthentication,
} from './types.js';

/**
 * The parser of Istio's RequestAuthentication (under `security.ambit.dev/v1alpha1`): `selector` or
 * `targetRefs`, and `jwtRules` with the issuer, audiences, keys (inline `jwks` or a `jwksUri` the
 * waypoint fetches) and where the token is read from. Every default is applied here, so that the
 * waypoint never guesses: no location given is `Authorization: Bearer` and `?access_token=`.
 */

/** Istio's default JWKS fetch timeout. */
export const DEFAULT_JWKS_TIMEOUT_MS = 5000;

const RULE_FIELDS = [
  'issuer',
  'audiences',
  'jwksUri',
  'jwks',
  'fromHeaders',
  'fromParams',
  'fromCookies',
  'outputPayloadToHeader',
  'outputClaimToHeaders',
  'forwardOriginalToken',
  'timeout',
] as const;

/** An HTTP header name (RFC 9110 token), which is what a request or an output header can carry. */
const headerName: StringCheck = (v) =>
  /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v) ? undefined : 'is not an HTTP header name';

/** http or https with a host: what the waypoint can fetch. */
const jwksUri: StringCheck = (v) => {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return 'is not a URL (https://issuer.example/.well-known/jwks.json)';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'is not an http or https URL';
  return u.hostname === '' ? 'has no host' : undefined;
};

/**
 * An inline JWKS: JSON with a `keys` list that jose can build a key set from; returns why not. A key
 * without `kid` is allowed (a token without `kid` is tried against every key of its algorithm).
 */
export function jwksProblem(json: string): string | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    return `is not JSON (${(err as Error).message})`;
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) return 'is not a JWKS: it needs a non-empty "keys" list';
  for (const [i, k] of keys.entries()) {
    if (k === null || typeof k !== 'object' || typeof (k as { kty?: unknown }).kty !== 'string')
      return `keys[${i}] is not a JSON Web Key (no "kty")`;
    if ('d' in k) return `keys[${i}] is a private key; a JWKS for verification holds public keys only`;
  }
  try {
    createLocalJWKSet(doc as Parameters<typeof createLocalJWKSet>[0]);
  } catch (err) {
    return `is not a JWKS (${(err as Error).message})`;
  }
  return undefined;
}

function parseHeaders(f: Fields): JwtHeaderLocation[] | undefined {
  return f.objects('fromHeaders', (h) => {
    onlyKeys(h, ['name', 'prefix']);
    const name = h.string('name', { required: true, check: headerName });
    const prefix = h.string('prefix', { allowEmpty: true }) ?? '';
    return name === undefined ? undefined : { name: name.toLowerCase(), prefix };
  });
}

function parseClaimHeaders(f: Fields): { header: string; claim: string }[] | undefined {
  return f.objects('outputClaimToHeaders', (h) => {
    onlyKeys(h, ['header', 'claim']);
    const header = h.string('header', { required: true, check: headerName });
    const claim = h.string('claim', { required: true });
    return header === undefined || claim === undefined ? undefined : { header: header.toLowerCase(), claim };
  });
}

function parseRule(f: Fields): JwtRule | undefined {
  onlyKeys(f, RULE_FIELDS);
  const issuer = f.string('issuer', { required: true });
  if (issuer !== undefined && /\s/.test(issuer))
    f.error('issuer', `${show(issuer)} has white space; an issuer is a URL or a name without spaces`);
  const audiences = f.stringList('audiences', { check: (v) => (v === '' ? 'is empty' : undefined) });
  const uri = f.string('jwksUri', { check: jwksUri });
  const inline = f.string('jwks', { check: jwksProblem });
  if (f.has('jwksUri') && f.has('jwks'))
    f.error('jwks', 'cannot be set together with jwksUri; give the keys inline or where to fetch them');
  else if (!f.has('jwksUri') && !f.has('jwks'))
    f.sink.error(f.path, "sets neither jwksUri nor jwks; the waypoint needs the issuer's keys");
  const timeoutText = f.string('timeout');
  const timeoutMs = timeoutText === undefined ? DEFAULT_JWKS_TIMEOUT_MS : parseDuration(timeoutText);
  if (timeoutMs === undefined || timeoutMs === 0)
    f.error('timeout', `${show(timeoutText)} is not a positive duration (5s, 500ms)`);
  const fromHeaders = parseHeaders(f);
  const fromParams = f.stringList('fromParams', { check: (v) => (v === '' ? 'is empty' : undefined) });
  const fromCookies = f.stringList('fromCookies', { check: (v) => (v === '' ? 'is empty' : undefined) });
  const outputPayloadToHeader = f.string('outputPayloadToHeader', { check: headerName });
  const outputClaimToHeaders = parseClaimHeaders(f) ?? [];
  const forwardOriginalToken = f.bool('forwardOriginalToken') ?? false;
  const jwks: JwksSource | undefined =
    uri !== undefined
      ? { kind: 'uri', uri }
      : inline !== undefined
        ? { kind: 'inline', json: inline }
        : undefined;
  if (issuer === undefined || jwks === undefined || timeoutMs === undefined) return undefined;
  // Istio: with no location at all, the defaults; with any location set, only those.
  const none = fromHeaders === undefined && fromParams === undefined && fromCookies === undefined;
  return {
    issuer,
    ...(audiences === undefined || audiences.length === 0 ? {} : { audiences }),
    jwks,
    timeoutMs,
    fromHeaders: none ? DEFAULT_JWT_HEADERS : (fromHeaders ?? []),
    fromParams: none ? DEFAULT_JWT_PARAMS : (fromParams ?? []),
    fromCookies: fromCookies ?? [],
    ...(outputPayloadToHeader === undefined
      ? {}
      : { outputPayloadToHeader: outputPayloadToHeader.toLowerCase() }),
    outputClaimToHeaders,
    forwardOriginalToken,
  };
}

/**
 * Reads a RequestAuthentication spec. No spec (or no `jwtRules`) accepts no token at all: every
 * token is then from an issuer it does not configure, as in Istio. Returns undefined on any error.
 */
export function parseRequestAuthentication(
  spec: Fields | undefined,
  meta: PolicyMeta,
): RequestAuthentication | undefined {
  const head = { kind: 'RequestAuthentication', namespace: meta.namespace, name: meta.name } as const;
  if (spec === undefined) return { ...head, jwtRules: [] };
  const { f, errors } = spec.counted();
  onlyKeys(f, ['selector', 'targetRef', 'targetRefs', 'jwtRules']);
  const targeted = f.has('targetRef') || f.has('targetRefs');
  const targetRefs = targeted ? parseTargetRefs(f, meta) : undefined;
  if (targeted && f.has('selector'))
    f.error(
      'selector',
      'cannot be set together with targetRefs; a policy selects workloads or targets a waypoint',
    );
  const selector = parseSelector(f);
  const jwtRules = f.objects('jwtRules', parseRule) ?? [];
  const seen = new Map<string, number>();
  (f.raw('jwtRules') as unknown[] | undefined)?.forEach((r, i) => {
    const iss = (r as { issuer?: unknown } | null)?.issuer;
    if (typeof iss !== 'string') return;
    const before = seen.get(iss);
    if (before !== undefined)
      f.sink.error(
        [...f.at('jwtRules'), i, 'issuer'],
        `${show(iss)} is the issuer of jwtRules[${before}] too; one rule per issuer`,
      );
    else seen.set(iss, i);
  });
  if (errors() > 0) return undefined;
  return {
    ...head,
    ...(selector === undefined ? {} : { selector }),
    ...(targetRefs === undefined ? {} : { targetRefs }),
    jwtRules,
  };
}
