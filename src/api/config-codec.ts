import type { MeshRoute } from '../gateway-api/types.js';
import type { MeshNode, MeshService, MeshView, MeshWaypoint, Workload } from '../mesh/view.js';
import { type MeshPolicy, policyKey } from '../policy/types.js';
import { encodePolicy, type WirePolicy } from './config-policies.js';
import { encodeRoute, type WireRoute } from './config-routes.js';
import { encodeTrafficPolicy, type WireTrafficPolicy } from './config-traffic-policy.js';

/*
 * The config stream: what the control plane publishes (PushedConfig), the difference between two
 * versions (ConfigDelta, computed once per version and shared by every node's stream), and its wire
 * form (ConfigUpdate, as proto-loader decodes ambit.proto). Decoding, with checks, is in
 * config-decode.ts: proxies only ever see validated domain types.
 */

/** A mesh object the control plane refused, with where and why. */
export interface Rejection {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly file: string;
  readonly line: number;
  readonly path: string;
  readonly message: string;
}

/** What the control plane publishes for nodes; proxies rebuild the same from updates. */
export interface PushedConfig {
  readonly view: MeshView;
  readonly trustBundle: readonly string[];
  readonly rejections: readonly Rejection[];
  /** Policies by key (`Kind/ns/name`). */
  readonly policies: ReadonlyMap<string, MeshPolicy>;
  /** HTTPRoutes and GRPCRoutes by key (`Kind/ns/name`). */
  readonly routes: ReadonlyMap<string, MeshRoute>;
}

/** What changed between two versions of the pushed config (everything, when `full`). */
export interface ConfigDelta {
  readonly full: boolean;
  readonly trustDomain: string;
  /** Present when the nodes changed (always when full). */
  readonly nodes?: readonly MeshNode[];
  readonly workloads: readonly Workload[];
  readonly removedWorkloads: readonly string[];
  readonly services: readonly MeshService[];
  readonly removedServices: readonly string[];
  readonly trustBundle?: readonly string[];
  readonly rejections?: readonly Rejection[];
  readonly policies: readonly MeshPolicy[];
  readonly removedPolicies: readonly string[];
  /** Present when the waypoints changed (always when full). */
  readonly waypoints?: readonly MeshWaypoint[];
  readonly routes: readonly MeshRoute[];
  readonly removedRoutes: readonly string[];
}

export interface WireWaypointRef {
  namespace: string;
  name: string;
}

export interface WireWorkload {
  uid: string;
  namespace: string;
  name: string;
  service_account: string;
  node: string;
  ips: string[];
  labels: Record<string, string>;
  app: string;
  workload_name: string;
  captured: boolean;
  identity: string;
  ready: boolean;
  waypoint: WireWaypointRef | null;
}

export interface WireService {
  namespace: string;
  name: string;
  hostname: string;
  vips: string[];
  ports: { name: string; port: number; target_port: string; protocol: string; app_protocol: string }[];
  labels: Record<string, string>;
  endpoints: { workload_uid: string; ready: boolean; ports: Record<string, number> }[];
  waypoint: WireWaypointRef | null;
  required_waypoint: WireWaypointRef | null;
  traffic_policy?: WireTrafficPolicy | null;
}

export interface WireWaypoint {
  namespace: string;
  name: string;
  for: string;
  identity: string;
  service: string;
}

export interface ConfigUpdate {
  version: string;
  full: boolean;
  trust_domain: string;
  nodes: { name: string; ips: string[] }[];
  nodes_changed: boolean;
  workloads: WireWorkload[];
  services: WireService[];
  removed_workloads: string[];
  removed_services: string[];
  trust_bundle: string[];
  rejections: Rejection[];
  rejections_changed: boolean;
  policies: WirePolicy[];
  removed_policies: string[];
  waypoints: WireWaypoint[];
  waypoints_changed: boolean;
  routes: WireRoute[];
  removed_routes: string[];
}

export function serviceKey(s: { readonly namespace: string; readonly name: string }): string {
  return `${s.namespace}/${s.name}`;
}

