import type { ClusterPod } from '../cluster/resources.js';
import { describeError } from '../errors.js';
import { GATEWAY_NAME_LABEL } from '../gateway-api/waypoint.js';
import { type ServiceAccountClaims, TOKEN_AUDIENCE } from '../identity/service-account-token.js';
import type { SpiffeId } from '../identity/spiffe-id.js';
import {
  EXTRA_NODE_NAME,
  EXTRA_POD_NAME,
  EXTRA_POD_UID,
  type TokenReviewer,
  type TokenReviewStatus,
} from '../kube/token-review.js';

/** Who called the control plane: a node (its agent and proxy), or a pod with its ServiceAccount token. */
export type Principal =
  | { readonly kind: 'node'; readonly node: string }
  | { readonly kind: 'pod'; readonly claims: ServiceAccountClaims };

export function describePrincipal(p: Principal): string {
  return p.kind === 'node'
    ? `node ${p.node}`
    : `pod ${p.claims.namespace}/${p.claims.pod} (ServiceAccount ${p.claims.serviceAccount})`;
}

/** Who may act for a node: the node agent's ServiceAccount (the DaemonSet's pods run as it). */
export interface NodeServiceAccount {
  readonly namespace: string;
  readonly name: string;
}

const SA_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;

/**
 * Who a TokenReview says the caller is. A node agent's token (its ServiceAccount) speaks for the node
 * the review names (`authentication.kubernetes.io/node-name`), or else for the node its pod runs on; any
 * other ServiceAccount's token speaks for the pod it is bound to (what podPrincipalProblem then checks).
 * A token the API server did not authenticate, a user that is not a ServiceAccount, a token not bound to
 * a pod, or one whose pod UID is not the live pod's, is refused. Pure.
 */
export function principalFromReview(
  status: TokenReviewStatus,
  nodeServiceAccount: NodeServiceAccount,
  podOf: (namespace: string, name: string) => ClusterPod | undefined,
): Principal | { readonly refused: string } {
  if (status.authenticated !== true)
    return {
      refused: `the API server did not authenticate the token${status.error ? `: ${status.error}` : ''}`,
    };
  const username = status.user?.username ?? '';
  const sa = SA_USER.exec(username);
  if (sa === null) return { refused: `${username || 'the caller'} is not a ServiceAccount` };
  const [, namespace, serviceAccount] = sa as unknown as [string, string, string];
  if (status.audiences !== undefined && !status.audiences.includes(TOKEN_AUDIENCE))
    return {
      refused: `the token is not for the audience ${TOKEN_AUDIENCE} (it is for ${status.audiences.join(', ')})`,
    };
  const extra = status.user?.extra ?? {};
  const podName = extra[EXTRA_POD_NAME]?.[0];
  const podUid = extra[EXTRA_POD_UID]?.[0];
  const nodeName = extra[EXTRA_NODE_NAME]?.[0];
  if (podName === undefined || podUid === undefined)
    return {
      refused: `the token of ${namespace}/${serviceAccount} is not bound to a pod (use a projected token)`,
    };
  const pod = podOf(namespace, podName);
  if (pod !== undefined && pod.uid !== podUid)
    return { refused: `pod ${namespace}/${podName} is not the pod the token was issued to (uid differs)` };
  const node = nodeName ?? pod?.node;
  if (namespace === nodeServiceAccount.namespace && serviceAccount === nodeServiceAccount.name) {
    if (node === undefined || node === '')
      return {
        refused: `cannot tell which node ${namespace}/${podName} is on (no node in the token, pod unknown)`,
      };
    if (pod !== undefined && nodeName !== undefined && pod.node !== nodeName)
      return { refused: `pod ${namespace}/${podName} runs on ${pod.node}, not ${nodeName}` };
    return { kind: 'node', node };
  }
  return { kind: 'pod', claims: { namespace, serviceAccount, pod: podName, podUid, node: node ?? '' } };
}

/** How long a review is trusted: kube-apiserver's own cache keeps successes for 10 s; so does this. */
export const REVIEW_CACHE_SECONDS = 10;

/**
 * Authenticates bearer tokens with the API server (TokenReview), caching each answer briefly so that a
 * burst of certificate requests from one node costs one review.
 */
export class Callers {
  private readonly cache = new Map<string, { readonly until: number; readonly status: TokenReviewStatus }>();

