import { SignJWT } from 'jose';
import { describe, expect, test } from 'vitest';
import type { ClusterPod } from '../../src/cluster/resources.js';
import {
  authorizePodIdentity,
  Callers,
  NodeTokens,
  podPrincipalProblem,
} from '../../src/control-plane/node-auth.js';
import { AmbitError, ErrorCode } from '../../src/errors.js';
import {
  isJwt,
  issueServiceAccountToken,
  type ServiceAccountClaims,
  TOKEN_AUDIENCE,
  verifyServiceAccountToken,
} from '../../src/identity/service-account-token.js';
import { SpiffeId } from '../../src/identity/spiffe-id.js';
import { snapPod } from './cluster-fixtures.js';

const KEY = new TextEncoder().encode('the-local-cluster-signing-key-32b');
const OTHER_KEY = new TextEncoder().encode('another-cluster-signing-key-32by');
const NOW = 1_750_000_000;
const TTL = 3600;

const CLAIMS: ServiceAccountClaims = {
  namespace: 'shop',
  serviceAccount: 'waypoint',
  pod: 'waypoint-7d9f-abcde',
  podUid: 'uid-waypoint-7d9f-abcde',
  node: 'node-1',
};

/** A token shaped like Ambit's (or the kubelet's), with anything of it changed. */
function forge(
  over: {
    key?: Uint8Array;
    alg?: string;
    iss?: string;
    aud?: string;
    sub?: string | null;
    exp?: number | null;
    k8s?: Record<string, unknown> | null;
  } = {},
): Promise<string> {
  const k8s =
    over.k8s === undefined
      ? {
          namespace: CLAIMS.namespace,
          pod: { name: CLAIMS.pod, uid: CLAIMS.podUid },
          node: { name: CLAIMS.node },
          serviceaccount: { name: CLAIMS.serviceAccount },
        }
      : over.k8s;
  let jwt = new SignJWT(k8s === null ? {} : { 'kubernetes.io': k8s })
    .setProtectedHeader({ alg: over.alg ?? 'HS256', typ: 'JWT' })
    .setIssuer(over.iss ?? 'ambit-local')
    .setAudience(over.aud ?? TOKEN_AUDIENCE)
    .setIssuedAt(NOW)
    .setNotBefore(NOW);
  const sub =
    over.sub === undefined ? `system:serviceaccount:${CLAIMS.namespace}:${CLAIMS.serviceAccount}` : over.sub;
  if (sub !== null) jwt = jwt.setSubject(sub);
  const exp = over.exp === undefined ? NOW + TTL : over.exp;
  if (exp !== null) jwt = jwt.setExpirationTime(exp);
  return jwt.sign(over.key ?? KEY);
}

/** The error a refused token gets: its code and message. */
async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AmbitError);
    return { code: (err as AmbitError).code, message: (err as AmbitError).message };
  }
  throw new Error('the token was accepted');
}

const NOT_BOUND =
  'ServiceAccount token refused: it is not bound to a pod and node, or its subject does not match its claims';

