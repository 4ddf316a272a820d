import { readFileSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { ResourceDiffer } from './diff.js';
import { parseKubeObject } from './kube-objects.js';
import type { ClusterResource } from './resources.js';
import { type ClusterFilter, type ClusterSource, type ClusterWatcher, passes } from './source.js';

/**
 * The local cluster's API: the local daemon publishes the cluster as a Kubernetes `List` of real-shaped
 * objects (Namespaces, Nodes, Pods, Services, EndpointSlices and mesh config) in one file, replaced
 * atomically on every change. This source re-reads it when it changes and emits per-resource events,
 * as an informer would after a re-list. Its objects go through the same parser as the API server's.
 */
export class LocalApiSource implements ClusterSource {
  readonly description: string;

  constructor(
    private readonly path: string,
    private readonly filter: ClusterFilter = {},
  ) {
    this.description = `local cluster API ${path}`;
  }

  /** Reads the file once: the resources that pass the filter, and the objects that could not be read. */
  read(): { resources: ClusterResource[]; problems: string[] } | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const list = JSON.parse(text) as { kind?: unknown; items?: unknown };
    if (list.kind !== 'List' || !Array.isArray(list.items)) throw new Error('not a Kubernetes List');
    const resources: ClusterResource[] = [];
    const problems: string[] = [];
    for (const item of list.items) {
      const r = parseKubeObject(item);
      if ('problem' in r) problems.push(r.problem);
      else if ('resource' in r && passes(this.filter, r.resource)) resources.push(r.resource);
    }
    return { resources, problems };
  }

  watch(watcher: ClusterWatcher, signal: AbortSignal): void {
    const differ = new ResourceDiffer();
    let synced = false;
    let lastError = '';
    const refresh = (): void => {
      if (signal.aborted) return;
      let view: ReturnType<LocalApiSource['read']>;
      try {
        view = this.read();
      } catch (err) {
        const message = `${this.path}: ${(err as Error).message}; keeping the last good view`;
        if (message !== lastError) watcher.onError?.(message);
        lastError = message;
        return;
      }
      lastError = '';
      if (view === undefined) return;
      for (const p of view.problems) watcher.onError?.(`${this.path}: ${p}`);
      const events = differ.diff(view.resources);
      if (events.length > 0) watcher.onEvents(events);
      if (!synced) {
        synced = true;
        watcher.onSynced();
      }
    };
    // The daemon replaces the file by rename, so watch the folder, not the file.
    const name = basename(this.path);
    let timer: NodeJS.Timeout | undefined;
    const watcherFs = watch(dirname(this.path), (_event, file) => {
      if (file !== null && file !== name) return;
      clearTimeout(timer);
      timer = setTimeout(refresh, 20);
    });
    // fs.watch can miss events under load; a slow poll makes sure a change is seen eventually.
    const poll = setInterval(refresh, 2000);
    signal.addEventListener('abort', () => {
      watcherFs.close();
      clearInterval(poll);
      clearTimeout(timer);
    });
    refresh();
  }
}
