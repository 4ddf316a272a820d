import { randomUUID } from 'node:crypto';
import { type ApiResource, resourceOfKind } from '../../kube/api-resources.js';
import type { Json, Selector } from './selectors.js';

export type WatchType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  readonly type: WatchType;
  readonly rv: number;
  readonly resource: ApiResource;
  readonly object: Json;
  /** The object before a MODIFIED (selectors compare both). */
  readonly previous?: Json;
}

interface Stored {
  readonly resource: ApiResource;
  readonly input: string;
  readonly object: Json;
  /** The object as it was set, before the store added its metadata and status. */
  readonly source: Json;
}

function metaOf(o: Json): Json {
  return (o.metadata ?? {}) as Json;
}

export function keyOf(resource: ApiResource, namespace: string, name: string): string {
  return `${resource.plural}.${resource.group}/${resource.namespaced ? namespace : ''}/${name}`;
}

export interface WatchRequest {
  readonly resource: ApiResource;
  readonly namespace?: string;
  readonly selector: Selector;
  /** Deliver events after this resourceVersion. */
  readonly from: number;
}

/**
 * The objects local mode's API server serves, with resourceVersions: one counter for the whole store
 * (etcd's revision), a uid and creationTimestamp per object, and a bounded history of changes that a
 * watch resumes from; a watch from before the history answers 410 Gone, as an API server's does.
 */
export class ApiStore {
  private revision = 1;
  private readonly objects = new Map<string, Stored>();
  private history: StoreEvent[] = [];
  private readonly subscribers = new Set<(e: StoreEvent) => void>();
  /** Status written through the `status` subresource (a controller's), kept apart from the manifests. */
  private readonly statuses = new Map<string, Json>();
  /** Who owns which fields (server-side apply's managedFields), kept over the object like its status. */
  private readonly managed = new Map<string, readonly Json[]>();

  constructor(private readonly historySize = 4096) {}

  get resourceVersion(): number {
    return this.revision;
  }

  /** Sets every object the cluster holds now; what changed becomes watch events. Unknown kinds are skipped. */
  replaceAll(objects: readonly Json[]): void {
    const seen = new Set<string>();
    for (const o of objects) {
      const resource = resourceOfKind(String(o.kind ?? ''));
      if (resource === undefined) continue;
      const meta = metaOf(o);
      const key = keyOf(resource, String(meta.namespace ?? ''), String(meta.name ?? ''));
      seen.add(key);
      this.put(resource, key, o);
    }
    for (const [key, s] of this.objects) {
      if (seen.has(key)) continue;
      this.objects.delete(key);
      this.statuses.delete(key);
      this.managed.delete(key);
      this.emit({
        type: 'DELETED',
        rv: ++this.revision,
        resource: s.resource,
        object: withRv(s.object, this.revision),
      });
    }
  }

  /** Sets one object (a change the cluster made to it); unknown kinds are skipped. */
  set(o: Json): void {
    const resource = resourceOfKind(String(o.kind ?? ''));
    if (resource === undefined) return;
    const meta = metaOf(o);
    this.put(resource, keyOf(resource, String(meta.namespace ?? ''), String(meta.name ?? '')), o);
  }

  /**
   * Sets an object's status (the `status` subresource): it stays over the object, whatever the
   * manifests say, until the object is deleted. Undefined when the object does not exist.
   */
  setStatus(resource: ApiResource, namespace: string, name: string, status: Json): Json | undefined {
    const key = keyOf(resource, namespace, name);
    const s = this.objects.get(key);
    if (s === undefined) return undefined;
    this.statuses.set(key, status);
    this.put(resource, key, s.source);
    return this.objects.get(key)?.object;
  }

  /** The managedFields of an object ([] when no write through the API has named a manager). */
  managedFields(resource: ApiResource, namespace: string, name: string): readonly Json[] {
    return this.managed.get(keyOf(resource, namespace, name)) ?? [];
  }

