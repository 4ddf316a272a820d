import { type ClusterResource, resourceKey } from './resources.js';
import type { ClusterEvent } from './source.js';

/**
 * Turns successive complete views of the cluster into per-resource events: what a list-then-watch
 * client does when it re-lists. Remembers the last view it delivered; resources compare by content.
 */
export class ResourceDiffer {
  private last = new Map<string, { readonly resource: ClusterResource; readonly text: string }>();

  /** The events that take a watcher from the last view to `next`. */
  diff(next: Iterable<ClusterResource>): ClusterEvent[] {
    const now = new Map<string, { resource: ClusterResource; text: string }>();
    for (const r of next) now.set(resourceKey(r), { resource: r, text: JSON.stringify(r) });
    const events: ClusterEvent[] = [];
    for (const [key, old] of this.last) {
      if (!now.has(key)) events.push({ type: 'deleted', resource: old.resource });
    }
    for (const [key, cur] of now) {
      const old = this.last.get(key);
      if (old === undefined) events.push({ type: 'added', resource: cur.resource });
      else if (old.text === cur.text) continue;
      else if (
        cur.resource.kind === 'Pod' &&
        old.resource.kind === 'Pod' &&
        old.resource.uid !== cur.resource.uid
      ) {
        // A new pod under an old name is another pod: its identity, addresses and cgroup are new.
        events.push({ type: 'deleted', resource: old.resource }, { type: 'added', resource: cur.resource });
      } else events.push({ type: 'updated', resource: cur.resource, previous: old.resource });
    }
    this.last = now;
    return events;
  }
}
