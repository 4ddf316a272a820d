import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ApiResource, apiVersionOf } from '../../kube/api-resources.js';
import { ApiStatusError, metaOf, status, wantsTable } from './api-status.js';
import type { Json, Selector } from './selectors.js';
import type { ApiStore } from './store.js';
import { toTable } from './tables.js';

/** What a watch may hold for a client that does not read before it is ended. */
const WATCH_BUFFER_BYTES = 16 * 1024 * 1024;

/**
 * A watch: from a resourceVersion (the history replays what came after it), or from now with the
 * current state first as ADDED events; bookmarks when asked; a 410 in the stream for a version older
 * than the history; ended at its timeout, or early for a client that stops reading.
 */
export function serveWatch(
  store: ApiStore,
  req: IncomingMessage,
  res: ServerResponse,
  t: { readonly resource: ApiResource; readonly namespace?: string; readonly name?: string },
  q: URLSearchParams,
  selector: Selector,
  bookmarkMs: number,
): void {
  const asked = q.get('resourceVersion') ?? '';
  // No resourceVersion (or "0"): the current state first, as ADDED events, then what follows.
  const fromNow = asked === '' || asked === '0';
  const from = fromNow ? store.resourceVersion : Number(asked);
  if (!Number.isInteger(from) || from < 0)
    throw new ApiStatusError(400, 'BadRequest', `resourceVersion ${asked} is not a resource version`);
  if (from > store.resourceVersion)
    throw new ApiStatusError(
      504,
      'Timeout',
      `Too large resource version: ${from}, current: ${store.resourceVersion}`,
    );
  const nameSelector = t.name;
  const matches =
    nameSelector === undefined ? selector : (o: Json) => metaOf(o).name === nameSelector && selector(o);
  const table = wantsTable(req);
  let closed = false;
  const line = (type: string, object: Json): void => {
    if (closed || res.writableEnded || res.destroyed) return;
    const body =
      table && type !== 'BOOKMARK' && type !== 'ERROR'
        ? toTable(t.resource, [object], String(metaOf(object).resourceVersion))
        : object;
    res.write(`${JSON.stringify({ type, object: body })}\n`);
    // A client that does not read is not buffered for without end: past the bound the watch ends,
    // and the client watches again from the last resourceVersion it saw (the history has the rest).
    if (res.writableLength > WATCH_BUFFER_BYTES) finish();
  };
  let stop: (() => void) | 'expired' = 'expired';
  let ended: NodeJS.Timeout | undefined;
  let bookmarks: NodeJS.Timeout | undefined;
  const finish = (): void => {
    if (closed) return;
    closed = true;
    if (typeof stop === 'function') stop();
    clearTimeout(ended);
    clearInterval(bookmarks);
    res.end();
  };
  res.once('close', finish);
  res.once('error', finish);
  req.once('close', finish);
  // Headers first: the replay of the history writes events as soon as the watch is registered.
  res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
  res.flushHeaders();
  if (fromNow) for (const o of store.list(t.resource, t.namespace, matches)) line('ADDED', o);
  stop = store.watch(
    {
      resource: t.resource,
      ...(t.namespace === undefined ? {} : { namespace: t.namespace }),
      selector: matches,
      from,
    },
    (type, object) => line(type, object),
  );
  if (stop === 'expired') {
    // As the API server does: a 200 whose one event is an ERROR carrying the 410.
    line(
      'ERROR',
      status(
        new ApiStatusError(410, 'Expired', `too old resource version: ${from} (${store.resourceVersion})`),
      ),
    );
    res.end();
    return;
  }
  const timeout = Math.min(Number(q.get('timeoutSeconds') ?? '1800') || 1800, 3600);
  ended = setTimeout(finish, timeout * 1000);
  bookmarks =
    q.get('allowWatchBookmarks') === 'true'
      ? setInterval(
          () =>
            line('BOOKMARK', {
              kind: t.resource.kind,
              apiVersion: apiVersionOf(t.resource),
              metadata: { resourceVersion: String(store.resourceVersion) },
            }),
          bookmarkMs,
        )
      : undefined;
}
