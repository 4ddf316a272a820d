import { exportJWK, generateKeyPair, type JSONWebKeySet, SignJWT } from 'jose';
import { pino } from 'pino';
import { beforeAll, describe, expect, onTestFinished, test } from 'vitest';
import { decodePolicy, encodePolicy } from '../../src/api/config-policies.js';
import { Fields, type IssueSink } from '../../src/config/field-reader.js';
import { formatPath } from '../../src/config/issue.js';
import { JwksCache, KID_MISS_COOLDOWN_MS } from '../../src/l7-waypoint/jwks.js';
import {
  type ApplicableRule,
  type AuthnTarget,
  authnOutcome,
  authnRewrite,
  type CheckedToken,
  explainAuthn,
  findTokens,
  jwtRulesFor,
  ruleForToken,
} from '../../src/mesh/authn-jwt.js';
import { parseRequestAuthentication } from '../../src/policy/parse-request-authentication.js';
import type { JwtRule, RequestAuthentication } from '../../src/policy/types.js';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

function parse(spec: unknown): { policy: RequestAuthentication | undefined; issues: string[] } {
  const issues: string[] = [];
  const sink: IssueSink = {
    error: (p, m) => issues.push(`error ${formatPath(p)}: ${m}`),
    warn: (p, m) => issues.push(`warning ${formatPath(p)}: ${m}`),
  };
  const f = spec === undefined ? undefined : Fields.of(spec, ['spec'], sink);
  return { policy: parseRequestAuthentication(f, { namespace: 'shop', name: 'jwt' }), issues };
}