describe('ServiceAccount tokens', () => {
  test('an issued token verifies to the claims it was issued for, for its whole lifetime', async () => {
    const token = await issueServiceAccountToken(KEY, CLAIMS, TTL, NOW);
    expect(isJwt(token)).toBe(true);
    expect(await verifyServiceAccountToken(KEY, token, NOW)).toEqual(CLAIMS);
    expect(await verifyServiceAccountToken(KEY, token, NOW + TTL - 1)).toEqual(CLAIMS);
  });

  test.each<{ what: string; token: () => Promise<string>; key?: Uint8Array; now?: number; message: string }>([
    {
      what: 'expired: at its expiry',
      token: () => issueServiceAccountToken(KEY, CLAIMS, TTL, NOW),
      now: NOW + TTL,
      message: 'ServiceAccount token refused: the token has expired',
    },
    {
      what: 'expired: long after',
      token: () => issueServiceAccountToken(KEY, CLAIMS, TTL, NOW),
      now: NOW + 10 * TTL,
      message: 'ServiceAccount token refused: the token has expired',
    },
    {
      what: 'not valid yet',
      token: () => issueServiceAccountToken(KEY, CLAIMS, TTL, NOW),
      now: NOW - 60,
      message: 'ServiceAccount token refused: the token is not valid yet (clock skew?)',
    },
    {
      what: 'signed with another key',
      token: () => issueServiceAccountToken(OTHER_KEY, CLAIMS, TTL, NOW),
      message: 'ServiceAccount token refused: the token is not signed by this cluster',
    },
    {
      what: 'verified with another key',
      token: () => issueServiceAccountToken(KEY, CLAIMS, TTL, NOW),
      key: OTHER_KEY,
      message: 'ServiceAccount token refused: the token is not signed by this cluster',
    },
    {
      what: 'for another audience',
      token: () => forge({ aud: 'kubernetes' }),
      message: 'ServiceAccount token refused: its "aud" claim is not this cluster\'s (check_failed)',
    },
    {
      what: 'from another issuer',
      token: () => forge({ iss: 'https://kubernetes.default.svc' }),
      message: 'ServiceAccount token refused: its "iss" claim is not this cluster\'s (check_failed)',
    },
    {
      what: 'signed with an algorithm other than HS256',
      token: () => forge({ alg: 'HS512', key: new Uint8Array(64).fill(7) }),
      message: 'ServiceAccount token refused: the token is signed with an algorithm other than HS256',
    },
    {
      what: 'a subject naming another ServiceAccount than its claims',
      token: () => forge({ sub: 'system:serviceaccount:shop:admin' }),
      message: NOT_BOUND,
    },
    {
      what: 'a subject naming another namespace than its claims',
      token: () => forge({ sub: 'system:serviceaccount:kube-system:waypoint' }),
      message: NOT_BOUND,
    },
    {
      what: 'a subject that is not a ServiceAccount',
      token: () => forge({ sub: 'system:node:node-1' }),
      message: NOT_BOUND,
    },
    {
      what: 'no subject',
      token: () => forge({ sub: null }),
      message: 'ServiceAccount token refused: the token has no "sub" claim',
    },
    { what: 'no kubernetes.io claims', token: () => forge({ k8s: null }), message: NOT_BOUND },
    {
      what: 'not bound to a pod',
      token: () =>
        forge({ k8s: { namespace: 'shop', node: { name: 'node-1' }, serviceaccount: { name: 'waypoint' } } }),
      message: NOT_BOUND,
    },
    {
      what: 'bound to a pod without its uid',
      token: () =>
        forge({
          k8s: {
            namespace: 'shop',
            pod: { name: CLAIMS.pod },
            node: { name: 'node-1' },
            serviceaccount: { name: 'waypoint' },
          },
        }),
      message: NOT_BOUND,
    },
    {
      what: 'not bound to a node',
      token: () =>
        forge({
          k8s: {
            namespace: 'shop',
            pod: { name: CLAIMS.pod, uid: CLAIMS.podUid },
            serviceaccount: { name: 'waypoint' },
          },
        }),
      message: NOT_BOUND,
    },
    {
      what: 'claims that are not strings',
      token: () =>
        forge({
          k8s: {
            namespace: 'shop',
            pod: { name: CLAIMS.pod, uid: 42 },
            node: { name: 'node-1' },
            serviceaccount: { name: 'waypoint' },
          },
        }),
      message: NOT_BOUND,
    },
    {
      what: 'malformed: three parts that are not a JWS',
      token: async () => 'abc.def.ghi',
      message: 'ServiceAccount token refused: the token is malformed (JWS Protected Header is invalid)',
    },
    {
      what: 'malformed: not even three parts',
      token: async () => 'not-a-token',
      message: 'ServiceAccount token refused: the token is malformed (Invalid Compact JWS)',
    },
    {
      what: 'malformed: a token with its signature cut off',
      token: async () => (await issueServiceAccountToken(KEY, CLAIMS, TTL, NOW)).replace(/\.[^.]+$/, '.'),
      message: 'ServiceAccount token refused: the token is not signed by this cluster',
    },
  ])('refused: $what', async ({ token, key = KEY, now = NOW, message }) => {
    expect(await refusal(verifyServiceAccountToken(key, await token(), now))).toEqual({
      code: ErrorCode.CERTIFICATE,
      message,
    });
  });

  // BUG (src/identity/service-account-token.ts): `jwtVerify` is not given `requiredClaims`, so a token
  // signed with the cluster key but without `exp` is accepted and never expires. The doc comment says
  // the lifetime is verified; the kubelet's and Ambit's own tokens always carry `exp`.
  test('refused: a token without an expiry', async () => {
    const token = await forge({ exp: null });
    expect(await refusal(verifyServiceAccountToken(KEY, token, NOW + 365 * 86_400))).toMatchObject({
      code: ErrorCode.CERTIFICATE,
    });
  });

  test.each<{ token: string; jwt: boolean }>([
    { token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl', jwt: true },
    { token: 'a.b.c', jwt: true },
    { token: 'a-_.b_-.c-_', jwt: true },
    { token: '3f8a1c0d9e2b4a6f8c1d3e5f7a9b0c2d', jwt: false },
    { token: 'a.b', jwt: false },
    { token: 'a.b.c.d', jwt: false },
    { token: 'a..c', jwt: false },
    { token: '.b.c', jwt: false },
    { token: 'a.b.c=', jwt: false },
    { token: 'a.b+/.c', jwt: false },
    { token: 'Bearer a.b.c', jwt: false },
    { token: 'a.b.c\n', jwt: false },
    { token: '', jwt: false },
  ])('isJwt($token): $jwt', ({ token, jwt }) => {
    expect(isJwt(token)).toBe(jwt);
  });
});

describe('Callers: who is calling the control plane', () => {
  const nodes = NodeTokens.of({ 'opaque-node-token-1': 'node-1', 'x.y.z': 'node-2' });
  const callers = new Callers(nodes, KEY, () => NOW);
  const noKey = new Callers(nodes, undefined, () => NOW);

  test.each<{
    what: string;
    callers?: Callers;
    token: () => Promise<string | undefined>;
    expected: unknown;
  }>([
    {
      what: 'a node token: that node',
      token: async () => 'opaque-node-token-1',
      expected: { kind: 'node', node: 'node-1' },
    },
    {
      what: 'a node token that looks like a JWT is still a node token',
      token: async () => 'x.y.z',
      expected: { kind: 'node', node: 'node-2' },
    },
    {
      what: 'a ServiceAccount token: the pod it is bound to',
      token: () => issueServiceAccountToken(KEY, CLAIMS, TTL, NOW),
      expected: { kind: 'pod', claims: CLAIMS },
    },
    {
      what: 'no token',
      token: async () => undefined,
      expected: { refused: 'a bearer token is required (authorization: Bearer <token>)' },
    },
    {
      what: 'an empty token',
      token: async () => '',
      expected: { refused: 'a bearer token is required (authorization: Bearer <token>)' },
    },
    {
      what: 'an unknown opaque token',
      token: async () => 'opaque-node-token-2',
      expected: { refused: 'the token is not a node token of this cluster' },
    },
    {
      what: 'a JWT when the control plane has no verification key',
      callers: noKey,
      token: () => issueServiceAccountToken(KEY, CLAIMS, TTL, NOW),
      expected: {
        refused: 'ServiceAccount tokens are not accepted: the control plane has no verification key',
      },
    },
    {
      what: 'node tokens still work without a verification key',
      callers: noKey,
      token: async () => 'opaque-node-token-1',
      expected: { kind: 'node', node: 'node-1' },
    },
    {
      what: 'an expired ServiceAccount token',
      token: () => issueServiceAccountToken(KEY, CLAIMS, TTL, NOW - 2 * TTL),
      expected: { refused: 'ServiceAccount token refused: the token has expired' },
    },
    {
      what: 'a ServiceAccount token for another audience',
      token: () => forge({ aud: 'kubernetes' }),
      expected: {
        refused: 'ServiceAccount token refused: its "aud" claim is not this cluster\'s (check_failed)',
      },
    },
    {
      what: "another cluster's ServiceAccount token",
      token: () => issueServiceAccountToken(OTHER_KEY, CLAIMS, TTL, NOW),
      expected: {
        refused: 'ServiceAccount token refused: the token is not signed by this cluster',
      },
    },
  ])('$what', async ({ callers: c = callers, token, expected }) => {
    expect(await c.authenticate(await token())).toEqual(expected);
  });

  // jose's claim errors carry a plain object as `cause`: the reason must not end in "[object Object]".
  test('an expired ServiceAccount token is refused with a reason that reads well', async () => {
    const token = await issueServiceAccountToken(KEY, CLAIMS, TTL, NOW - 2 * TTL);
    const r = await callers.authenticate(token);
    expect(r).toEqual({ refused: 'ServiceAccount token refused: the token has expired' });
    expect(JSON.stringify(r)).not.toContain('[object Object]');
  });
});

describe('podPrincipalProblem: whether a token still speaks for a live pod', () => {
  const pod = (over: Partial<ClusterPod> = {}): ClusterPod =>
    snapPod(CLAIMS.pod, {
      serviceAccount: CLAIMS.serviceAccount,
      node: CLAIMS.node,
      labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' },
      ...over,
    });
  test.each<{ what: string; pod: ClusterPod | undefined; problem?: string }>([
    { what: 'the pod, running', pod: pod() },
    {
      what: "an application pod's token gets nothing (only waypoint pods talk to the control plane as pods)",
      pod: pod({ labels: {} }),
      problem: 'pod shop/waypoint-7d9f-abcde is not a waypoint pod',
    },
    { what: 'the pod, still pending', pod: pod({ phase: 'Pending' }) },
    { what: 'the pod is gone', pod: undefined, problem: 'pod shop/waypoint-7d9f-abcde does not exist' },
    {
      what: 'a new pod of the same name (uid differs)',
      pod: pod({ uid: 'uid-of-the-next-one' }),
      problem: 'pod shop/waypoint-7d9f-abcde is not the pod the token was issued to (uid differs)',
    },
    {
      what: 'the pod runs as another ServiceAccount',
      pod: pod({ serviceAccount: 'default' }),
      problem: 'pod shop/waypoint-7d9f-abcde runs as default, not waypoint',
    },
    {
      what: 'the pod runs on another node',
      pod: pod({ node: 'node-2' }),
      problem: 'pod shop/waypoint-7d9f-abcde runs on node-2, not node-1',
    },
    {
      what: 'the pod succeeded',
      pod: pod({ phase: 'Succeeded' }),
      problem: 'pod shop/waypoint-7d9f-abcde has ended',
    },
    {
      what: 'the pod failed',
      pod: pod({ phase: 'Failed' }),
      problem: 'pod shop/waypoint-7d9f-abcde has ended',
    },
  ])('$what', ({ pod, problem }) => {
    expect(podPrincipalProblem(CLAIMS, pod)).toBe(problem);
  });
});

describe('authorizePodIdentity: a pod may have its own identity only', () => {
  test.each<{ what: string; identity: string; refusal?: string }>([
    { what: 'its own ServiceAccount', identity: 'spiffe://cluster.local/ns/shop/sa/waypoint' },
    {
      what: 'another ServiceAccount of its namespace',
      identity: 'spiffe://cluster.local/ns/shop/sa/web',
      refusal: 'a pod running as shop/waypoint may only have its own identity',
    },
    {
      what: 'the same ServiceAccount name in another namespace',
      identity: 'spiffe://cluster.local/ns/payments/sa/waypoint',
      refusal: 'a pod running as shop/waypoint may only have its own identity',
    },
    {
      what: 'its own ServiceAccount in another trust domain',
      identity: 'spiffe://evil.example/ns/shop/sa/waypoint',
      refusal: 'trust domain evil.example is not cluster.local',
    },
  ])('$what', ({ identity, refusal }) => {
    expect(authorizePodIdentity(CLAIMS, SpiffeId.parse(identity), 'cluster.local')).toBe(refusal);
  });
});
