import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  issueServiceAccountToken,
  reviewServiceAccountToken,
} from '../../src/identity/service-account-token.js';
import type { TokenReviewer } from '../../src/kube/token-review.js';

/** The node agents' ServiceAccount, as local mode and the control plane's default name it. */
export const NODE_SA = { namespace: 'ambit-system', name: 'ambit-node' };

/** A signing key for a test's ServiceAccount tokens. */
export function signingKey(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

/** The API's TokenReview, as local mode answers it (what the control plane asks in a cluster). */
export function reviewerFor(key: Uint8Array): TokenReviewer {
  return {
    review: (token, audiences) =>
      reviewServiceAccountToken(key, token, audiences, Math.floor(Date.now() / 1000)),
  };
}

/** Writes `token-<suffix>` for each node `node-<suffix>`: its agent pod's projected token. */
export async function writeNodeTokens(
  dir: string,
  key: Uint8Array,
  suffixes: readonly string[],
): Promise<void> {
  for (const n of suffixes) {
    const token = await issueServiceAccountToken(
      key,
      {
        namespace: NODE_SA.namespace,
        serviceAccount: NODE_SA.name,
        pod: `ambit-node-${n}`,
        podUid: `uid-ambit-node-${n}`,
        node: `node-${n}`,
      },
      3600,
      Math.floor(Date.now() / 1000),
    );
    writeFileSync(join(dir, `token-${n}`), `${token}\n`);
  }
}
