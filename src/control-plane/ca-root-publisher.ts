import { setMaxListeners } from 'node:events';
import { resourceOfKind } from '../kube/api-resources.js';
import type { KubeClient } from '../kube/client.js';
import type { Json } from '../kube/field-paths.js';
import { Reflector } from '../kube/reflector.js';
import type { Logger } from '../telemetry/logger.js';
import {
  CA_ROOT_FIELD_SELECTOR,
  type ObservedNamespace,
  observedNamespace,
  planCaRoots,
} from './ca-root-plan.js';
import { ReconcileRounds } from './reconcile-rounds.js';
import { applyServerSide } from './server-side-apply.js';

function resource(kind: string) {
  const r = resourceOfKind(kind);
  if (r === undefined) throw new Error(`no API resource for ${kind}`);
  return r;
}

/**
 * Publishes the CA's trust bundle as the ConfigMap `ambit-ca-root-cert` (key `root-cert.pem`) in every
 * namespace (ca-root-plan.ts says which), as istiod's namespace controller publishes
 * istio-ca-root-cert: the node pods mount it for `--ca-bundle` and every waypoint mounts it in its own
 * namespace. Applied server-side (field manager `ambit-control-plane`, force) when the bundle changes
 * (a rotation, dropping the old roots), when a namespace appears, and when someone edits or deletes
 * one (the ConfigMaps are watched by name in every namespace). Rounds are coalesced and run one at a
 * time; nothing is decided before both watches have listed once and the bundle is known.
 */
export class CaRootPublisher {
  private bundle: readonly string[] | undefined;
  private readonly namespaces = new Map<string, ObservedNamespace>();
  private readonly observed = new Map<string, Json>();
  private readonly pending = new Set<string>(['Namespace', 'ConfigMap']);
  private readonly rounds: ReconcileRounds;

  constructor(
    private readonly client: Pick<KubeClient, 'json' | 'stream'>,
    private readonly log: Logger,
    delayMs = 100,
  ) {
    this.rounds = new ReconcileRounds(
      () => this.round(),
      () => this.pending.size === 0 && this.bundle !== undefined,
      delayMs,
    );
  }

  /** The CA's trust bundle now (the signing root first): published at once when it changed. */
  offer(bundle: readonly string[]): void {
    if (this.bundle !== undefined && this.bundle.join('') === bundle.join('')) return;
    this.bundle = [...bundle];
    this.rounds.schedule();
  }

  run(signal: AbortSignal): void {
    setMaxListeners(16, signal);
    signal.addEventListener('abort', () => this.rounds.stop());
    void new Reflector(
      { client: this.client, resource: resource('Namespace') },
      {
        replace: (items) => {
          this.namespaces.clear();
          for (const o of items) this.setNamespace(o as Json);
          this.synced('Namespace');
        },
        apply: (type, o) => {
          const name = o.metadata?.name ?? '';
          if (type === 'DELETED') {
            this.namespaces.delete(name);
            this.observed.delete(name);
          } else this.setNamespace(o as Json);
          this.rounds.schedule();
        },
        error: (message) => this.log.warn({ kind: 'Namespace' }, message),
      },
    ).run(signal);
    void new Reflector(
      { client: this.client, resource: resource('ConfigMap'), fieldSelector: CA_ROOT_FIELD_SELECTOR },
      {
        replace: (items) => {
          this.observed.clear();
          for (const o of items) this.observed.set(o.metadata?.namespace ?? '', o as Json);
          this.synced('ConfigMap');
        },
        apply: (type, o) => {
          const ns = o.metadata?.namespace ?? '';
          if (type === 'DELETED') this.observed.delete(ns);
          else this.observed.set(ns, o as Json);
          this.rounds.schedule();
        },
        error: (message) => this.log.warn({ kind: 'ConfigMap' }, message),
      },
    ).run(signal);
  }

  private setNamespace(o: Json): void {
    const n = observedNamespace(o);
    if (n !== undefined) this.namespaces.set(n.name, n);
  }

  private synced(kind: string): void {
    this.pending.delete(kind);
    this.rounds.schedule();
  }

  /** One round: applies what the plan says; true when an apply failed (the round is retried). */
  private async round(): Promise<boolean> {
    let failed = false;
    const plan = planCaRoots([...this.namespaces.values()], this.bundle, this.observed);
    for (const { object, why } of plan) {
      if (this.rounds.stopped) return failed;
      const ns = object.metadata.namespace;
      try {
        const out = await applyServerSide(this.client, object);
        // The answer is the newest version; the watch may still be behind it.
        this.observed.set(ns, out);
        this.log.info({ namespace: ns, why, roots: this.bundle?.length }, 'CA root ConfigMap applied');
      } catch (err) {
        // A namespace deleted meanwhile refuses it; its watch event ends the retries.
        failed = true;
        this.log.warn({ err, namespace: ns }, 'cannot apply the CA root ConfigMap; trying again');
      }
    }
    return failed;
  }
}