const JWKS = JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'a' }] });
const GW = { kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' };

describe('RequestAuthentication parser', () => {
  test('defaults: Authorization Bearer and access_token, token removed, 5 s timeout', () => {
    const { policy, issues } = parse({
      targetRefs: [GW],
      jwtRules: [{ issuer: 'https://idp', jwksUri: 'http://idp/jwks.json' }],
    });
    expect(issues).toEqual([]);
    expect(policy).toEqual({
      kind: 'RequestAuthentication',
      namespace: 'shop',
      name: 'jwt',
      targetRefs: [{ kind: 'Gateway', name: 'waypoint' }],
      jwtRules: [
        {
          issuer: 'https://idp',
          jwks: { kind: 'uri', uri: 'http://idp/jwks.json' },
          timeoutMs: 5000,
          fromHeaders: [{ name: 'authorization', prefix: 'Bearer ' }],
          fromParams: ['access_token'],
          fromCookies: [],
          outputClaimToHeaders: [],
          forwardOriginalToken: false,
        },
      ],
    });
  });

  test('every field, with a location set: only the locations given', () => {
    const { policy, issues } = parse({
      selector: { matchLabels: { app: 'web' } },
      jwtRules: [
        {
          issuer: 'idp',
          audiences: ['web'],
          jwks: JWKS,
          timeout: '2s',
          fromHeaders: [{ name: 'X-Token' }],
          fromCookies: ['session'],
          outputPayloadToHeader: 'X-Payload',
          outputClaimToHeaders: [{ header: 'X-Group', claim: 'group' }],
          forwardOriginalToken: true,
        },
      ],
    });
    expect(issues).toEqual([]);
    expect(policy?.selector).toEqual({ app: 'web' });
    expect(policy?.jwtRules[0]).toEqual({
      issuer: 'idp',
      audiences: ['web'],
      jwks: { kind: 'inline', json: JWKS },
      timeoutMs: 2000,
      fromHeaders: [{ name: 'x-token', prefix: '' }],
      fromParams: [],
      fromCookies: ['session'],
      outputPayloadToHeader: 'x-payload',
      outputClaimToHeaders: [{ header: 'x-group', claim: 'group' }],
      forwardOriginalToken: true,
    });
  });

  test.each([
    {
      what: 'both jwks and jwksUri',
      rule: { issuer: 'i', jwks: JWKS, jwksUri: 'https://idp/k' },
      issue:
        'error spec.jwtRules[0].jwks: cannot be set together with jwksUri; give the keys inline or where to fetch them',
    },
    {
      what: 'neither',
      rule: { issuer: 'i' },
      issue: "error spec.jwtRules[0]: sets neither jwksUri nor jwks; the waypoint needs the issuer's keys",
    },
    {
      what: 'no issuer',
      rule: { jwksUri: 'https://idp/k' },
      issue: 'error spec.jwtRules[0].issuer: is required',
    },
    {
      what: 'an issuer with spaces',
      rule: { issuer: 'my idp', jwksUri: 'https://idp/k' },
      issue:
        'error spec.jwtRules[0].issuer: "my idp" has white space; an issuer is a URL or a name without spaces',
    },
    {
      what: 'a jwksUri that is not http',
      rule: { issuer: 'i', jwksUri: 'ftp://idp/k' },
      issue: 'error spec.jwtRules[0].jwksUri: "ftp://idp/k" is not an http or https URL',
    },
    {
      what: 'malformed inline JWKS',
      rule: { issuer: 'i', jwks: '{"keys": [' },
      issue: /^error spec\.jwtRules\[0\]\.jwks: "\{\\"keys\\": \[" is not JSON/,
    },
    {
      what: 'a JWKS without keys',
      rule: { issuer: 'i', jwks: '{"keys": []}' },
      issue:
        'error spec.jwtRules[0].jwks: "{\\"keys\\": []}" is not a JWKS: it needs a non-empty "keys" list',
    },
    {
      what: 'a private key in the JWKS',
      rule: { issuer: 'i', jwks: '{"keys": [{"kty":"RSA","n":"x","e":"AQAB","d":"y"}]}' },
      issue: /keys\[0\] is a private key/,
    },
    {
      what: 'a header without a name',
      rule: { issuer: 'i', jwks: JWKS, fromHeaders: [{ prefix: 'Bearer ' }] },
      issue: 'error spec.jwtRules[0].fromHeaders[0].name: is required',
    },
    {
      what: 'a bad output header',
      rule: { issuer: 'i', jwks: JWKS, outputClaimToHeaders: [{ header: 'x y', claim: 'sub' }] },
      issue: 'error spec.jwtRules[0].outputClaimToHeaders[0].header: "x y" is not an HTTP header name',
    },
    {
      what: 'an unknown field',
      rule: { issuer: 'i', jwks: JWKS, jwks_uri: 'x' },
      issue: /^error spec\.jwtRules\[0\]\.jwks_uri: unknown field/,
    },
    {
      what: 'a bad timeout',
      rule: { issuer: 'i', jwks: JWKS, timeout: 'soon' },
      issue: 'error spec.jwtRules[0].timeout: "soon" is not a positive duration (5s, 500ms)',
    },
  ])('rejects $what, naming the field', ({ rule, issue }) => {
    const { policy, issues } = parse({ jwtRules: [rule] });
    expect(policy).toBeUndefined();
    expect(issues).toHaveLength(1);
    if (typeof issue === 'string') expect(issues[0]).toBe(issue);
    else expect(issues[0]).toMatch(issue);
  });

  test('two rules for one issuer, and selector with targetRefs, are rejected', () => {
    const { policy, issues } = parse({
      selector: { matchLabels: { app: 'web' } },
      targetRefs: [GW],
      jwtRules: [
        { issuer: 'i', jwks: JWKS },
        { issuer: 'i', jwksUri: 'https://idp/k' },
      ],
    });
    expect(policy).toBeUndefined();
    expect(issues).toEqual([
      'error spec.selector: cannot be set together with targetRefs; a policy selects workloads or targets a waypoint',
      'error spec.jwtRules[1].issuer: "i" is the issuer of jwtRules[0] too; one rule per issuer',
    ]);
  });
});

describe('RequestAuthentication on the config stream', () => {
  test('round trip', () => {
    const p = parse({
      targetRefs: [GW, { kind: 'Service', name: 'web' }],
      jwtRules: [
        {
          issuer: 'idp',
          audiences: ['web'],
          jwks: JWKS,
          fromHeaders: [{ name: 'x-token', prefix: 'Token ' }],
          fromParams: ['t'],
          outputPayloadToHeader: 'x-payload',
          outputClaimToHeaders: [{ header: 'x-group', claim: 'group' }],
        },
        { issuer: 'other', jwksUri: 'https://idp/jwks' },
      ],
    }).policy!;
    const wire = encodePolicy('RequestAuthentication/shop/jwt', p);
    // As proto-loader gives it: a JSON round trip is close enough for the shapes.
    expect(decodePolicy(JSON.parse(JSON.stringify(wire)))).toEqual({ policy: p });
  });

  test.each([
    {
      what: 'no key source',
      patch: { jwks: '', jwks_uri: '' },
      problem: /exactly one of jwksUri and jwks/,
    },
    {
      what: 'a bad inline JWKS',
      patch: { jwks: '{' },
      problem: /jwtRules\[0\]\.jwks is not JSON/,
    },
    {
      what: 'no issuer',
      patch: { issuer: '' },
      problem: /jwtRules\[0\]\.issuer is required/,
    },
    {
      what: 'a bad header',
      patch: { from_headers: [{ name: 'A B', prefix: '' }] },
      problem: /is not a header name/,
    },
  ])('a decoded policy with $what is refused', ({ patch, problem }) => {
    const p = parse({ jwtRules: [{ issuer: 'idp', jwks: JWKS }] }).policy!;
    const wire = JSON.parse(JSON.stringify(encodePolicy('RequestAuthentication/shop/jwt', p)));
    Object.assign(wire.request_authentication.jwt_rules[0], patch);
    const d = decodePolicy(wire);
    expect('problem' in d && d.problem).toMatch(problem);
  });
});

const rule = (over: Partial<JwtRule> = {}): JwtRule => ({
  issuer: 'https://idp',
  jwks: { kind: 'inline', json: JWKS },
  timeoutMs: 5000,
  fromHeaders: [{ name: 'authorization', prefix: 'Bearer ' }],
  fromParams: ['access_token'],
  fromCookies: [],
  outputClaimToHeaders: [],
  forwardOriginalToken: false,
  ...over,
});

const ra = (name: string, over: Partial<RequestAuthentication>): RequestAuthentication => ({
  kind: 'RequestAuthentication',
  namespace: 'shop',
  name,
  jwtRules: [rule()],
  ...over,
});

const target: AuthnTarget = {
  waypoint: { namespace: 'shop', name: 'waypoint' },
  service: { namespace: 'shop', name: 'web' },
  namespace: 'shop',
  workloadLabels: [{ app: 'web', tier: 'front' }],
};

describe('which RequestAuthentications apply', () => {
  test.each([
    {
      what: 'targetRefs naming the Service',
      p: { targetRefs: [{ kind: 'Service', name: 'web' }] },
      applies: true,
    },
    {
      what: 'targetRefs naming another Service',
      p: { targetRefs: [{ kind: 'Service', name: 'db' }] },
      applies: false,
    },
    {
      what: 'targetRefs naming the waypoint',
      p: { targetRefs: [{ kind: 'Gateway', name: 'waypoint' }] },
      applies: true,
    },
    { what: 'no selector in the namespace', p: {}, applies: true },
    { what: 'no selector in another namespace', p: { namespace: 'other' }, applies: false },
    { what: 'no selector in the root namespace', p: { namespace: 'ambit-system' }, applies: true },
    { what: 'a selector the workloads match', p: { selector: { app: 'web' } }, applies: true },
    { what: 'a selector they do not', p: { selector: { app: 'db' } }, applies: false },
  ] as const)('$what: $applies', ({ p, applies }) => {
    const got = jwtRulesFor([ra('a', p as Partial<RequestAuthentication>)], target);
    expect(got.policies.length === 1).toBe(applies);
  });
});

const applicable = (r: JwtRule): ApplicableRule => ({ policy: 'shop/jwt', rule: r });

/** An unsigned JWT with this payload (the pure code reads only its `iss`). */
const fake = (payload: object): string =>
  `e30.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.sig`;

describe('where the token is, and which rule checks it', () => {
  const r = applicable(
    rule({
      fromCookies: ['session'],
      fromHeaders: [
        { name: 'authorization', prefix: 'Bearer ' },
        { name: 'x-token', prefix: '' },
      ],
    }),
  );
  const tok = fake({ iss: 'https://idp' });
  test.each([
    {
      what: 'Authorization: Bearer',
      path: '/',
      headers: { authorization: `Bearer ${tok}` },
      at: 'header authorization',
    },
    {
      what: 'the prefix in another case',
      path: '/',
      headers: { authorization: `bearer ${tok}` },
      at: 'header authorization',
    },
    { what: 'a header without prefix', path: '/', headers: { 'x-token': tok }, at: 'header x-token' },
    {
      what: 'the query parameter',
      path: `/x?a=1&access_token=${tok}`,
      headers: {},
      at: 'param access_token',
    },
    { what: 'a cookie', path: '/', headers: { cookie: `a=b; session=${tok}` }, at: 'cookie session' },
    {
      what: 'Basic credentials (not the prefix)',
      path: '/',
      headers: { authorization: 'Basic eDp5' },
      at: undefined,
    },
    { what: 'nothing', path: '/', headers: {}, at: undefined },
  ])('$what', ({ path, headers, at }) => {
    const found = findTokens([r], { path, headers: headers as Record<string, string> });
    expect(found.map((f) => `${f.at.kind} ${f.at.name}`)[0]).toBe(at);
    if (at !== undefined) expect(found[0]!.token).toBe(tok);
  });

  test.each([
    { what: 'the configured issuer', token: fake({ iss: 'https://idp' }), pick: 'https://idp' },
    { what: 'another issuer', token: fake({ iss: 'https://evil' }), pick: 'issuer-not-configured' },
    { what: 'not a JWT', token: 'opaque-token', pick: 'malformed' },
  ])('a token from $what', ({ token, pick }) => {
    const [found] = findTokens([r], { path: '/', headers: { authorization: `Bearer ${token}` } });
    const got = ruleForToken(found!);
    expect('rule' in got ? got.rule.rule.issuer : got.failure).toBe(pick);
  });
});

describe('the outcome, as Envoy jwt_authn answers', () => {
  const r = applicable(rule());
  const found = {
    token: fake({ iss: 'https://idp' }),
    at: { kind: 'header', name: 'authorization', prefix: 'Bearer ' },
    rules: [r],
  } as const;
  const ok = (payload: Record<string, unknown>): CheckedToken => ({
    found,
    rule: r,
    result: { ok: true, payload },
  });
  const bad = (
    failure: 'expired' | 'bad-signature' | 'audience-not-allowed' | 'unknown-key',
  ): CheckedToken => ({
    found,
    rule: r,
    result: { ok: false, failure },
  });
  test.each([
    { what: 'no policy', policies: [], checked: [], expect: { kind: 'none' } },
    { what: 'no token', policies: ['shop/jwt'], checked: [], expect: { kind: 'missing' } },
    {
      what: 'a valid token',
      policies: ['shop/jwt'],
      checked: [ok({ iss: 'https://idp', sub: 'alice', group: 'eng' })],
      expect: { kind: 'authenticated', principal: 'https://idp/alice' },
    },
    {
      what: 'an expired token',
      policies: ['shop/jwt'],
      checked: [bad('expired')],
      expect: { kind: 'denied', status: 401, message: 'Jwt is expired' },
    },
    {
      what: 'a bad signature',
      policies: ['shop/jwt'],
      checked: [bad('bad-signature')],
      expect: { kind: 'denied', status: 401, message: 'Jwt verification fails' },
    },
    {
      what: 'an unknown key',
      policies: ['shop/jwt'],
      checked: [bad('unknown-key')],
      expect: { kind: 'denied', status: 401 },
    },
    {
      what: 'a wrong audience (Envoy: 403)',
      policies: ['shop/jwt'],
      checked: [bad('audience-not-allowed')],
      expect: { kind: 'denied', status: 403, message: 'Audiences in Jwt are not allowed' },
    },
  ])('$what', ({ policies, checked, expect: want }) => {
    expect(authnOutcome(policies, checked)).toMatchObject(want);
  });

  test('the reason names the policy, issuer and where the token was', () => {
    const o = authnOutcome(['shop/jwt'], [bad('expired')]);
    expect(o.kind === 'denied' && o.reason).toBe(
      'JWT in header authorization refused by RequestAuthentication shop/jwt (issuer https://idp): Jwt is expired',
    );
  });

  test('after: the token is removed unless forwarded, claims go to headers, forged claim headers are dropped', () => {
    const out = rule({
      outputClaimToHeaders: [{ header: 'x-group', claim: 'group' }],
      outputPayloadToHeader: 'x-payload',
    });
    const a = applicable(out);
    const tokenFound = { ...found, rules: [a] };
    const checked: CheckedToken[] = [
      { found: tokenFound, rule: a, result: { ok: true, payload: { group: 'eng' } } },
    ];
    const got = authnRewrite(
      { path: '/p', headers: { authorization: `Bearer ${found.token}`, 'x-group': 'admin', accept: '*/*' } },
      [a],
      checked,
    );
    expect(got.headers).toEqual({ 'x-group': 'eng', 'x-payload': found.token.split('.')[1], accept: '*/*' });
    const forged = authnRewrite({ path: '/p', headers: { 'x-group': 'admin' } }, [a], []);
    expect(forged.headers).toEqual({});
    const kept = applicable(rule({ forwardOriginalToken: true }));
    expect(
      authnRewrite(
        { path: '/p', headers: { authorization: 'Bearer t' } },
        [kept],
        [{ found: { ...found, rules: [kept] }, rule: kept, result: { ok: true, payload: {} } }],
      ).headers,
    ).toEqual({ authorization: 'Bearer t' });
    const param = { token: 't', at: { kind: 'param', name: 'access_token' }, rules: [r] } as const;
    expect(
      authnRewrite(
        { path: '/p?a=1&access_token=t', headers: {} },
        [r],
        [{ found: param, rule: r, result: { ok: true, payload: {} } }],
      ).path,
    ).toBe('/p?a=1');
  });
});

describe('JwksCache: jose verification, and key rotation', () => {
  let keyA: PrivateKey;
  let keyB: PrivateKey;
  let jwksA: JSONWebKeySet;
  let jwksB: JSONWebKeySet;
  const now = { t: Date.parse('2026-01-01T00:00:00Z') };
  const clock = { now: () => new Date(now.t), setTimer: () => ({ cancel: () => undefined }) };
  beforeAll(async () => {
    const a = await generateKeyPair('RS256');
    const b = await generateKeyPair('RS256');
    keyA = a.privateKey;
    keyB = b.privateKey;
    jwksA = { keys: [{ ...(await exportJWK(a.publicKey)), kid: 'a', alg: 'RS256' }] };
    jwksB = { keys: [{ ...(await exportJWK(b.publicKey)), kid: 'b', alg: 'RS256' }] };
  });
  const sign = (
    key: PrivateKey,
    kid: string,
    claims: Record<string, unknown> = {},
    exp = now.t / 1000 + 3600,
  ) =>
    new SignJWT({ sub: 'alice', ...claims })
      .setProtectedHeader({ alg: 'RS256', kid })
      .setIssuer('https://idp')
      .setAudience('web')
      .setIssuedAt(now.t / 1000 - 10)
      .setExpirationTime(exp)
      .sign(key);

  test('verdicts: valid, expired, bad signature, audience, not yet valid', async () => {
    const cache = new JwksCache({ log: pino({ level: 'silent' }), clock, fetch: async () => jwksA });
    const r = rule({ jwks: { kind: 'uri', uri: 'http://idp/jwks' }, audiences: ['web'] });
    expect(await cache.verify(r, await sign(keyA, 'a'))).toMatchObject({
      ok: true,
      payload: { sub: 'alice' },
    });
    expect(await cache.verify(r, await sign(keyA, 'a', {}, now.t / 1000 - 3600))).toMatchObject({
      ok: false,
      failure: 'expired',
    });
    const forged = await sign(keyB, 'a');
    expect(await cache.verify(r, forged)).toMatchObject({ ok: false, failure: 'bad-signature' });
    expect(await cache.verify(rule({ ...r, audiences: ['other'] }), await sign(keyA, 'a'))).toMatchObject({
      ok: false,
      failure: 'audience-not-allowed',
    });
    const early = await new SignJWT({ sub: 'x' })
      .setProtectedHeader({ alg: 'RS256', kid: 'a' })
      .setIssuer('https://idp')
      .setNotBefore(now.t / 1000 + 3600)
      .sign(keyA);
    expect(await cache.verify(rule({ jwks: r.jwks }), early)).toMatchObject({
      ok: false,
      failure: 'not-yet-valid',
    });
  });

  test('a new kid makes a fetch (rate-limited), so a rotation is picked up', async () => {
    let served = jwksA;
    let fetches = 0;
    const cache = new JwksCache({
      log: pino({ level: 'silent' }),
      clock,
      fetch: async () => {
        fetches++;
        return served;
      },
    });
    const r = rule({ jwks: { kind: 'uri', uri: 'http://idp/jwks' } });
    expect((await cache.verify(r, await sign(keyA, 'a'))).ok).toBe(true);
    served = jwksB;
    // Within the cooldown: no fetch, the key is unknown.
    expect(await cache.verify(r, await sign(keyB, 'b'))).toMatchObject({ ok: false, failure: 'unknown-key' });
    expect(fetches).toBe(1);
    now.t += KID_MISS_COOLDOWN_MS;
    expect((await cache.verify(r, await sign(keyB, 'b'))).ok).toBe(true);
    expect(fetches).toBe(2);
    // The old key is gone with the rotation.
    expect(await cache.verify(r, await sign(keyA, 'a'))).toMatchObject({ ok: false, failure: 'unknown-key' });
    expect(cache.states()).toMatchObject([{ uri: 'http://idp/jwks', kids: ['b'] }]);
  });

  test('a verified token is taken as verified on its next request, until it expires or the keys it was verified with are rotated out', async () => {
    let served = jwksA;
    const start = now.t;
    onTestFinished(() => {
      now.t = start;
    });
    const cache = new JwksCache({ log: pino({ level: 'silent' }), clock, fetch: async () => served });
    const r = rule({ jwks: { kind: 'uri', uri: 'http://idp/jwks' }, audiences: ['web'] });
    const token = await sign(keyA, 'a', {}, now.t / 1000 + 120);
    expect((await cache.verify(r, token)).ok).toBe(true);
    expect(cache.verifiedTokens).toBe(1);
    expect(await cache.verify(r, token)).toMatchObject({ ok: true, payload: { sub: 'alice' } });
    // Kept for one rule only: another audience list checks it afresh (and refuses it).
    expect(await cache.verify(rule({ ...r, audiences: ['other'] }), token)).toMatchObject({
      failure: 'audience-not-allowed',
    });
    // Past exp and the 60 s skew: expired, as a full check says.
    now.t += 181_000;
    expect(await cache.verify(r, token)).toMatchObject({ ok: false, failure: 'expired' });
    now.t = start;
    expect((await cache.verify(r, token)).ok).toBe(true);
    // The JWKS rotates to key b (a token with the new kid makes the fetch): the kept token is not trusted.
    served = jwksB;
    now.t += KID_MISS_COOLDOWN_MS;
    expect((await cache.verify(r, await sign(keyB, 'b'))).ok).toBe(true);
    expect(await cache.verify(r, token)).toMatchObject({ ok: false, failure: 'unknown-key' });
    // An inline JWKS changed to another key: the kept token is checked against the new keys.
    const inlineA = rule({ jwks: { kind: 'inline', json: JSON.stringify(jwksA) } });
    const inlineB = rule({ jwks: { kind: 'inline', json: JSON.stringify(jwksB) } });
    now.t = start;
    expect((await cache.verify(inlineA, token)).ok).toBe(true);
    expect(await cache.verify(inlineB, token)).toMatchObject({ ok: false, failure: 'unknown-key' });
  });

  test('an unreachable jwksUri refuses the token (Jwks remote fetch is failed)', async () => {
    const cache = new JwksCache({
      log: pino({ level: 'silent' }),
      clock,
      fetch: async () => {
        throw new Error('connect ECONNREFUSED');
      },
    });
    const r = rule({ jwks: { kind: 'uri', uri: 'http://idp/jwks' } });
    expect(await cache.verify(r, await sign(keyA, 'a'))).toEqual({
      ok: false,
      failure: 'jwks-fetch-failed',
      detail: 'connect ECONNREFUSED',
    });
  });
});

describe('explain: what can be said without the keys', () => {
  const p = [ra('jwt', { targetRefs: [{ kind: 'Gateway', name: 'waypoint' }] })];
  test.each([
    { what: 'no policy', policies: [], headers: {}, text: undefined },
    {
      what: 'no token',
      policies: p,
      headers: {},
      text: 'RequestAuthentication shop/jwt applies; no token: the request goes on unauthenticated',
    },
    {
      what: 'a token from another issuer',
      policies: p,
      headers: { authorization: `Bearer ${fake({ iss: 'https://evil' })}` },
      text: 'RequestAuthentication shop/jwt: the token in header authorization is refused: Jwt issuer is not configured',
    },
    {
      what: 'a token of the issuer',
      policies: p,
      headers: { authorization: `Bearer ${fake({ iss: 'https://idp', sub: 'bob' })}` },
      text: 'RequestAuthentication shop/jwt: the token in header authorization is checked against issuer https://idp (shop/jwt); if its signature, exp, nbf and aud hold, the request carries principal https://idp/bob (a bad one is refused 401)',
    },
  ])('$what', ({ policies, headers, text }) => {
    expect(
      explainAuthn(policies, target, { path: '/', headers: headers as Record<string, string> })?.text,
    ).toBe(text);
  });
});
