import type { Condition } from '../gateway-api/status.js';
import type { KubeClient } from '../kube/client.js';
import type { Logger } from '../telemetry/logger.js';
import type { MeshStatus } from './status.js';

type Json = Record<string, unknown>;

/** A condition as `metav1.Condition` has it on the wire: with the time it last changed. */
export interface WireCondition extends Condition {
  readonly lastTransitionTime: string;
}

/**
 * Stamps conditions with `lastTransitionTime`: kept from the previous write while a condition's status
 * is the same, `now` when it changed or is new (what the Gateway API and metav1.Condition require).
 * Pure.
 */
export function stampConditions(
  previous: readonly WireCondition[] | undefined,
  next: readonly Condition[],
  now: string,
): WireCondition[] {
  return next.map((c) => {
    const was = previous?.find((p) => p.type === c.type);
    return {
      ...c,
      lastTransitionTime: was !== undefined && was.status === c.status ? was.lastTransitionTime : now,
    };
  });
}

const PLURAL = { Gateway: 'gateways', HTTPRoute: 'httproutes', GRPCRoute: 'grpcroutes' } as const;

/**
 * Writes the status of waypoint Gateways and of routes to the API (`.../<name>/status`, a merge patch),
 * as a Gateway API controller does: only what changed, each object on its own (a refusal is logged and
 * tried again at the next change), coalesced so that a burst of cluster events makes one round.
 */
export class StatusWriter {
  private readonly written = new Map<string, { readonly text: string; readonly wire: Json }>();
  private pending: MeshStatus | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly client: Pick<KubeClient, 'json'>,
    private readonly log: Logger,
    private readonly now: () => string = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    private readonly delayMs = 200,
  ) {}

  /** The status as it is now; written shortly (the last one wins). */
  offer(status: MeshStatus): void {
    this.pending = status;
    if (this.timer === undefined) this.timer = setTimeout(() => void this.flush(), this.delayMs);
  }

  close(): void {
    clearTimeout(this.timer);
  }

  private async flush(): Promise<void> {
    this.timer = undefined;
    if (this.running || this.pending === undefined) {
      if (this.pending !== undefined) this.timer = setTimeout(() => void this.flush(), this.delayMs);
      return;
    }
    const status = this.pending;
    this.pending = undefined;
    this.running = true;
    try {
      const now = this.now();
      const objects: {
        kind: keyof typeof PLURAL;
        namespace: string;
        name: string;
        wire: (prev?: Json) => Json;
      }[] = [
        ...status.gateways.map((g) => ({
          kind: 'Gateway' as const,
          namespace: g.namespace,
          name: g.name,
          wire: (prev?: Json) => ({
            conditions: stampConditions(
              prev?.conditions as WireCondition[] | undefined,
              g.status.conditions,
              now,
            ),
            addresses: g.status.addresses,
            listeners: g.status.listeners.map((l) => ({
              ...l,
              conditions: stampConditions(
                ((prev?.listeners as { name: string; conditions: WireCondition[] }[] | undefined) ?? []).find(
                  (p) => p.name === l.name,
                )?.conditions,
                l.conditions,
                now,
              ),
            })),
          }),
        })),
        ...status.routes.map((r) => ({
          kind: r.kind,
          namespace: r.namespace,
          name: r.name,
          wire: (prev?: Json) => ({
            parents: r.status.parents.map((p, i) => ({
              ...p,
              conditions: stampConditions(
                ((prev?.parents as { conditions: WireCondition[] }[] | undefined) ?? [])[i]?.conditions,
                p.conditions,
                now,
              ),
            })),
          }),
        })),
      ];
      for (const o of objects) {
        const key = `${o.kind}/${o.namespace}/${o.name}`;
        const prev = this.written.get(key);
        const wire = o.wire(prev?.wire);
        // Compared without the times: a status that is the same is not written again.
        const text = JSON.stringify(wire, (k, v) => (k === 'lastTransitionTime' ? undefined : v));
        if (prev?.text === text) continue;
        try {
          await this.client.json(
            'PATCH',
            `/apis/gateway.networking.k8s.io/v1/namespaces/${encodeURIComponent(o.namespace)}/${PLURAL[o.kind]}/${encodeURIComponent(o.name)}/status`,
            { status: wire },
            undefined,
            'application/merge-patch+json',
          );
          this.written.set(key, { text, wire });
        } catch (err) {
          this.log.warn({ err, object: key }, 'cannot write status; it is tried again at the next change');
        }
      }
    } finally {
      this.running = false;
    }
  }
}
