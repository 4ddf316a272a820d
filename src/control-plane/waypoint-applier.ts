import { setMaxListeners } from 'node:events';
import { parseKubeObject } from '../cluster/kube-objects.js';
import { WAYPOINT_CLASS } from '../gateway-api/types.js';
import { isWaypoint } from '../gateway-api/waypoint.js';
import {
  GATEWAY_CLASS_LABEL,
  type KubeObject,
  type RenderableGateway,
} from '../gateway-api/waypoint-render.js';
import { type ApiResource, collectionPath, resourceOfKind } from '../kube/api-resources.js';
import type { KubeClient } from '../kube/client.js';
import type { Json } from '../kube/field-paths.js';
import { Reflector, type KubeObject as WireObject } from '../kube/reflector.js';
import type { Logger } from '../telemetry/logger.js';
import { ReconcileRounds } from './reconcile-rounds.js';
import { applyServerSide } from './server-side-apply.js';
import {
  type Applied,
  desiredObjects,
  type LiveObject,
  liveObject,
  objectKeyOf,
  planWaypoints,
  type WaypointOptions,
} from './waypoint-plan.js';

/** The kinds a waypoint is made of, watched by the label every rendered object carries. */
const OWNED_KINDS = ['ServiceAccount', 'Deployment', 'Service'] as const;

function resource(kind: string): ApiResource {
  const r = resourceOfKind(kind);
  if (r === undefined) throw new Error(`no API resource for ${kind}`);
  return r;
}

/**
 * The waypoint controller: for each waypoint Gateway, applies its ServiceAccount, Deployment and
 * Service server-side (field manager `ambit-control-plane`, force), owned by the Gateway; applies
 * again when the rendering changes or someone changes or deletes a field it set (it watches them);
 * deletes the objects a Gateway owns once they are no longer rendered (the Gateway is gone: the
 * API's garbage collector does the same, this does not wait for it). Rounds are coalesced and run
 * one at a time; nothing is decided before every watch has listed once.
 */
export class WaypointApplier {
  private readonly gateways = new Map<string, RenderableGateway>();
  private readonly live = new Map<string, LiveObject>();
  private readonly applied = new Map<string, Applied>();
  private readonly pending = new Set<string>(['Gateway', ...OWNED_KINDS]);
  private readonly rounds: ReconcileRounds;

  constructor(
    private readonly client: Pick<KubeClient, 'json' | 'stream'>,
    private readonly options: WaypointOptions,
    private readonly log: Logger,
    delayMs = 100,
  ) {
    this.rounds = new ReconcileRounds(
      () => this.round(),
      () => this.pending.size === 0,
      delayMs,
    );
  }

  run(signal: AbortSignal): void {
    setMaxListeners(16, signal);
    signal.addEventListener('abort', () => this.rounds.stop());
    const gateways = new Reflector(
      { client: this.client, resource: resource('Gateway') },
      {
        replace: (items) => {
          this.gateways.clear();
          for (const o of items) this.setGateway(o);
          this.synced('Gateway');
        },
        apply: (type, o) => {
          if (type === 'DELETED') this.gateways.delete(`${o.metadata?.namespace}/${o.metadata?.name}`);
          else this.setGateway(o);
          this.rounds.schedule();
        },
        error: (message) => this.log.warn({ kind: 'Gateway' }, message),
      },
    );
    void gateways.run(signal);
    for (const kind of OWNED_KINDS) {
      const r = new Reflector(
        {
          client: this.client,
          resource: resource(kind),
          labelSelector: `${GATEWAY_CLASS_LABEL}=${WAYPOINT_CLASS}`,
        },
        {
          replace: (items) => {
            for (const [k, v] of this.live) if (v.kind === kind) this.live.delete(k);
            for (const o of items) this.setLive(kind, o);
            this.synced(kind);
          },
          apply: (type, o) => {
            if (type === 'DELETED')
              this.live.delete(`${kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`);
            else this.setLive(kind, o);
            this.rounds.schedule();
          },
          error: (message) => this.log.warn({ kind }, message),
        },
      );
      void r.run(signal);
    }
  }

  private setGateway(o: WireObject): void {
    const p = parseKubeObject(o);
    const key = `${o.metadata?.namespace}/${o.metadata?.name}`;
    if (!('resource' in p) || p.resource.kind !== 'Gateway' || p.resource.parsed?.kind !== 'Gateway') {
      this.gateways.delete(key);
      return;
    }
    const gw = p.resource.parsed.value;
    if (!isWaypoint(gw)) {
      this.gateways.delete(key);
      return;
    }
    this.gateways.set(key, { ...gw, uid: o.metadata?.uid ?? '' });
  }

  private setLive(kind: string, o: WireObject): void {
    const l = liveObject(kind, o as Json);
    if (l !== undefined) this.live.set(l.key, l);
  }

  private synced(kind: string): void {
    this.pending.delete(kind);
    this.rounds.schedule();
  }

  /** One round: applies and deletes what the plan says; true when a step failed (the round is retried). */
  private async round(): Promise<boolean> {
    let failed = false;
    const plan = planWaypoints(
      desiredObjects([...this.gateways.values()], this.options),
      this.live,
      this.applied,
    );
    for (const { object, why } of plan.apply) {
      if (this.rounds.stopped) return failed;
      try {
        await this.apply(object);
        this.log.info({ object: objectKeyOf(object), why }, 'waypoint object applied');
      } catch (err) {
        failed = true;
        this.log.warn({ err, object: objectKeyOf(object) }, 'cannot apply a waypoint object; trying again');
      }
    }
    for (const l of plan.delete) {
      if (this.rounds.stopped) return failed;
      try {
        await this.remove(l);
        this.log.info({ object: l.key }, 'waypoint object deleted: its Gateway is gone');
      } catch (err) {
        if ((err as { status?: number }).status === 404) continue;
        failed = true;
        this.log.warn({ err, object: l.key }, 'cannot delete a waypoint object; trying again');
      }
    }
    return failed;
  }

  private async apply(object: KubeObject): Promise<void> {
    const out = await applyServerSide(this.client, object);
    const rv = String(((out.metadata ?? {}) as Json).resourceVersion ?? '');
    const key = objectKeyOf(object);
    this.applied.set(key, { text: JSON.stringify(object), resourceVersion: rv });
    const l = liveObject(object.kind, out);
    // The answer is the newest version; the watch may still be behind it.
    if (l !== undefined) this.live.set(key, l);
  }

  private async remove(l: LiveObject): Promise<void> {
    const r = resource(l.kind);
    await this.client.json('DELETE', `${collectionPath(r, l.namespace)}/${encodeURIComponent(l.name)}`, {
      kind: 'DeleteOptions',
      apiVersion: 'v1',
      propagationPolicy: 'Background',
      preconditions: { uid: l.uid },
    });
    this.live.delete(l.key);
    this.applied.delete(l.key);
  }
}
