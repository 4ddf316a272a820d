import { SignJWT } from 'jose';
import { describe, expect, test } from 'vitest';
import type { ClusterPod } from '../../src/cluster/resources.js';
import {
  authorizePodIdentity,
  Callers,
  podPrincipalProblem,
  principalFromReview,
  REVIEW_CACHE_SECONDS,
} from '../../src/control-plane/node-auth.js';
import { AmbitError, ErrorCode } from '../../src/errors.js';
import {
  isJwt,
  issueServiceAccountToken,
  reviewServiceAccountToken,
  type ServiceAccountClaims,
  TOKEN_AUDIENCE,
  verifyServiceAccountToken,
} from '../../src/identity/service-account-token.js';
import { SpiffeId } from '../../src/identity/spiffe-id.js';
import {
  EXTRA_NODE_NAME,
  EXTRA_POD_NAME,
  EXTRA_POD_UID,
  type TokenReviewer,
  type TokenReviewStatus,
} from '../../src/kube/token-review.js';
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

const NODE_SA = { namespace: 'ambit-system', name: 'ambit-node' };
const NODE_CLAIMS: ServiceAccountClaims = {
  namespace: 'ambit-system',
  serviceAccount: 'ambit-node',
  pod: 'ambit-node-x7k2p',
  podUid: 'uid-ambit-node-x7k2p',
  node: 'node-1',
};

/** What local mode's API answers a TokenReview with (reviewServiceAccountToken), at NOW. */
const localReviewer: TokenReviewer = { review: (t, a) => reviewServiceAccountToken(KEY, t, a, NOW) };

describe('Callers: who is calling the control plane (tokens reviewed by the API server)', () => {
  const callers = new Callers(
    localReviewer,
    NODE_SA,
    () => undefined,
    () => NOW,
  );

  test.each<{ what: string; token: () => Promise<string | undefined>; expected: unknown }>([
    {
      what: "a node agent's projected token: the node it is bound to",
      token: () => issueServiceAccountToken(KEY, NODE_CLAIMS, TTL, NOW),
      expected: { kind: 'node', node: 'node-1' },
    },
    {
      what: "a waypoint's projected token: the pod it is bound to",
      token: () => issueServiceAccountToken(KEY, CLAIMS, TTL, NOW),
      expected: { kind: 'pod', claims: CLAIMS },
    },
    {
      what: 'no token',
      token: async () => undefined,
      expected: { refused: 'a bearer token is required (authorization: Bearer <token>)' },
    },
    {
      what: 'an opaque token (not a JWT)',
      token: async () => 'opaque-node-token-1',
      expected: {
        refused: expect.stringContaining(
          'the API server did not authenticate the token: ServiceAccount token refused',
        ),
      },
    },
    {
      what: 'an expired token',
      token: () => issueServiceAccountToken(KEY, NODE_CLAIMS, TTL, NOW - 2 * TTL),
      expected: {
        refused:
          'the API server did not authenticate the token: ServiceAccount token refused: the token has expired',
      },
    },
    {
      what: 'a token for another audience',
      token: () => forge({ aud: 'kubernetes' }),
      expected: { refused: expect.stringContaining('its "aud" claim is not this cluster\'s') },
    },
    {
      what: "another cluster's token",
      token: () => issueServiceAccountToken(OTHER_KEY, NODE_CLAIMS, TTL, NOW),
      expected: {
        refused:
          'the API server did not authenticate the token: ServiceAccount token refused: the token is not signed by this cluster',
      },
    },
  ])('$what', async ({ token, expected }) => {
    expect(await callers.authenticate(await token())).toEqual(expected);
  });

  test('a review is asked once per token and kept briefly; a refusal is not kept', async () => {
    let asked = 0;
    let now = NOW;
    const counting: TokenReviewer = {
      review: (t, a) => {
        asked++;
        return reviewServiceAccountToken(KEY, t, a, NOW);
      },
    };
    const c = new Callers(
      counting,
      NODE_SA,
      () => undefined,
      () => now,
    );
    const token = await issueServiceAccountToken(KEY, NODE_CLAIMS, TTL, NOW);
    await c.authenticate(token);
    await c.authenticate(token);
    expect(asked).toBe(1);
    now += REVIEW_CACHE_SECONDS + 1;
    await c.authenticate(token);
    expect(asked).toBe(2);
    await c.authenticate('bad.bad.bad');
    await c.authenticate('bad.bad.bad');
    expect(asked).toBe(4);
  });

  test('an API server that cannot be reached refuses the call with the reason', async () => {
    const down: TokenReviewer = {
      review: () => Promise.reject(new Error('connect ECONNREFUSED 172.18.0.1:6443')),
    };
    const c = new Callers(
      down,
      NODE_SA,
      () => undefined,
      () => NOW,
    );
    expect(await c.authenticate('a.b.c')).toEqual({
      refused: 'the token could not be reviewed: connect ECONNREFUSED 172.18.0.1:6443',
    });
  });
});

