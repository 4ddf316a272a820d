import { setMaxListeners } from 'node:events';
import { type ApiResource, resourceOfKind } from '../kube/api-resources.js';
import type { KubeClient } from '../kube/client.js';
import { type KubeObject, Reflector, type ReflectorOptions } from '../kube/reflector.js';
import { parseKubeObject } from './kube-objects.js';
import { type ClusterKind, type ClusterResource, resourceKey } from './resources.js';
import type { ClusterEvent, ClusterFilter, ClusterSource, ClusterWatcher } from './source.js';

/** Every kind a daemon can read, in the order a first sync delivers them (namespaces before pods). */
export const CLUSTER_KINDS: readonly ClusterKind[] = [
  'Namespace',
  'ServiceAccount',
  'Node',
  'Pod',
  'Service',
  'EndpointSlice',
  'AuthorizationPolicy',
  'PeerAuthentication',
  'RequestAuthentication',
  'Gateway',
  'HTTPRoute',
  'GRPCRoute',
  'BackendTrafficPolicy',
];

interface Cached {
  readonly resource: ClusterResource;
  readonly text: string;
}

/**
 * What one kind holds, keyed by Kind/namespace/name, and the events that change it: a re-list is
 * compared with what was there (missing ones are deleted), a watch event with the one it replaces. A
 * pod whose UID changed under the same name is another pod: a delete and an add.
 */
export class KindCache {
  private readonly items = new Map<string, Cached>();

  get size(): number {
    return this.items.size;
  }

  replace(resources: readonly ClusterResource[]): ClusterEvent[] {
    const next = new Set<string>();
    const events: ClusterEvent[] = [];
    for (const r of resources) {
      next.add(resourceKey(r));
      events.push(...this.upsert(r));
    }
    for (const [key, old] of this.items) {
      if (next.has(key)) continue;
      this.items.delete(key);
      events.push({ type: 'deleted', resource: old.resource });
    }
    return events;
  }

  upsert(r: ClusterResource): ClusterEvent[] {
    const key = resourceKey(r);
    const text = JSON.stringify(r);
    const old = this.items.get(key);
    this.items.set(key, { resource: r, text });
    if (old === undefined) return [{ type: 'added', resource: r }];
    if (old.text === text) return [];
    if (r.kind === 'Pod' && old.resource.kind === 'Pod' && old.resource.uid !== r.uid)
      return [
        { type: 'deleted', resource: old.resource },
        { type: 'added', resource: r },
      ];
    return [{ type: 'updated', resource: r, previous: old.resource }];
  }

  remove(key: string): ClusterEvent[] {
    const old = this.items.get(key);
    if (old === undefined) return [];
    this.items.delete(key);
    return [{ type: 'deleted', resource: old.resource }];
  }
}

/** The key a deleted object had, from its metadata alone (it may no longer parse). */
function keyOf(kind: ClusterKind, obj: KubeObject): string {
  const ns = obj.metadata?.namespace ?? '';
  const name = obj.metadata?.name ?? '';
  return ns === '' ? `${kind}/${name}` : `${kind}/${ns}/${name}`;
}

export interface KubeSourceOptions {
  /** Reflector settings for tests (back-off, sleeps, timeouts). */
  readonly reflector?: Partial<Omit<ReflectorOptions, 'client' | 'resource'>>;
}

/**
 * The cluster from a Kubernetes API server, in both modes: the real one in a cluster, the local
 * daemon's in local mode. One reflector (list, then watch) per kind; a node agent's pods are only its
 * node's (`fieldSelector=spec.nodeName=<node>`). Objects go through the one parser, parseKubeObject.
 */
export class KubeClusterSource implements ClusterSource {
  readonly description: string;

  constructor(
    private readonly client: Pick<KubeClient, 'json' | 'stream'> & {
      readonly target: { readonly server: string };
    },
    private readonly filter: ClusterFilter = {},
    private readonly opts: KubeSourceOptions = {},
  ) {
    this.description = `Kubernetes API ${client.target.server}`;
  }

  watch(watcher: ClusterWatcher, outer: AbortSignal): void {
    // One signal for this source's reflectors, each of which listens on it while it watches.
    const ac = new AbortController();
    setMaxListeners(4 * CLUSTER_KINDS.length, ac.signal);
    if (outer.aborted) ac.abort();
    else outer.addEventListener('abort', () => ac.abort(), { once: true });
    const signal = ac.signal;
    const kinds = CLUSTER_KINDS.filter(
      (k) => this.filter.kinds === undefined || this.filter.kinds.includes(k),
    );
    const pending = new Set(kinds);
    for (const kind of kinds) {
      const resource: ApiResource | undefined = resourceOfKind(kind);
      if (resource === undefined) throw new Error(`no API resource for ${kind}`);
      const cache = new KindCache();
      const parse = (obj: KubeObject): ClusterResource | undefined => {
        const p = parseKubeObject(obj);
        if ('problem' in p) watcher.onError?.(`${resource.plural}: ${p.problem}`);
        return 'resource' in p && p.resource.kind === kind ? p.resource : undefined;
      };
      const emit = (events: readonly ClusterEvent[]): void => {
        if (events.length > 0 && !signal.aborted) watcher.onEvents(events);
      };
      const reflector = new Reflector(
        {
          ...this.opts.reflector,
          client: this.client,
          resource,
          ...(kind === 'Pod' && this.filter.node !== undefined
            ? { fieldSelector: `spec.nodeName=${this.filter.node}` }
            : {}),
        },
        {
          replace: (items) => {
            emit(cache.replace(items.map(parse).filter((r): r is ClusterResource => r !== undefined)));
            if (pending.delete(kind) && pending.size === 0) watcher.onSynced();
          },
          apply: (type, obj) => {
            if (type === 'DELETED') {
              emit(cache.remove(keyOf(kind, obj)));
              return;
            }
            const r = parse(obj);
            // An object that no longer parses is gone for the daemons (its problem was reported).
            emit(r === undefined ? cache.remove(keyOf(kind, obj)) : cache.upsert(r));
          },
          error: (message) => watcher.onError?.(message),
        },
      );
      void reflector.run(signal);
    }
  }
}
