import type { IncomingMessage } from 'node:http';
import { setTimeout as sleepFor } from 'node:timers/promises';
import { type BackoffPolicy, backoffDelay } from '../net/backoff.js';
import { type ApiResource, collectionPath } from './api-resources.js';
import { KubeApiError, type KubeClient } from './client.js';

/** An API object as the server sent it. */
export type KubeObject = Readonly<Record<string, unknown>> & {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
  };
};

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ReflectorHandler {
  /** Everything that exists now: the first list, and every re-list (after a 410 Gone). */
  replace(items: readonly KubeObject[]): void;
  /** One change seen on the watch. */
  apply(type: WatchEventType, object: KubeObject): void;
  /** The reflector could not read this time; it keeps trying (this says why, for a log). */
  error(message: string, err: unknown): void;
}

export interface ReflectorOptions {
  readonly client: Pick<KubeClient, 'json' | 'stream'>;
  readonly resource: ApiResource;
  readonly namespace?: string;
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
  /** Objects per list page (`limit`). */
  readonly pageSize?: number;
  /** The server ends each watch after this long (`timeoutSeconds`); the reflector watches again at once. */
  readonly watchTimeoutSeconds?: number;
  /** A watch that sends nothing (not even a bookmark) for this long is taken as dead and reopened. */
  readonly idleTimeoutMs?: number;
  readonly backoff?: BackoffPolicy;
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly random?: () => number;
}

/** client-go's reflector backs off from 800 ms to 30 s; so does this one, jittered. */
export const WATCH_BACKOFF: BackoffPolicy = { initialMs: 800, maxMs: 30_000, jitter: 'equal' };

/** The RBAC rule a refused request needed, as a user would add it to a Role or ClusterRole. */
export function missingRule(resource: ApiResource, verb: string, namespace: string | undefined): string {
  const scope =
    resource.namespaced && namespace !== undefined
      ? `in namespace ${namespace}`
      : 'cluster-wide (a ClusterRole)';
  return `{apiGroups: ["${resource.group}"], resources: ["${resource.plural}"], verbs: ["${verb}"]} ${scope}`;
}

/**
 * List, then watch from the list's resourceVersion, for ever: what client-go's reflector does, and what
 * @kubernetes/client-node's informer fails to do after a dropped connection (kubernetes-client/javascript
 * issues 958 and 1933). Bookmarks move the resourceVersion on; a watch that ends cleanly resumes from it
 * with no duplicate events; a 410 Gone (in the stream or as an answer) re-lists, and the handler's
 * `replace` turns the new list into deletes and adds; every other failure retries with back-off. A 403
 * names the RBAC rule that is missing.
 */
export class Reflector {
  /** The resourceVersion the next watch starts from; undefined means list first. */
  resourceVersion: string | undefined;
  private failures = 0;
  private seen = 0;
  /** The API answered 404 for this kind (delivered as empty). */
  private unserved = false;

  constructor(
    private readonly o: ReflectorOptions,
    private readonly handler: ReflectorHandler,
  ) {}

  private query(extra: Record<string, string>): string {
    const q = new URLSearchParams();
    if (this.o.fieldSelector !== undefined) q.set('fieldSelector', this.o.fieldSelector);
    if (this.o.labelSelector !== undefined) q.set('labelSelector', this.o.labelSelector);
    for (const [k, v] of Object.entries(extra)) q.set(k, v);
    return `${collectionPath(this.o.resource, this.o.namespace)}?${q.toString()}`;
  }