  /** Sets an object's managedFields (after a write through the API); nothing when it does not exist. */
  setManagedFields(resource: ApiResource, namespace: string, name: string, entries: readonly Json[]): void {
    const key = keyOf(resource, namespace, name);
    const s = this.objects.get(key);
    if (s === undefined) return;
    if (entries.length === 0) this.managed.delete(key);
    else this.managed.set(key, entries);
    this.put(resource, key, s.source);
  }

  private put(resource: ApiResource, key: string, o: Json): void {
    const status = this.statuses.get(key);
    const managed = this.managed.get(key);
    const input = JSON.stringify([o, status, managed]);
    const old = this.objects.get(key);
    if (old?.input === input) return;
    const meta = metaOf(o);
    const oldMeta = old === undefined ? undefined : metaOf(old.object);
    const rv = ++this.revision;
    const object: Json = {
      ...o,
      ...(status === undefined ? {} : { status }),
      apiVersion: resource.group === '' ? resource.version : `${resource.group}/${resource.version}`,
      metadata: {
        ...meta,
        uid: meta.uid ?? oldMeta?.uid ?? randomUUID(),
        creationTimestamp:
          meta.creationTimestamp ??
          oldMeta?.creationTimestamp ??
          new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        resourceVersion: String(rv),
        ...(managed === undefined ? {} : { managedFields: managed }),
      },
    };
    this.objects.set(key, { resource, input, object, source: o });
    this.emit(
      old === undefined
        ? { type: 'ADDED', rv, resource, object }
        : { type: 'MODIFIED', rv, resource, object, previous: old.object },
    );
  }

  private emit(e: StoreEvent): void {
    this.history.push(e);
    if (this.history.length > this.historySize) this.history = this.history.slice(-this.historySize / 2);
    for (const s of this.subscribers) s(e);
  }

  get(resource: ApiResource, namespace: string, name: string): Json | undefined {
    return this.objects.get(keyOf(resource, namespace, name))?.object;
  }

  list(resource: ApiResource, namespace: string | undefined, selector: Selector): Json[] {
    const out: Json[] = [];
    for (const s of this.objects.values()) {
      if (s.resource !== resource) continue;
      if (namespace !== undefined && resource.namespaced && metaOf(s.object).namespace !== namespace)
        continue;
      if (selector(s.object)) out.push(s.object);
    }
    // Plain code-unit order: continue tokens compare keys the same way (server.ts).
    return out.sort((a, b) => {
      const x = sortKey(a);
      const y = sortKey(b);
      return x < y ? -1 : x > y ? 1 : 0;
    });
  }

  /**
   * Events of one collection after `from`, then live ones, until the returned function is called; or
   * 'expired' when `from` is older than the history kept. An object that stops matching the selector
   * is DELETED for this watch, one that starts matching is ADDED.
   */
  watch(w: WatchRequest, deliver: (type: WatchType, object: Json) => void): (() => void) | 'expired' {
    const oldest = this.history[0]?.rv ?? this.revision + 1;
    if (w.from < this.revision && w.from < oldest - 1) return 'expired';
    const relevant = (e: StoreEvent): void => {
      if (e.resource !== w.resource || e.rv <= w.from) return;
      if (w.namespace !== undefined && w.resource.namespaced && metaOf(e.object).namespace !== w.namespace)
        return;
      const now = w.selector(e.object);
      const before = e.previous === undefined ? false : w.selector(e.previous);
      if (e.type === 'MODIFIED') {
        if (now && before) deliver('MODIFIED', e.object);
        else if (now) deliver('ADDED', e.object);
        else if (before) deliver('DELETED', e.object);
      } else if (now) deliver(e.type, e.object);
    };
    for (const e of this.history) relevant(e);
    this.subscribers.add(relevant);
    return () => this.subscribers.delete(relevant);
  }
}

function withRv(o: Json, rv: number): Json {
  return { ...o, metadata: { ...metaOf(o), resourceVersion: String(rv) } };
}

function sortKey(o: Json): string {
  const m = metaOf(o);
  return `${String(m.namespace ?? '')}/${String(m.name ?? '')}`;
}
