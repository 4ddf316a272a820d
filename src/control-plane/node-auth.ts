import { readFileSync } from 'node:fs';
import type { ClusterPod } from '../cluster/resources.js';
import { AmbitError, ErrorCode } from '../errors.js';
import type { SpiffeId } from '../identity/spiffe-id.js';

/**
 * Node credentials: a bearer token per node. In a cluster this is the node agent's projected
 * ServiceAccount token checked with TokenReview and bound to its pod's node; a local cluster issues a
 * random token per node at start (the file maps token -> node name).
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