/** TokenReview statuses shaped as kube-apiserver 1.32 returns them for projected tokens. */
function review(over: {
  username?: string;
  node?: string | null;
  pod?: string;
  podUid?: string | null;
  authenticated?: boolean;
  audiences?: string[];
  error?: string;
}): TokenReviewStatus {
  const extra: Record<string, string[]> = {
    'authentication.kubernetes.io/credential-id': ['JTI=8a7f2c1e-4b9d-4f0e-9a51-3c2d1e0f9b8a'],
    [EXTRA_POD_NAME]: [over.pod ?? 'ambit-node-x7k2p'],
  };
  if (over.podUid !== null) extra[EXTRA_POD_UID] = [over.podUid ?? 'uid-ambit-node-x7k2p'];
  if (over.node !== null) {
    extra[EXTRA_NODE_NAME] = [over.node ?? 'node-1'];
    extra['authentication.kubernetes.io/node-uid'] = ['5e1d2c3b-a4f5-4e6d-8c7b-9a0f1e2d3c4b'];
  }
  if (over.authenticated === false)
    return {
      authenticated: false,
      error: over.error ?? '[invalid bearer token, token has been invalidated]',
      audiences: ['ambit-ca'],
    };
  return {
    authenticated: true,
    user: {
      username: over.username ?? 'system:serviceaccount:ambit-system:ambit-node',
      uid: 'c0a8f1d2-3b4e-4f5a-8b6c-7d8e9f0a1b2c',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:ambit-system', 'system:authenticated'],
      extra,
    },
    audiences: over.audiences ?? ['ambit-ca'],
  };
}

describe('principalFromReview: who a TokenReview says the caller is', () => {
  const agentPod = snapPod('ambit-node-x7k2p', {
    namespace: 'ambit-system',
    uid: 'uid-ambit-node-x7k2p',
    node: 'node-1',
  });
  const pods = new Map([[`ambit-system/ambit-node-x7k2p`, agentPod]]);
  const podOf = (ns: string, name: string): ClusterPod | undefined => pods.get(`${ns}/${name}`);
  test.each<{ what: string; status: TokenReviewStatus; known?: boolean; expected: unknown }>([
    {
      what: 'a node agent with node-name in the review: that node',
      status: review({}),
      expected: { kind: 'node', node: 'node-1' },
    },
    {
      what: 'a node agent without node-name (Kubernetes before 1.30): the node its pod runs on',
      status: review({ node: null }),
      expected: { kind: 'node', node: 'node-1' },
    },
    {
      what: 'a node agent without node-name whose pod is not known yet: refused',
      status: review({ node: null }),
      known: false,
      expected: {
        refused:
          'cannot tell which node ambit-system/ambit-node-x7k2p is on (no node in the token, pod unknown)',
      },
    },
    {
      what: 'a token whose pod UID is not the live pod’s (the pod was recreated): refused',
      status: review({ podUid: 'uid-of-an-older-pod' }),
      expected: {
        refused: 'pod ambit-system/ambit-node-x7k2p is not the pod the token was issued to (uid differs)',
      },
    },
    {
      what: 'node-name and the pod’s node disagree: refused',
      status: review({ node: 'node-2' }),
      expected: { refused: 'pod ambit-system/ambit-node-x7k2p runs on node-1, not node-2' },
    },
    {
      what: 'authenticated: false: refused with the API server’s reason',
      status: review({ authenticated: false }),
      expected: {
        refused:
          'the API server did not authenticate the token: [invalid bearer token, token has been invalidated]',
      },
    },
    {
      what: 'a user that is not a ServiceAccount: refused',
      status: review({ username: 'kubernetes-admin' }),
      expected: { refused: 'kubernetes-admin is not a ServiceAccount' },
    },
    {
      what: 'a token for another audience: refused',
      status: review({ audiences: ['https://kubernetes.default.svc'] }),
      expected: {
        refused: 'the token is not for the audience ambit-ca (it is for https://kubernetes.default.svc)',
      },
    },
    {
      what: 'a token not bound to a pod (a legacy Secret token): refused',
      status: review({ podUid: null }),
      expected: {
        refused: 'the token of ambit-system/ambit-node is not bound to a pod (use a projected token)',
      },
    },
    {
      what: 'another ServiceAccount (a wrong one for a node): a pod principal, which the CA then limits to its own identity',
      status: review({ username: 'system:serviceaccount:shop:web', pod: 'web-1', podUid: 'uid-web-1' }),
      expected: {
        kind: 'pod',
        claims: {
          namespace: 'shop',
          serviceAccount: 'web',
          pod: 'web-1',
          podUid: 'uid-web-1',
          node: 'node-1',
        },
      },
    },
  ])('$what', ({ status, known = true, expected }) => {
    expect(principalFromReview(status, NODE_SA, known ? podOf : () => undefined)).toEqual(expected);
  });
});

describe('a wrong ServiceAccount gets nothing', () => {
  test('an application pod’s token does not speak for its node, and as a pod it is refused (only waypoints are)', () => {
    const webPod = snapPod('web-1', { uid: 'uid-web-1', serviceAccount: 'web', node: 'node-1' });
    const p = principalFromReview(
      review({ username: 'system:serviceaccount:shop:web', pod: 'web-1', podUid: 'uid-web-1' }),
      NODE_SA,
      () => webPod,
    );
    expect(p).toMatchObject({ kind: 'pod' });
    if (!('kind' in p) || p.kind !== 'pod') throw new Error('not a pod principal');
    expect(podPrincipalProblem(p.claims, webPod)).toBe('pod shop/web-1 is not a waypoint pod');
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
