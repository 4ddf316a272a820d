import type { PushedConfig, Rejection } from '../api/config-codec.js';
import { type ClusterResource, namespacedName } from '../cluster/resources.js';
import type { ClusterEvent } from '../cluster/source.js';
import type { ClusterStore } from '../cluster/store.js';
import { type MeshRoute, routeKey } from '../gateway-api/types.js';
import { isWaypoint } from '../gateway-api/waypoint.js';
import {
  type MeshNode,
  type MeshService,
  type MeshWaypoint,
  nodeOf,
  serviceOf,
  type Workload,
  workloadOf,
} from '../mesh/view.js';
import { meshWaypointOf, type WaypointLookup, waypointKey } from '../mesh/waypoints.js';
import { failClosedNote } from '../policy/fail-closed.js';
import { type MeshPolicy, policyKey } from '../policy/types.js';
import { type BackendTrafficPolicy, trafficPolicyFor } from '../traffic-policy/types.js';

/** A warning about a config object that was kept (for the log). */
export interface ConfigWarning {
  readonly object: string;
  readonly file: string;
  readonly line: number;
  readonly path: string;
  readonly message: string;
}

/**
 * The config the control plane pushes, kept up to date entry by entry: each batch of cluster events
 * recomputes only the workloads, services, nodes and policies it touches, with the pure builders of
 * mesh/view.ts. An entry whose recomputation came out the same keeps its identity, so that the
 * difference between two versions is found without comparing what did not change.
 */
export class MeshConfigBuilder {
  private readonly workloads = new Map<string, Workload>();
  private readonly services = new Map<string, MeshService>();
  private readonly policies = new Map<string, MeshPolicy>();
  private readonly routes = new Map<string, MeshRoute>();
  private readonly waypoints = new Map<string, MeshWaypoint>();
  private readonly lookup: WaypointLookup = (ref) => this.waypoints.get(waypointKey(ref));
  private readonly rejected = new Map<string, readonly Rejection[]>();
  private readonly warned = new Map<string, readonly ConfigWarning[]>();
  private nodes: readonly MeshNode[] = [];
  /** Pod uid -> the Services whose slices name it, and the other way round. */
  private readonly servicesOfPod = new Map<string, Set<string>>();
  private readonly podsOfService = new Map<string, Set<string>>();

  constructor(
    private readonly store: ClusterStore,
    private readonly trustDomain: string,
  ) {}

  /** Takes in a batch of events the store has already applied. */
  apply(events: readonly ClusterEvent[]): void {
    const dirtyServices = new Set<string>();
    const dirtyPods = new Set<string>();
    let nodesChanged = false;
    let waypointsChanged = false;
    const touch = (r: ClusterResource): void => {
      switch (r.kind) {
        case 'Namespace':
          // Its labels enroll pods and may name a waypoint for its pods and Services.
          for (const p of this.store.pods.values())
            if (p.namespace === r.name) dirtyPods.add(namespacedName(p));
          for (const s of this.store.services.values())
            if (s.namespace === r.name) dirtyServices.add(namespacedName(s));
          break;
        case 'Node':
          nodesChanged = true;
          break;
        case 'Pod':
          // A pod that is gone, or replaced under its name, leaves its old workload behind.
          if (this.store.pods.get(namespacedName(r))?.uid !== r.uid) this.dropWorkload(r.uid, dirtyServices);
          dirtyPods.add(namespacedName(r));
          break;
        case 'Service':
          dirtyServices.add(namespacedName(r));
          break;
        case 'EndpointSlice':
          dirtyServices.add(`${r.namespace}/${r.service}`);
          break;
        case 'ServiceAccount':
          break; // Identities come from pods; the CA reads ServiceAccounts from the store.
        case 'BackendTrafficPolicy':
          // The Services it targets (before and after the change: touch sees both) carry it.
          this.updateConfigObject(r.kind, `${r.kind}/${r.namespace}/${r.name}`);
          if (r.parsed?.kind === 'BackendTrafficPolicy')
            for (const t of r.parsed.value.targetRefs) dirtyServices.add(`${r.namespace}/${t.name}`);
          break;
        default:
          if (this.updateConfigObject(r.kind, `${r.kind}/${r.namespace}/${r.name}`)) waypointsChanged = true;
      }
    };
    for (const e of events) {
      touch(e.resource);
      if (e.type === 'updated') touch(e.previous);
    }
    if (waypointsChanged) {
      // Which waypoint an object binds to can change for any of them: bind everything again (rare).
      for (const key of this.store.pods.keys()) dirtyPods.add(key);
      for (const key of this.store.services.keys()) dirtyServices.add(key);
    }
    for (const key of dirtyPods) {
      const pod = this.store.pods.get(key);
      if (pod === undefined) continue;
      const next = workloadOf(
        pod,
        this.store.namespaces.get(pod.namespace)?.labels,
        this.trustDomain,
        this.lookup,
      );
      const had = this.workloads.get(pod.uid);
      if (next === undefined) {
        this.dropWorkload(pod.uid, dirtyServices);
        continue;
      }
      if (had === undefined) for (const s of this.servicesOfPod.get(pod.uid) ?? []) dirtyServices.add(s);
      this.workloads.set(pod.uid, keep(had, next));
    }
    for (const key of dirtyServices) this.updateService(key);
    if (nodesChanged) this.nodes = keep(this.nodes, [...this.store.nodes.values()].map(nodeOf));
  }

  private dropWorkload(uid: string, dirtyServices: Set<string>): void {
    if (!this.workloads.delete(uid)) return;
    for (const s of this.servicesOfPod.get(uid) ?? []) dirtyServices.add(s);
  }

