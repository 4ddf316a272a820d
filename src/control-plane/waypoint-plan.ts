import {
  type ContainerOverride,
  type KubeObject,
  overrideContainers,
  type RenderableGateway,
  renderWaypoint,
  type WaypointRenderOptions,
} from '../gateway-api/waypoint-render.js';
import { driftedFields, type Json } from '../kube/field-paths.js';

/*
 * What the control plane does about waypoint objects, decided from what it knows: the waypoint
 * Gateways (with their UIDs), the objects that carry a waypoint's labels (from its watch), and what
 * it applied last. Pure; waypoint-applier.ts carries the decisions out.
 */

/** `Kind/namespace/name`. */
export function objectKeyOf(o: {
  readonly kind: string;
  readonly metadata: { name: string; namespace?: string };
}): string {
  return `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

/** An object of a waypoint's kinds as the API has it now. */
export interface LiveObject {
  readonly key: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  /** The UID of its controller, when that is a Gateway. */
  readonly controllerGateway?: string;
  readonly object: Json;
}

export function liveObject(kind: string, o: Json): LiveObject | undefined {
  const m = (o.metadata ?? {}) as Json;
  if (typeof m.name !== 'string') return undefined;
  const refs = Array.isArray(m.ownerReferences) ? (m.ownerReferences as Json[]) : [];
  const controller = refs.find((r) => r.controller === true && r.kind === 'Gateway');
  const namespace = String(m.namespace ?? '');
  return {
    key: `${kind}/${namespace}/${m.name}`,
    kind,
    namespace,
    name: m.name,
    uid: String(m.uid ?? ''),
    resourceVersion: String(m.resourceVersion ?? ''),
    ...(typeof controller?.uid === 'string' ? { controllerGateway: controller.uid } : {}),
    object: o,
  };
}

/** What the control plane applied to an object last: the configuration, and the version it made. */
export interface Applied {
  readonly text: string;
  readonly resourceVersion: string;
}

export interface WaypointOptions extends WaypointRenderOptions {
  /** Local mode: how the container runs without an image. */
  readonly container?: ContainerOverride;
}

/**
 * The objects of every waypoint Gateway, owned by it. A Gateway without a UID (not read from an API)
 * makes none; problems (a bad annotation) are the Gateway status's business, not this one's.
 */
export function desiredObjects(gateways: readonly RenderableGateway[], o: WaypointOptions): KubeObject[] {
  const out: KubeObject[] = [];
  for (const gw of gateways) {
    if (gw.uid === undefined || gw.uid === '') continue;
    const objects = renderWaypoint(gw, o).objects;
    out.push(...(o.container === undefined ? objects : overrideContainers(objects, o.container)));
  }
  return out;
}

export interface WaypointPlan {
  /** Applied server-side, with force: new, changed, or changed by someone else in fields it owns. */
  readonly apply: readonly { readonly object: KubeObject; readonly why: string }[];
  /** Owned by a Gateway, yet no longer rendered (the Gateway is gone, or no longer a waypoint). */
  readonly delete: readonly LiveObject[];
}

/**
 * Apply what is missing, what the rendering changed, and what someone else changed among the fields
 * the control plane sets (a version the control plane's own apply made is not looked at again, so
 * an API server's defaulting never makes it apply in a loop); delete what a Gateway owns but is no
 * longer rendered.
 */
export function planWaypoints(
  desired: readonly KubeObject[],
  live: ReadonlyMap<string, LiveObject>,
  applied: ReadonlyMap<string, Applied>,
): WaypointPlan {
  const apply: { object: KubeObject; why: string }[] = [];
  const wanted = new Set<string>();
  for (const object of desired) {
    const key = objectKeyOf(object);
    wanted.add(key);
    const text = JSON.stringify(object);
    const now = live.get(key);
    const last = applied.get(key);
    if (now === undefined) apply.push({ object, why: 'missing' });
    else if (last?.text !== text)
      apply.push({ object, why: last === undefined ? 'first apply' : 'rendering changed' });
    else if (now.resourceVersion !== last.resourceVersion) {
      const drift = driftedFields(object as unknown as Json, now.object);
      if (drift.length > 0) apply.push({ object, why: `changed by someone else: ${drift.join(', ')}` });
    }
  }
  const del = [...live.values()].filter((l) => l.controllerGateway !== undefined && !wanted.has(l.key));
  return { apply, delete: del };
}