/** Entries compare by identity first (the control plane keeps unchanged ones), then by content. */
function same(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

function changed<T>(
  prev: ReadonlyMap<string, T>,
  next: ReadonlyMap<string, T>,
): { changed: T[]; removed: string[] } {
  const out: T[] = [];
  for (const [k, v] of next) if (!prev.has(k) || !same(prev.get(k), v)) out.push(v);
  return { changed: out, removed: [...prev.keys()].filter((k) => !next.has(k)) };
}

/**
 * The delta that brings a node from `prev` (what it has; undefined for a new stream) to `next`:
 * everything when `prev` is undefined, otherwise what changed and what went away.
 */
export function diffConfig(prev: PushedConfig | undefined, next: PushedConfig): ConfigDelta {
  if (prev === undefined) {
    return {
      full: true,
      trustDomain: next.view.trustDomain,
      nodes: next.view.nodes,
      workloads: next.view.workloads,
      removedWorkloads: [],
      services: next.view.services,
      removedServices: [],
      trustBundle: next.trustBundle,
      rejections: next.rejections,
      policies: [...next.policies.values()],
      removedPolicies: [],
      waypoints: next.view.waypoints,
      routes: [...next.routes.values()],
      removedRoutes: [],
    };
  }
  const w = changed(
    new Map(prev.view.workloads.map((x) => [x.uid, x])),
    new Map(next.view.workloads.map((x) => [x.uid, x])),
  );
  const s = changed(
    new Map(prev.view.services.map((x) => [serviceKey(x), x])),
    new Map(next.view.services.map((x) => [serviceKey(x), x])),
  );
  const p = changed(prev.policies, next.policies);
  const r = changed(prev.routes, next.routes);
  return {
    full: false,
    trustDomain: next.view.trustDomain,
    ...(same(prev.view.nodes, next.view.nodes) ? {} : { nodes: next.view.nodes }),
    workloads: w.changed,
    removedWorkloads: w.removed,
    services: s.changed,
    removedServices: s.removed,
    ...(same(prev.trustBundle, next.trustBundle) ? {} : { trustBundle: next.trustBundle }),
    ...(same(prev.rejections, next.rejections) ? {} : { rejections: next.rejections }),
    policies: p.changed,
    removedPolicies: p.removed,
    ...(same(prev.view.waypoints, next.view.waypoints) ? {} : { waypoints: next.view.waypoints }),
    routes: r.changed,
    removedRoutes: r.removed,
  };
}

/** True when the delta changes nothing a node would notice. */
export function isEmptyDelta(d: ConfigDelta): boolean {
  return (
    !d.full &&
    d.nodes === undefined &&
    d.workloads.length === 0 &&
    d.removedWorkloads.length === 0 &&
    d.services.length === 0 &&
    d.removedServices.length === 0 &&
    d.trustBundle === undefined &&
    d.rejections === undefined &&
    d.policies.length === 0 &&
    d.removedPolicies.length === 0 &&
    d.waypoints === undefined &&
    d.routes.length === 0 &&
    d.removedRoutes.length === 0
  );
}

function encodeWorkload(w: Workload): WireWorkload {
  return {
    uid: w.uid,
    namespace: w.namespace,
    name: w.name,
    service_account: w.serviceAccount,
    node: w.node,
    ips: [...w.ips],
    labels: { ...w.labels },
    app: w.app,
    workload_name: w.workloadName,
    captured: w.captured,
    identity: w.identity,
    ready: w.ready,
    waypoint: w.waypoint === undefined ? null : { ...w.waypoint },
  };
}

function encodeService(s: MeshService): WireService {
  return {
    namespace: s.namespace,
    name: s.name,
    hostname: s.hostname,
    vips: [...s.vips],
    ports: s.ports.map((p) => ({
      name: p.name ?? '',
      port: p.port,
      target_port: String(p.targetPort),
      protocol: p.protocol,
      app_protocol: p.appProtocol ?? '',
    })),
    labels: { ...s.labels },
    endpoints: s.endpoints.map((e) => ({
      workload_uid: e.workloadUid,
      ready: e.ready,
      ports: { ...e.ports },
    })),
    waypoint: s.waypoint === undefined ? null : { ...s.waypoint },
    required_waypoint: s.requiredWaypoint === undefined ? null : { ...s.requiredWaypoint },
    traffic_policy: s.trafficPolicy === undefined ? null : encodeTrafficPolicy(s.trafficPolicy),
  };
}

/** The wire form of a delta at a version. */
export function encodeUpdate(d: ConfigDelta, version: bigint): ConfigUpdate {
  return {
    version: version.toString(),
    full: d.full,
    trust_domain: d.trustDomain,
    nodes: (d.nodes ?? []).map((n) => ({ name: n.name, ips: [...n.ips] })),
    nodes_changed: d.nodes !== undefined,
    workloads: d.workloads.map(encodeWorkload),
    services: d.services.map(encodeService),
    removed_workloads: [...d.removedWorkloads],
    removed_services: [...d.removedServices],
    trust_bundle: [...(d.trustBundle ?? [])],
    rejections: [...(d.rejections ?? [])],
    rejections_changed: d.rejections !== undefined,
    policies: d.policies.map((p) => encodePolicy(policyKey(p), p)),
    removed_policies: [...d.removedPolicies],
    waypoints: (d.waypoints ?? []).map((w) => ({ ...w })),
    waypoints_changed: d.waypoints !== undefined,
    routes: d.routes.map(encodeRoute),
    removed_routes: [...d.removedRoutes],
  };
}
