import { readFileSync } from 'node:fs';
import type { ClusterPod } from '../cluster/resources.js';
import { AmbitError, describeError, ErrorCode } from '../errors.js';
import { GATEWAY_NAME_LABEL } from '../gateway-api/waypoint.js';
import {
  isJwt,
  type ServiceAccountClaims,
  verifyServiceAccountToken,
} from '../identity/service-account-token.js';
import type { SpiffeId } from '../identity/spiffe-id.js';

/** Who called the control plane: a node (its agent and proxy), or a pod with its ServiceAccount token. */
export type Principal =
  | { readonly kind: 'node'; readonly node: string }
  | { readonly kind: 'pod'; readonly claims: ServiceAccountClaims };

export function describePrincipal(p: Principal): string {
  return p.kind === 'node'
    ? `node ${p.node}`
    : `pod ${p.claims.namespace}/${p.claims.pod} (ServiceAccount ${p.claims.serviceAccount})`;
}

/**
 * Authenticates bearer tokens: a node token (opaque, from the node tokens file), or a ServiceAccount
 * token (a JWT, checked with the cluster's signing key when the control plane has one). Resolves to
 * the principal, or to the reason the token is refused.
 */
export class Callers {
  constructor(
    private readonly nodes: NodeTokens,
    private readonly serviceAccountKey: Uint8Array | undefined,
    private readonly now: () => number = () => Date.now() / 1000,
  ) {}

  async authenticate(token: string | undefined): Promise<Principal | { readonly refused: string }> {
    if (token === undefined || token === '')
      return { refused: 'a bearer token is required (authorization: Bearer <token>)' };
    const node = this.nodes.node(token);
    if (node !== undefined) return { kind: 'node', node };
    if (!isJwt(token)) return { refused: 'the token is not a node token of this cluster' };
    if (this.serviceAccountKey === undefined)
      return { refused: 'ServiceAccount tokens are not accepted: the control plane has no verification key' };
    try {
      return {
        kind: 'pod',
        claims: await verifyServiceAccountToken(this.serviceAccountKey, token, this.now()),
      };
    } catch (err) {
      return { refused: describeError(err) };
    }
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
 * Node credentials: a bearer token per node. In a cluster this will be the node agent's projected
 * ServiceAccount token checked with TokenReview and bound to its pod's node (not built yet); a local
 * cluster issues a random token per node at start (the file maps token -> node name).
 */
export class NodeTokens {
  private constructor(private readonly byToken: ReadonlyMap<string, string>) {}

  static fromFile(path: string): NodeTokens {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new AmbitError(
        ErrorCode.CONFIG_READ,
        `${path}: cannot read the node tokens (${(err as Error).message})`,
        { cause: err },
      );
    }
    const tokens = (parsed as { tokens?: unknown }).tokens;
    if (typeof tokens !== 'object' || tokens === null)
      throw new AmbitError(ErrorCode.CONFIG_INVALID, `${path}: expected {"tokens": {"<token>": "<node>"}}`);
    return new NodeTokens(new Map(Object.entries(tokens as Record<string, string>)));
  }

  static of(entries: Record<string, string>): NodeTokens {
    return new NodeTokens(new Map(Object.entries(entries)));
  }

  /** The node a token belongs to, or undefined for an unknown token. */
  node(token: string | undefined): string | undefined {
    return token === undefined ? undefined : this.byToken.get(token);
  }
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
      ? `no pod runs as ${identity.namespace}/${identity.serviceAccount}`
      : `no pod on ${node} runs as ${identity.namespace}/${identity.serviceAccount} (it runs on ${elsewhere.node})`;
  }
  if (onNode.every((p) => p.phase === 'Succeeded' || p.phase === 'Failed')) {
    return `the pods of ${identity.namespace}/${identity.serviceAccount} on ${node} have ended`;
  }
  return undefined;
}
