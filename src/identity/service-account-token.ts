import { errors, jwtVerify, SignJWT } from 'jose';
import { AmbitError, ErrorCode } from '../errors.js';
import {
  EXTRA_NODE_NAME,
  EXTRA_POD_NAME,
  EXTRA_POD_UID,
  type TokenReviewStatus,
} from '../kube/token-review.js';

/*
 * ServiceAccount tokens, shaped like the kubelet's projected tokens (a JWT whose subject is
 * `system:serviceaccount:<ns>:<sa>`, bound to one pod and node, for one audience). Node agents and
 * waypoints prove with one who they are; the control plane asks the API server (TokenReview) and never
 * sees a signing key. A local cluster signs its tokens with its own key (HS256), and its API server
 * answers TokenReviews with `reviewServiceAccountToken`, shaped as kube-apiserver answers them.
 */

/** The audience of the tokens that callers of the control plane's CA present. */
export const TOKEN_AUDIENCE = 'ambit-ca';
const ISSUER = 'ambit-local';
const SUBJECT = /^system:serviceaccount:([^:]+):([^:]+)$/;

/** Who a token says its bearer is: a ServiceAccount, in one pod, on one node. */
export interface ServiceAccountClaims {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly pod: string;
  readonly podUid: string;
  readonly node: string;
}

/** A JWT for `c`, valid `ttlSeconds` from `nowSeconds`. */
export async function issueServiceAccountToken(
  key: Uint8Array,
  c: ServiceAccountClaims,
  ttlSeconds: number,
  nowSeconds: number,
): Promise<string> {
  return new SignJWT({
    'kubernetes.io': {
      namespace: c.namespace,
      pod: { name: c.pod, uid: c.podUid },
      node: { name: c.node },
      serviceaccount: { name: c.serviceAccount },
    },
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setSubject(`system:serviceaccount:${c.namespace}:${c.serviceAccount}`)
    .setAudience(TOKEN_AUDIENCE)
    .setIssuedAt(nowSeconds)
    .setNotBefore(nowSeconds)
    .setExpirationTime(nowSeconds + ttlSeconds)
    .sign(key);
}

/** Looks like a JWT (three base64url parts), as opposed to an opaque node token. */
export function isJwt(token: string): boolean {
  return /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token);
}

/**
 * Verifies a ServiceAccount token: signature, issuer, audience, lifetime, and the claims a bound
 * token carries. Throws an AmbitError saying what is wrong; never returns partial claims.
 */
export async function verifyServiceAccountToken(
  key: Uint8Array,
  token: string,
  nowSeconds: number,
): Promise<ServiceAccountClaims> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, key, {
      issuer: ISSUER,
      audience: TOKEN_AUDIENCE,
      algorithms: ['HS256'],
      requiredClaims: ['exp', 'iat', 'sub'],
      currentDate: new Date(nowSeconds * 1000),
    }));
  } catch (err) {
    const why =
      err instanceof errors.JWTExpired
        ? 'the token has expired'
        : err instanceof errors.JWSSignatureVerificationFailed
          ? 'the token is not signed by this cluster'
          : err instanceof errors.JWTClaimValidationFailed
            ? err.claim === 'nbf'
              ? 'the token is not valid yet (clock skew?)'
              : err.reason === 'missing'
                ? `the token has no "${err.claim}" claim`
                : `its "${err.claim}" claim is not this cluster's (${err.reason})`
            : err instanceof errors.JOSEAlgNotAllowed
              ? 'the token is signed with an algorithm other than HS256'
              : `the token is malformed (${(err as Error).message})`;
    throw new AmbitError(ErrorCode.CERTIFICATE, `ServiceAccount token refused: ${why}`);
  }
  const sub = SUBJECT.exec(String(payload.sub ?? ''));
  const k = payload['kubernetes.io'] as
    | {
        namespace?: unknown;
        pod?: { name?: unknown; uid?: unknown };
        node?: { name?: unknown };
        serviceaccount?: { name?: unknown };
      }
    | undefined;
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const namespace = str(k?.namespace);
  const serviceAccount = str(k?.serviceaccount?.name);
  const pod = str(k?.pod?.name);
  const podUid = str(k?.pod?.uid);
  const node = str(k?.node?.name);
  if (
    sub === null ||
    namespace === undefined ||
    serviceAccount === undefined ||
    pod === undefined ||
    podUid === undefined ||
    node === undefined ||
    sub[1] !== namespace ||
    sub[2] !== serviceAccount
  ) {
    throw new AmbitError(
      ErrorCode.CERTIFICATE,
      'ServiceAccount token refused: it is not bound to a pod and node, or its subject does not match its claims',
    );
  }
  return { namespace, serviceAccount, pod, podUid, node };
}

/**
 * A TokenReview's status for a token, as kube-apiserver gives it: authenticated with the user, its
 * groups and the bound pod and node as extra fields, or not authenticated with the reason. A token is
 * valid only for the audiences asked for that it was issued to.
 */
export async function reviewServiceAccountToken(
  key: Uint8Array,
  token: string,
  audiences: readonly string[],
  nowSeconds: number,
): Promise<TokenReviewStatus> {
  if (audiences.length > 0 && !audiences.includes(TOKEN_AUDIENCE))
    return { authenticated: false, error: `the token is for ${TOKEN_AUDIENCE}, not ${audiences.join(', ')}` };
  try {
    const c = await verifyServiceAccountToken(key, token, nowSeconds);
    return {
      authenticated: true,
      user: {
        username: `system:serviceaccount:${c.namespace}:${c.serviceAccount}`,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${c.namespace}`, 'system:authenticated'],
        extra: { [EXTRA_POD_NAME]: [c.pod], [EXTRA_POD_UID]: [c.podUid], [EXTRA_NODE_NAME]: [c.node] },
      },
      audiences: [TOKEN_AUDIENCE],
    };
  } catch (err) {
    return { authenticated: false, error: (err as Error).message };
  }
}
