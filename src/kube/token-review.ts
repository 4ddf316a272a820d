import type { KubeClient } from './client.js';

/**
 * `authentication.k8s.io/v1` TokenReview: the API server says whether a bearer token is valid, for which
 * audiences, and whose it is. A projected ServiceAccount token's review carries the pod it is bound to
 * and, since Kubernetes 1.30, the node (`authentication.kubernetes.io/node-name`).
 */
export interface TokenReviewStatus {
  readonly authenticated?: boolean;
  readonly user?: {
    readonly username?: string;
    readonly uid?: string;
    readonly groups?: readonly string[];
    readonly extra?: Readonly<Record<string, readonly string[]>>;
  };
  readonly audiences?: readonly string[];
  readonly error?: string;
}

export const EXTRA_POD_NAME = 'authentication.kubernetes.io/pod-name';
export const EXTRA_POD_UID = 'authentication.kubernetes.io/pod-uid';
export const EXTRA_NODE_NAME = 'authentication.kubernetes.io/node-name';

export interface TokenReviewer {
  review(token: string, audiences: readonly string[]): Promise<TokenReviewStatus>;
}

/** Reviews tokens with the API server (the caller's RBAC needs `create` on tokenreviews: system:auth-delegator). */
export class KubeTokenReviewer implements TokenReviewer {
  constructor(private readonly client: Pick<KubeClient, 'json'>) {}

  async review(token: string, audiences: readonly string[]): Promise<TokenReviewStatus> {
    const answer = (await this.client.json('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, audiences },
    })) as { status?: TokenReviewStatus };
    return answer.status ?? { authenticated: false, error: 'the TokenReview came back without a status' };
  }
}