  async run(signal: AbortSignal): Promise<void> {
    const sleep = this.o.sleep ?? ((ms, s) => sleepFor(ms, undefined, { signal: s }));
    while (!signal.aborted) {
      let listing = false;
      try {
        listing = this.resourceVersion === undefined;
        if (listing) await this.list(signal);
        listing = false;
        const started = Date.now();
        const seen = this.seen;
        await this.watch(signal);
        // A watch that ends at once with nothing in it is a server in trouble, not a timeout: back off.
        if (Date.now() - started >= 1000 || this.seen !== seen) continue;
        this.handler.error(`watch ${this.o.resource.plural}: the server ended the watch at once`, undefined);
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof KubeApiError && err.status === 410) {
          this.resourceVersion = undefined; // Too old: list again, from now.
          // A watch that is too old lists again at once; a list whose pages expired (it changed while
          // being read) waits a little first, so that a busy collection is not read in a loop.
          if (!listing) continue;
        } else if (err instanceof KubeApiError && err.status === 404 && listing) {
          // The API does not serve this kind (its CRD is not installed): nothing of it exists, which
          // counts as read; it is asked again with back-off, and appears when the CRD does.
          if (!this.unserved) this.handler.replace([]);
          this.unserved = true;
          this.handler.error(`${err.message} (is the CRD for ${this.o.resource.plural} installed?)`, err);
        } else {
          const verb = this.resourceVersion === undefined ? 'list' : 'watch';
          const message =
            err instanceof KubeApiError && err.status === 403
              ? `${err.message} (needs the RBAC rule ${missingRule(this.o.resource, verb, this.o.namespace)})`
              : err instanceof KubeApiError && err.status === 401
                ? `${err.message} (the token was refused; it is read again before the next try)`
                : (err as Error).message;
          this.handler.error(message, err);
        }
      }
      const delay = backoffDelay(this.failures, this.o.backoff ?? WATCH_BACKOFF, this.o.random);
      this.failures += 1;
      await sleep(delay, signal).catch(() => undefined);
    }
  }

  private async list(signal: AbortSignal): Promise<void> {
    const items: KubeObject[] = [];
    let cont: string | undefined;
    let rv = '';
    for (;;) {
      const page = (await this.o.client.json(
        'GET',
        this.query({
          limit: String(this.o.pageSize ?? 500),
          ...(cont === undefined ? {} : { continue: cont }),
        }),
        undefined,
        signal,
      )) as { items?: unknown; metadata?: { resourceVersion?: unknown; continue?: unknown } };
      if (!Array.isArray(page.items))
        throw new Error(`list ${this.o.resource.plural}: the answer has no items`);
      items.push(...(page.items as KubeObject[]));
      rv = String(page.metadata?.resourceVersion ?? '');
      cont =
        typeof page.metadata?.continue === 'string' && page.metadata.continue !== ''
          ? page.metadata.continue
          : undefined;
      if (cont === undefined) break;
    }
    this.handler.replace(items);
    this.unserved = false;
    this.resourceVersion = rv;
    this.failures = 0;
  }

  private async watch(signal: AbortSignal): Promise<void> {
    const timeout = this.o.watchTimeoutSeconds ?? 300 + Math.floor((this.o.random ?? Math.random)() * 300);
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await this.o.client.stream(
        this.query({
          watch: '1',
          resourceVersion: this.resourceVersion ?? '',
          allowWatchBookmarks: 'true',
          timeoutSeconds: String(timeout),
        }),
        ac.signal,
      );
      await this.read(res, ac, this.o.idleTimeoutMs ?? (timeout + 60) * 1000);
    } finally {
      signal.removeEventListener('abort', onAbort);
      ac.abort();
    }
  }

  /** Reads watch events until the stream ends; throws on a dead or failed stream. */
  private read(res: IncomingMessage, ac: AbortController, idleMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      res.setEncoding('utf8'); // A multi-byte character split across chunks stays whole.
      let buffered = '';
      let idle = setTimeout(
        () => fail(new Error(`watch ${this.o.resource.plural}: nothing received for ${idleMs / 1000} s`)),
        idleMs,
      );
      let done = false;
      const fail = (err: unknown): void => {
        if (done) return;
        done = true;
        clearTimeout(idle);
        ac.abort();
        reject(err);
      };
      res.on('data', (chunk: string) => {
        if (done) return;
        clearTimeout(idle);
        idle = setTimeout(
          () => fail(new Error(`watch ${this.o.resource.plural}: nothing received for ${idleMs / 1000} s`)),
          idleMs,
        );
        buffered += chunk;
        let nl = buffered.indexOf('\n');
        while (nl >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line !== '') {
            try {
              this.event(line);
            } catch (err) {
              fail(err);
              return;
            }
          }
          nl = buffered.indexOf('\n');
        }
      });
      res.once('end', () => {
        if (done) return;
        done = true;
        clearTimeout(idle);
        if (buffered.trim() !== '') {
          try {
            this.event(buffered.trim());
          } catch (err) {
            reject(err);
            return;
          }
        }
        resolve();
      });
      res.once('error', fail);
      res.once('aborted', () => fail(new Error(`watch ${this.o.resource.plural}: the connection was cut`)));
      const socket = res.socket;
      const onClose = (): void => {
        if (!res.complete) fail(new Error(`watch ${this.o.resource.plural}: the connection was cut`));
      };
      // Keep-alive sockets are reused by the next request: the listener goes when this watch settles.
      socket?.once('close', onClose);
      const settle = (): void => {
        socket?.removeListener('close', onClose);
      };
      res.once('end', settle);
      res.once('close', settle);
    });
  }

  private event(line: string): void {
    const e = JSON.parse(line) as {
      type?: unknown;
      object?: KubeObject & { code?: unknown; reason?: unknown; message?: unknown };
    };
    const obj = e.object;
    if (obj === undefined) throw new Error(`watch ${this.o.resource.plural}: an event without an object`);
    if (e.type === 'ERROR') {
      const code = typeof obj.code === 'number' ? obj.code : 500;
      throw new KubeApiError(
        code,
        String(obj.reason ?? ''),
        `watch ${this.o.resource.plural}: ${code} ${String(obj.message ?? '')}`,
      );
    }
    const rv = obj.metadata?.resourceVersion;
    this.seen += 1;
    // Anything the server sends, a bookmark included, shows the watch is healthy: back-off starts over.
    this.failures = 0;
    if (e.type === 'BOOKMARK') {
      if (typeof rv === 'string' && rv !== '') this.resourceVersion = rv;
      return;
    }
    if (e.type !== 'ADDED' && e.type !== 'MODIFIED' && e.type !== 'DELETED')
      throw new Error(`watch ${this.o.resource.plural}: unknown event type ${String(e.type)}`);
    this.handler.apply(e.type, obj);
    if (typeof rv === 'string' && rv !== '') this.resourceVersion = rv;
    this.failures = 0;
  }
}