  constructor(
    private readonly reviewer: TokenReviewer,
    private readonly nodeServiceAccount: NodeServiceAccount,
    private readonly podOf: (namespace: string, name: string) => ClusterPod | undefined,
    private readonly now: () => number = () => Date.now() / 1000,
  ) {}

  async authenticate(token: string | undefined): Promise<Principal | { readonly refused: string }> {
    if (token === undefined || token === '')
      return { refused: 'a bearer token is required (authorization: Bearer <token>)' };
    const now = this.now();
    let status = this.cache.get(token);
    if (status === undefined || status.until < now) {
      let answer: TokenReviewStatus;
      try {
        answer = await this.reviewer.review(token, [TOKEN_AUDIENCE]);
      } catch (err) {
        return { refused: `the token could not be reviewed: ${describeError(err)}` };
      }
      status = { until: now + REVIEW_CACHE_SECONDS, status: answer };
      if (answer.authenticated === true) this.cache.set(token, status);
      if (this.cache.size > 10_000) this.cache.clear();
    }
    return principalFromReview(status.status, this.nodeServiceAccount, this.podOf);
  }
}

/**
 * Whether a pod's token still speaks for a live pod: the pod it is bound to exists with that uid,
 * runs as that ServiceAccount on that node, and has not ended (a token outlives its pod otherwise).
 */
export function podPrincipalProblem(
  claims: ServiceAccountClaims,
  pod: ClusterPod | undefined,
): string | undefined {
  const name = `${claims.namespace}/${claims.pod}`;
  if (pod === undefined) return `pod ${name} does not exist`;
  // Only waypoints talk to the control plane as pods (an application pod's token gets nothing).
  if (pod.labels[GATEWAY_NAME_LABEL] === undefined) return `pod ${name} is not a waypoint pod`;
  if (pod.uid !== claims.podUid) return `pod ${name} is not the pod the token was issued to (uid differs)`;
  if (pod.serviceAccount !== claims.serviceAccount)
    return `pod ${name} runs as ${pod.serviceAccount}, not ${claims.serviceAccount}`;
  if (pod.node !== claims.node) return `pod ${name} runs on ${pod.node}, not ${claims.node}`;
  if (pod.phase === 'Succeeded' || pod.phase === 'Failed') return `pod ${name} has ended`;
  return undefined;
}

/** Whether a pod principal may have `identity`: only its own ServiceAccount's, in our trust domain. */
export function authorizePodIdentity(
  claims: ServiceAccountClaims,
  identity: SpiffeId,
  trustDomain: string,
): string | undefined {
  if (identity.trustDomain !== trustDomain)
    return `trust domain ${identity.trustDomain} is not ${trustDomain}`;
  if (identity.namespace !== claims.namespace || identity.serviceAccount !== claims.serviceAccount)
    return `a pod running as ${claims.namespace}/${claims.serviceAccount} may only have its own identity`;
  return undefined;
}

/**
 * Whether `node` may obtain a certificate for `identity`: only for service accounts of pods that are
 * scheduled on that node (and alive), in our trust domain. `runningAs` are the pods that run as the
 * identity's service account. Returns the reason for a refusal.
 */
export function authorizeIdentity(
  runningAs: readonly ClusterPod[],
  node: string,
  identity: SpiffeId,
  trustDomain: string,
  /** Whether the ServiceAccount exists (undefined: not known), for a refusal that says why. */
  serviceAccountExists?: boolean,
): string | undefined {
  if (identity.trustDomain !== trustDomain)
    return `trust domain ${identity.trustDomain} is not ${trustDomain}`;
  const mine = runningAs.filter(
    (p) => p.namespace === identity.namespace && p.serviceAccount === identity.serviceAccount,
  );
  const onNode = mine.filter((p) => p.node === node);
  if (onNode.length === 0) {
    const elsewhere = mine[0];
    return elsewhere === undefined
      ? `no pod runs as ${identity.namespace}/${identity.serviceAccount}${serviceAccountExists === false ? ` (there is no ServiceAccount ${identity.namespace}/${identity.serviceAccount})` : ''}`
      : `no pod on ${node} runs as ${identity.namespace}/${identity.serviceAccount} (it runs on ${elsewhere.node})`;
  }
  if (onNode.every((p) => p.phase === 'Succeeded' || p.phase === 'Failed')) {
    return `the pods of ${identity.namespace}/${identity.serviceAccount} on ${node} have ended`;
  }
  return undefined;
}
