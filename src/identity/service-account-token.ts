import { errors, jwtVerify, SignJWT } from 'jose';
import { AmbitError, ErrorCode } from '../errors.js';

/*
 * ServiceAccount tokens, shaped like the kubelet's projected tokens (a JWT whose subject is
 * `system:serviceaccount:<ns>:<sa>`, bound to one pod and node, for one audience). A waypoint proves
 * with one which ServiceAccount it runs as, so that the control plane gives it its own identity's
 * certificate and no other. A local cluster signs them with its own key (HS256) and the control plane
 * verifies them with the same key. On Kubernetes the API server signs them and the control plane will
 * ask it (TokenReview): not built yet (the Kubernetes-API issue), so waypoints cannot authenticate in
 * a real cluster today.
 */

/** The audience every Ambit token is for (the rendered waypoint asks the kubelet for this one). */
export const TOKEN_AUDIENCE = 'ambit';
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