  private updateService(key: string): void {
    const svc = this.store.services.get(key);
    const slices = this.store.slicesOf(key);
    for (const uid of this.podsOfService.get(key) ?? []) {
      const set = this.servicesOfPod.get(uid);
      set?.delete(key);
      if (set?.size === 0) this.servicesOfPod.delete(uid);
    }
    const uids = new Set(slices.flatMap((sl) => sl.endpoints.flatMap((e) => e.podUid ?? [])));
    if (uids.size === 0) this.podsOfService.delete(key);
    else this.podsOfService.set(key, uids);
    for (const uid of uids) {
      const set = this.servicesOfPod.get(uid);
      if (set === undefined) this.servicesOfPod.set(uid, new Set([key]));
      else set.add(key);
    }
    if (svc === undefined) {
      this.services.delete(key);
      return;
    }
    const trafficPolicy = trafficPolicyFor(svc, this.trafficPolicies());
    const next = serviceOf(
      svc,
      slices,
      (uid) => this.workloads.has(uid),
      this.store.namespaces.get(svc.namespace)?.labels,
      this.lookup,
    );
    this.services.set(
      key,
      keep(this.services.get(key), trafficPolicy === undefined ? next : { ...next, trafficPolicy }),
    );
  }

  /** The BackendTrafficPolicies that passed validation. */
  private *trafficPolicies(): Iterable<BackendTrafficPolicy> {
    for (const o of this.store.config.values())
      if (o.parsed?.kind === 'BackendTrafficPolicy' && !o.issues.some((i) => i.severity === 'error'))
        yield o.parsed.value;
  }

  /** Takes in one config object's change; true when the set of waypoints changed. */
  private updateConfigObject(kind: string, key: string): boolean {
    const o = this.store.config.get(key);
    this.rejected.delete(key);
    this.warned.delete(key);
    // A policy's key (policyKey) and a route's (routeKey) are their resource keys.
    this.policies.delete(key);
    this.routes.delete(key);
    const hadWaypoint = kind === 'Gateway' && this.waypoints.delete(key.slice('Gateway/'.length));
    if (o === undefined) return hadWaypoint;
    const where = { file: o.source?.file ?? '', line: o.source?.line ?? 0 };
    const errors = o.issues.filter((i) => i.severity === 'error');
    if (errors.length > 0 || o.parsed === undefined) {
      this.rejected.set(
        key,
        (errors.length > 0 ? errors : [{ path: '', message: 'could not be read' }]).map((i) => ({
          kind,
          namespace: o.namespace,
          name: o.name,
          ...where,
          path: i.path,
          message: i.message,
        })),
      );
      // A DENY that cannot be read is enforced as a DENY of everything it covers (policy/fail-closed.ts).
      if (o.failClosed !== undefined) {
        this.policies.set(key, o.failClosed);
        this.rejected.set(key, [
          ...(this.rejected.get(key) ?? []),
          {
            kind,
            namespace: o.namespace,
            name: o.name,
            ...where,
            path: '',
            message: failClosedNote(o.failClosed),
          },
        ]);
      }
      return hadWaypoint;
    }
    const warnings = o.issues.filter((i) => i.severity === 'warning');
    if (warnings.length > 0)
      this.warned.set(
        key,
        warnings.map((w) => ({ object: key, ...where, path: w.path, message: w.message })),
      );
    const p = o.parsed;
    switch (p.kind) {
      case 'AuthorizationPolicy':
      case 'PeerAuthentication':
      case 'RequestAuthentication':
        this.policies.set(policyKey(p.value), p.value);
        return hadWaypoint;
      case 'HTTPRoute':
      case 'GRPCRoute': {
        const route =
          p.kind === 'HTTPRoute'
            ? ({ kind: p.kind, route: p.value } as const)
            : ({ kind: p.kind, route: p.value } as const);
        this.routes.set(routeKey(route), route);
        return hadWaypoint;
      }
      case 'BackendTrafficPolicy':
        return hadWaypoint; // Carried by the Services it targets (updateService).
      case 'Gateway': {
        if (!isWaypoint(p.value)) return hadWaypoint;
        const w = meshWaypointOf(p.value, this.trustDomain);
        this.waypoints.set(waypointKey(w), w);
        return true;
      }
    }
  }

  /** Rejected objects, sorted by object: each with its file, line, path and reason. */
  rejections(): Rejection[] {
    return [...this.rejected].sort(([a], [b]) => (a < b ? -1 : 1)).flatMap(([, r]) => r);
  }

  warnings(): ConfigWarning[] {
    return [...this.warned].sort(([a], [b]) => (a < b ? -1 : 1)).flatMap(([, w]) => w);
  }

  /** The config to publish now. */
  config(trustBundle: readonly string[], revision: string): PushedConfig {
    return {
      view: {
        revision,
        trustDomain: this.trustDomain,
        nodes: this.nodes,
        workloads: [...this.workloads.values()],
        services: [...this.services.values()],
        waypoints: [...this.waypoints.values()].sort((a, b) => (waypointKey(a) < waypointKey(b) ? -1 : 1)),
      },
      trustBundle,
      rejections: this.rejections(),
      policies: new Map(this.policies),
      routes: new Map(this.routes),
    };
  }
}

/** The old value when the new one is the same: unchanged entries keep their identity. */
function keep<T>(old: T | undefined, next: T): T {
  return old !== undefined && JSON.stringify(old) === JSON.stringify(next) ? old : next;
}
