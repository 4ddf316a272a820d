import type { ClusterSource } from '../cluster/source.js';
import { missingLinks, withdrawAgentReady, writeAgentReady } from '../node/agent-ready.js';
import type { Logger } from '../telemetry/logger.js';

export interface AgentReadinessOptions {
  /** The ready file (src/node/agent-ready.ts); undefined: the agent claims nothing. */
  readonly file: string | undefined;
  readonly node: string;
  readonly podsCgroup: string;
  /** Program ids attached to the pods cgroup, per program: asked of the kernel when readiness is claimed. */
  readonly attached: () => Readonly<Record<string, readonly number[]>>;
  /** How many pods are enrolled, as the kernel's map has them. */
  readonly enrolled: () => number;
  readonly log: Logger;
}

/**
 * The agent's side of the readiness contract: it claims readiness (writes the ready file) once the
 * first complete cluster view has been reconciled and the kernel confirms a program attached for every
 * redirect link, and withdraws it when the agent stops. A ready file left by an earlier agent is
 * withdrawn at start: that agent's claim is not this one's.
 */
export class AgentReadiness {
  private claimed = false;

  constructor(
    private readonly o: AgentReadinessOptions,
    signal: AbortSignal,
  ) {
    if (o.file === undefined) return;
    const file = o.file;
    withdrawAgentReady(file);
    signal.addEventListener('abort', () => {
      withdrawAgentReady(file);
      if (this.claimed) o.log.info({ file }, 'readiness withdrawn');
    });
  }

  /**
   * The same source, with readiness claimed right after the watcher has handled the first complete
   * view (its `onSynced` reconciles enrollment against it).
   */
  tracking(source: ClusterSource): ClusterSource {
    return {
      description: source.description,
      watch: (watcher, signal) => {
        // What the first view held, for the claim's details.
        const counts = { pods: 0, namespaces: 0 };
        const count = (kind: string, by: number): void => {
          if (kind === 'Pod') counts.pods += by;
          else if (kind === 'Namespace') counts.namespaces += by;
        };
        source.watch(
          {
            onEvents: (events) => {
              for (const e of events) {
                if (e.type === 'added') count(e.resource.kind, 1);
                else if (e.type === 'deleted') count(e.resource.kind, -1);
              }
              watcher.onEvents(events);
            },
            onSynced: () => {
              watcher.onSynced();
              if (!signal.aborted) this.claim(counts);
            },
            ...(watcher.onError === undefined ? {} : { onError: (m: string) => watcher.onError?.(m) }),
          },
          signal,
        );
      },
    };
  }

  private claim(counts: { readonly pods: number; readonly namespaces: number }): void {
    const file = this.o.file;
    if (file === undefined) return;
    const links = this.o.attached();
    const missing = missingLinks(links);
    if (missing.length > 0) {
      this.o.log.error({ links, missing }, 'not claiming readiness: redirect programs are not attached');
      return;
    }
    writeAgentReady(file, {
      node: this.o.node,
      pid: process.pid,
      podsCgroup: this.o.podsCgroup,
      links,
      cluster: { ...counts, enrolled: this.o.enrolled() },
      readyAt: new Date().toISOString(),
    });
    this.claimed = true;
    this.o.log.info({ file, links }, 'ready: redirect links attached, first cluster view reconciled');
  }
}
