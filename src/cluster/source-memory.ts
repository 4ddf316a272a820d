import { ResourceDiffer } from './diff.js';
import type { ClusterResource } from './resources.js';
import type { ClusterSource, ClusterWatcher } from './source.js';

/**
 * A cluster held in memory: whoever owns it sets the whole view and watchers receive the changes as
 * events. For in-process integration tests and tools that build a cluster by hand.
 */
export class MemoryClusterSource implements ClusterSource {
  readonly description = 'in-memory cluster';
  private resources: readonly ClusterResource[] = [];
  private readonly watchers = new Set<{ watcher: ClusterWatcher; differ: ResourceDiffer }>();

  constructor(initial: readonly ClusterResource[] = []) {
    this.resources = initial;
  }

  /** Replaces the view; every watcher gets what changed. */
  set(resources: readonly ClusterResource[]): void {
    this.resources = resources;
    for (const w of this.watchers) {
      const events = w.differ.diff(resources);
      if (events.length > 0) w.watcher.onEvents(events);
    }
  }

  watch(watcher: ClusterWatcher, signal: AbortSignal): void {
    const entry = { watcher, differ: new ResourceDiffer() };
    this.watchers.add(entry);
    signal.addEventListener('abort', () => this.watchers.delete(entry));
    const events = entry.differ.diff(this.resources);
    if (events.length > 0) watcher.onEvents(events);
    watcher.onSynced();
  }
}
