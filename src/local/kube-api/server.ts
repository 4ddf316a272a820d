import type { IncomingMessage, ServerResponse } from 'node:http';
import { API_RESOURCES, apiVersionOf } from '../../kube/api-resources.js';
import type { TokenReviewStatus } from '../../kube/token-review.js';
import type { Logger } from '../../telemetry/logger.js';
import { ApiStatusError, status } from './api-status.js';
import { discovery, groupsOf } from './discovery.js';
import type { PropagationPolicy } from './garbage-collector.js';
import { openApiDocuments } from './openapi.js';
import { PatchError } from './patch.js';
import { createReader, type Target } from './reads.js';
import type { Json } from './selectors.js';
import type { ApiStore } from './store.js';
import { type ApiPrincipal, type ApiWriter, createWriter, readBody } from './writes.js';

export { ApiStatusError } from './api-status.js';
export type { ApiPrincipal, ApiWriter, WriteRequest } from './writes.js';
export { rbacResource } from './writes.js';

/**
 * Local mode's Kubernetes API server: the subset of the API that the mesh's daemons and kubectl use,
 * answered from the ApiStore (reads and watches) and the ApiWriter (writes go to the manifests folder,
 * the cluster's source of truth, or for objects controllers make to the run folder, and come back
 * through the store). This file routes; reads: reads.ts; writes: writes.ts. Server-side apply and
 * managedFields: server-side-apply.ts; deletes with a
 * propagation policy: garbage-collector.ts. Errors are `Status` objects.
 */

export interface ApiServerDeps {
  readonly store: ApiStore;
  readonly writer?: ApiWriter;
  readonly authenticate: (token: string | undefined) => ApiPrincipal | undefined;
  /** `POST /apis/authentication.k8s.io/v1/tokenreviews`: the review's status for a token. */
  readonly reviewToken?: (token: string, audiences: readonly string[]) => Promise<TokenReviewStatus>;
  readonly log: Logger;
  /** How often a watch that asked for them gets a BOOKMARK. */
  readonly bookmarkMs?: number;
  /** Where a container's output is (`kubectl logs`), when the cluster keeps it. */
  readonly containerLog?: (namespace: string, pod: string, container: string) => string;
  /**
   * Before an object is deleted with `Orphan` or `Foreground` propagation: strips the references to
   * it from its dependents, or deletes them (the garbage collector's part of a delete).
   */
  readonly cascade?: (owner: Json, policy: PropagationPolicy, dryRun: boolean) => Promise<void>;
  /** The time managedFields are stamped with. */
  readonly now?: () => string;
}

/** `/api/v1/namespaces/ns/pods/name/sub` -> what it names; undefined for paths that are not resources. */
export function parseResourcePath(path: string): Target | 'tokenreviews' | undefined {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  let gv: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) {
    gv = parts[1]!;
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    gv = `${parts[1]}/${parts[2]}`;
    rest = parts.slice(3);
  } else return undefined;
  if (gv === 'authentication.k8s.io/v1' && rest.length === 1 && rest[0] === 'tokenreviews')
    return 'tokenreviews';
  const inGroup = API_RESOURCES.filter((r) => apiVersionOf(r) === gv);
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const resource = inGroup.find((r) => r.plural === rest[0]);
  if (resource === undefined) return undefined;
  if (resource.kind === 'Namespace' && namespace === undefined && rest.length >= 2)
    return { resource, name: rest[1]!, ...(rest[2] === undefined ? {} : { subresource: rest[2] }) };
  return {
    resource,
    ...(namespace === undefined ? {} : { namespace }),
    ...(rest[1] === undefined ? {} : { name: rest[1] }),
    ...(rest[2] === undefined ? {} : { subresource: rest[2] }),
  };
}

export function createApiHandler(d: ApiServerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const groups = groupsOf();
  const openapi = openApiDocuments();
  const send = (res: ServerResponse, code: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const read = createReader(d, send);
  const write = createWriter(d, send);

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'https://local');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    void (async () => {
      const token = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const who = d.authenticate(token);
      if (who === undefined) throw new ApiStatusError(401, 'Unauthorized', 'Unauthorized');
      const doc = req.method === 'GET' ? openapi.get(path) : undefined;
      if (doc !== undefined) return send(res, 200, doc);
      const discovered = req.method === 'GET' ? discovery(path, groups) : undefined;
      if (discovered !== undefined) return send(res, 200, discovered);
      const t = parseResourcePath(path);
      if (t === 'tokenreviews') {
        if (req.method !== 'POST' || d.reviewToken === undefined)
          throw new ApiStatusError(405, 'MethodNotAllowed', 'tokenreviews accept POST only');
        const review = (await readBody(req)) as Json | undefined;
        const spec = (review?.spec ?? {}) as Json;
        if (typeof spec.token !== 'string' || spec.token === '')
          throw new ApiStatusError(422, 'Invalid', 'spec.token: Required value');
        const audiences = Array.isArray(spec.audiences) ? spec.audiences.map(String) : [];
        return send(res, 201, {
          kind: 'TokenReview',
          apiVersion: 'authentication.k8s.io/v1',
          metadata: { creationTimestamp: null },
          spec,
          status: await d.reviewToken(spec.token, audiences),
        });
      }
      if (t === undefined)
        throw new ApiStatusError(404, 'NotFound', 'the server could not find the requested resource');
      if (req.method === 'GET') return read(req, res, t, url.searchParams);
      if (req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH' || req.method === 'DELETE')
        return write(req, res, t, who, url.searchParams);
      throw new ApiStatusError(405, 'MethodNotAllowed', `${req.method} is not supported`);
    })().catch((err: unknown) => {
      const e =
        err instanceof ApiStatusError
          ? err
          : err instanceof PatchError
            ? new ApiStatusError(422, 'Invalid', err.message)
            : new ApiStatusError(500, 'InternalError', (err as Error).message);
      if (e.code >= 500) d.log.error({ err, method: req.method, path }, 'API request failed');
      if (res.headersSent) res.end();
      else send(res, e.code, status(e));
    });
  };
}
