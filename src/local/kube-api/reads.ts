import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ApiResource, apiVersionOf } from '../../kube/api-resources.js';
import { ApiStatusError, metaOf, notFound, wantsTable } from './api-status.js';
import { servePodLog } from './pod-log.js';
import {
  type Json,
  parseFieldSelector,
  parseLabelSelector,
  type Selector,
  SelectorError,
} from './selectors.js';
import type { ApiStore } from './store.js';
import { toTable } from './tables.js';
import { serveWatch } from './watch.js';

/**
 * Local mode's API reads: get (and the `scale` and `log` subresources), list (label and field
 * selectors, pages) and watch, answered from the ApiStore.
 */

export interface ReadDeps {
  readonly store: ApiStore;
  /** How often a watch that asked for them gets a BOOKMARK. */
  readonly bookmarkMs?: number;
  /** Where a container's output is (`kubectl logs`), when the cluster keeps it. */
  readonly containerLog?: (namespace: string, pod: string, container: string) => string;
}

export interface Target {
  readonly resource: ApiResource;
  readonly namespace?: string;
  readonly name?: string;
  readonly subresource?: string;
}

/** The Scale of a Deployment, as its `scale` subresource shows it. */
export function scaleOf(d: Json): Json {
  const m = metaOf(d);
  const spec = (d.spec ?? {}) as Json;
  const st = (d.status ?? {}) as Json;
  const selector = ((spec.selector as Json | undefined)?.matchLabels ?? {}) as Record<string, string>;
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      creationTimestamp: m.creationTimestamp,
    },
    spec: { replicas: spec.replicas ?? 1 },
    status: {
      replicas: st.replicas ?? 0,
      selector: Object.entries(selector)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    },
  };
}

/** The GET handler: `send` writes a JSON answer. */
export function createReader(
  d: ReadDeps,
  send: (res: ServerResponse, code: number, body: unknown) => void,
): (req: IncomingMessage, res: ServerResponse, t: Target, q: URLSearchParams) => void {
  const selectorOf = (q: URLSearchParams): Selector => {
    try {
      const label = q.get('labelSelector');
      const fields = q.get('fieldSelector');
      const l = label === null || label === '' ? undefined : parseLabelSelector(label);
      const f = fields === null || fields === '' ? undefined : parseFieldSelector(fields);
      return (o) => (l === undefined || l(o)) && (f === undefined || f(o));
    } catch (err) {
      if (err instanceof SelectorError) throw new ApiStatusError(400, 'BadRequest', err.message);
      throw err;
    }
  };

  return (req: IncomingMessage, res: ServerResponse, t: Target, q: URLSearchParams): void => {
    if (q.get('watch') === 'true' || q.get('watch') === '1') {
      serveWatch(d.store, req, res, t, q, selectorOf(q), d.bookmarkMs ?? 15_000);
      return;
    }
    const rv = String(d.store.resourceVersion);
    if (t.name !== undefined) {
      const obj = d.store.get(t.resource, t.namespace ?? '', t.name);
      if (obj === undefined) throw notFound(t.resource, t.name);
      if (t.subresource === 'scale' && t.resource.kind === 'Deployment') {
        send(res, 200, scaleOf(obj));
        return;
      }
      if (t.subresource === 'log' && t.resource.kind === 'Pod' && d.containerLog !== undefined) {
        servePodLog(obj, q, req, res, d.containerLog);
        return;
      }
      if (t.subresource !== undefined)
        throw new ApiStatusError(
          404,
          'NotFound',
          `the subresource ${t.subresource} is not served by local mode`,
        );
      send(res, 200, wantsTable(req) ? toTable(t.resource, [obj], rv) : obj);
      return;
    }
    const all = d.store.list(t.resource, t.namespace, selectorOf(q));
    // Pages (limit/continue) of one snapshot: the token names the resourceVersion of the first page and
    // the last object given. The store keeps no old snapshots, so a list that changed between pages
    // answers 410 and the client lists again, as from an API server whose snapshot was compacted.
    const limit = Number(q.get('limit') ?? '0');
    const cont = q.get('continue');
    let start = 0;
    if (cont !== null && cont !== '') {
      let token: { rv?: unknown; after?: unknown };
      try {
        token = JSON.parse(Buffer.from(cont, 'base64url').toString('utf8')) as typeof token;
      } catch {
        throw new ApiStatusError(400, 'BadRequest', 'the continue token is not valid');
      }
      if (String(token.rv) !== rv)
        throw new ApiStatusError(
          410,
          'Expired',
          'the list changed while it was read in pages: list again from the start',
        );
      const after = String(token.after);
      start = all.findIndex((o) => listKey(o) > after);
      if (start < 0) start = all.length;
    }
    const end = Number.isInteger(limit) && limit > 0 ? Math.min(all.length, start + limit) : all.length;
    const items = all.slice(start, end);
    const next =
      end < all.length
        ? {
            continue: Buffer.from(JSON.stringify({ rv, after: listKey(all[end - 1]!) })).toString(
              'base64url',
            ),
            remainingItemCount: all.length - end,
          }
        : {};
    if (wantsTable(req)) {
      send(res, 200, { ...toTable(t.resource, items, rv), metadata: { resourceVersion: rv, ...next } });
      return;
    }
    send(res, 200, {
      kind: `${t.resource.kind}List`,
      apiVersion: apiVersionOf(t.resource),
      metadata: { resourceVersion: rv, ...next },
      items,
    });
  };
}

/** The order lists are given in (namespace/name), which continue tokens resume from. */
function listKey(o: Json): string {
  const m = metaOf(o);
  return `${String(m.namespace ?? '')}/${String(m.name ?? '')}`;
}
