import type { ClusterKind, ClusterResource } from './resources.js';

/**
 * The one way a daemon learns the cluster. A source emits per-resource changes, the way a Kubernetes
 * informer does (added, updated, deleted), never whole snapshots, so that an informer can feed it as it
 * is: the local cluster's API today (source-local.ts), the Kubernetes API server in cluster mode.
 */
export type ClusterEvent =
  | { readonly type: 'added'; readonly resource: ClusterResource }
  | { readonly type: 'updated'; readonly resource: ClusterResource; readonly previous: ClusterResource }
  | { readonly type: 'deleted'; readonly resource: ClusterResource };

export interface ClusterWatcher {
  /** One batch of changes, each resource at most once. A pod recreated under its name is a delete and an add. */
  onEvents(events: readonly ClusterEvent[]): void;
  /** The first complete view has been delivered (an informer's HasSynced); called once. */
  onSynced(): void;
  /** The source could not read the cluster this time; it keeps trying, and what was delivered stands. */
  onError?(message: string): void;
}

/** What a watcher wants: a node agent asks for its own node's pods and the namespaces only. */
export interface ClusterFilter {
  readonly kinds?: readonly ClusterKind[];
  /** Only pods with `spec.nodeName` = this (Kubernetes: `fieldSelector=spec.nodeName=<node>`). */
  readonly node?: string;
}

export interface ClusterSource {
  /** For logs: where the cluster is read from. */
  readonly description: string;
  watch(watcher: ClusterWatcher, signal: AbortSignal): void;
}

/** Whether a resource passes a filter. */
export function passes(filter: ClusterFilter, r: ClusterResource): boolean {
  if (filter.kinds !== undefined && !filter.kinds.includes(r.kind)) return false;
  if (filter.node !== undefined && r.kind === 'Pod' && r.node !== filter.node) return false;
  return true;
}
