import { type Clock, systemClock, type Timer } from '../clock.js';
import type { ClusterSource } from '../cluster/source.js';
import {
  AGENT_READY_HEARTBEAT_MS,
  type AgentReadyClaim,
  missingLinks,
  withdrawAgentReady,
  writeAgentReady,
} from '../node/agent-ready.js';
import type { Logger } from '../telemetry/logger.js';

export interface AgentReadinessOptions {
  /** The ready file (src/node/agent-ready.ts); undefined: the agent claims nothing. */
  readonly file: string | undefined;
  readonly node: string;
  readonly podsCgroup: string;
  /** Program ids attached to the pods cgroup, per program: asked of the kernel on every claim and heartbeat. */
  readonly attached: () => Readonly<Record<string, readonly number[]>>;
  /** How many pods are enrolled, as the kernel's map has them. */
  readonly enrolled: () => number;
  /**
   * Why the last reconcile of the cluster view failed, or undefined when it succeeded: the claim needs
   * the view reconciled, not only received.
   */
  readonly reconcileError: () => string | undefined;
  readonly log: Logger;
  readonly clock?: Clock;
  /** How often the claim is re-checked and refreshed (AGENT_READY_HEARTBEAT_MS). */
  readonly heartbeatMs?: number;
}

type Counts = { readonly pods: number; readonly namespaces: number };

/**
 * The agent's side of the readiness contract: it claims readiness (writes the ready file) once the
 * first complete cluster view has been reconciled without error and the kernel confirms a program
 * attached for every redirect link. A claim must be kept alive: on every heartbeat the agent asks the
 * kernel again and rewrites the claim with a new `refreshedAt`, or withdraws it when a link has lost
 * its program or the last reconcile failed; the node proxy takes a claim not refreshed for a few
 * heartbeats as a dead agent's (the file is on a host path and outlives a SIGKILL). Withdrawn when
 * the agent stops. A ready file left by an earlier agent is withdrawn at start (main.ts does it
 * first thing, and so does this constructor): that agent's claim is not this one's.
 */
export class AgentReadiness {
  private claimed = false;
  private synced = false;
  private counts: Counts = { pods: 0, namespaces: 0 };
  private readyAt: string | undefined;
  private lastWhy: string | undefined;
  private timer: Timer | undefined;
  private readonly clock: Clock;

  constructor(
    private readonly o: AgentReadinessOptions,
    private readonly signal: AbortSignal,
  ) {
    this.clock = o.clock ?? systemClock;
    if (o.file === undefined) return;
    const file = o.file;
    withdrawAgentReady(file);
    signal.addEventListener('abort', () => {
      this.timer?.cancel();
      withdrawAgentReady(file);
      if (this.claimed) o.log.info({ file }, 'readiness withdrawn');
      this.claimed = false;
    });
    this.heartbeat();
  }

  private heartbeat(): void {
    if (this.signal.aborted) return;
    this.timer = this.clock.setTimer(() => {
      if (this.synced) this.evaluate();
      this.heartbeat();
    }, this.o.heartbeatMs ?? AGENT_READY_HEARTBEAT_MS);
  }

  /**
   * The same source, with readiness evaluated right after the watcher has handled the first complete
   * view (its `onSynced` reconciles enrollment against it), and on every heartbeat from then on.
   */
  tracking(source: ClusterSource): ClusterSource {
    return {
      description: source.description,
      watch: (watcher, signal) => {
        const count = (kind: string, by: number): void => {
          const c = this.counts;
          if (kind === 'Pod') this.counts = { ...c, pods: c.pods + by };
          else if (kind === 'Namespace') this.counts = { ...c, namespaces: c.namespaces + by };
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
              this.synced = true;
              if (!signal.aborted) this.evaluate();
            },
            ...(watcher.onError === undefined ? {} : { onError: (m: string) => watcher.onError?.(m) }),
          },
          signal,
        );
      },
    };
  }

  /** Why the agent is not ready now, or undefined: what a claim (or its refresh) rests on. */
  private notReady(links: Readonly<Record<string, readonly number[]>> | undefined): string | undefined {
    if (links === undefined) return 'cannot ask the kernel which programs are attached';
    const missing = missingLinks(links);
    if (missing.length > 0) return `redirect programs are not attached: ${missing.join(', ')}`;
    const err = this.o.reconcileError();
    if (err !== undefined) return `the cluster view is not reconciled: ${err}`;
    return undefined;
  }

  private evaluate(): void {
    const file = this.o.file;
    if (file === undefined || this.signal.aborted) return;
    let links: Readonly<Record<string, readonly number[]>> | undefined;
    try {
      links = this.o.attached();
    } catch (err) {
      this.o.log.error({ err }, 'asking the kernel for attached programs failed');
    }
    const why = this.notReady(links);
    if (why !== undefined) {
      withdrawAgentReady(file);
      // Once per change of reason, not on every heartbeat.
      if (why !== this.lastWhy)
        this.o.log.error(
          { file, links, why },
          this.claimed ? 'readiness withdrawn' : 'not claiming readiness',
        );
      this.lastWhy = why;
      this.claimed = false;
      this.readyAt = undefined;
      return;
    }
    this.lastWhy = undefined;
    const now = this.clock.now().toISOString();
    const first = !this.claimed;
    this.readyAt ??= now;
    const claim: AgentReadyClaim = {
      node: this.o.node,
      podsCgroup: this.o.podsCgroup,
      links: links ?? {},
      cluster: { ...this.counts, enrolled: this.o.enrolled() },
      readyAt: this.readyAt,
      refreshedAt: now,
    };
    writeAgentReady(file, claim);
    this.claimed = true;
    if (first) this.o.log.info({ file, links }, 'ready: redirect links attached, cluster view reconciled');
  }
}
