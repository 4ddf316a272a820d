import { isIP } from 'node:net';
import { PROTOCOLS, type Protocol } from '../config/kube-types.js';
import type { MeshRoute } from '../gateway-api/types.js';
import { WAYPOINT_FOR_VALUES, type WaypointFor, type WaypointRef } from '../gateway-api/waypoint.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import type {
  MeshNode,
  MeshService,
  MeshView,
  MeshWaypoint,
  ServiceEndpoint,
  Workload,
} from '../mesh/view.js';
import type { MeshPolicy } from '../policy/types.js';
import type { AppliedTrafficPolicy } from '../traffic-policy/types.js';
import {
  type ConfigUpdate,
  type PushedConfig,
  serviceKey,
  type WireService,
  type WireWaypoint,
  type WireWaypointRef,
  type WireWorkload,
} from './config-codec.js';
import { decodePolicy } from './config-policies.js';
import { decodeRoute } from './config-routes.js';
import { decodeTrafficPolicy } from './config-traffic-policy.js';

function waypointRef(w: WireWaypointRef | null | undefined): WaypointRef | undefined {
  return w === null || w === undefined || w.name === ''
    ? undefined
    : { namespace: w.namespace, name: w.name };
}

function decodeWaypoint(w: WireWaypoint, problems: string[]): MeshWaypoint | undefined {
  if (
    !(WAYPOINT_FOR_VALUES as readonly string[]).includes(w.for) ||
    SpiffeId.tryParse(w.identity) === undefined
  ) {
    problems.push(
      `waypoint ${w.namespace}/${w.name}: "${w.for}" or its identity does not check out; ignored`,
    );
    return undefined;
  }
  return {
    namespace: w.namespace,
    name: w.name,
    for: w.for as WaypointFor,
    identity: w.identity,
    service: w.service,
  };
}

/*
 * A proxy's side of the config stream: each update is decoded into domain types with every entry
 * checked. An entry that does not check out is left out and described; the rest applies, so a bad
 * workload never takes the rest of the config down.
 */

function decodeWorkload(w: WireWorkload, problems: string[]): Workload | undefined {
  const bad = (why: string): undefined => {
    problems.push(`workload ${w.namespace}/${w.name} (${w.uid}): ${why}; ignored`);
    return undefined;
  };
  if (w.uid === '' || w.name === '' || w.namespace === '') return bad('uid, name and namespace are required');
  const ips = w.ips.filter((ip) => isIP(ip) !== 0);
  if (ips.length !== w.ips.length) return bad(`an address is not an IP (${w.ips.join(', ')})`);
  if (SpiffeId.tryParse(w.identity) === undefined)
    return bad(`identity ${JSON.stringify(w.identity)} is not a SPIFFE id`);
  return {
    uid: w.uid,
    namespace: w.namespace,
    name: w.name,
    serviceAccount: w.service_account,
    node: w.node,
    ips,
    labels: w.labels,
    app: w.app,
    workloadName: w.workload_name,
    captured: w.captured,
    identity: w.identity,
    ready: w.ready,
    ...(waypointRef(w.waypoint) === undefined ? {} : { waypoint: waypointRef(w.waypoint)! }),
  };
}

function decodeService(s: WireService, problems: string[]): MeshService | undefined {
  const bad = (why: string): undefined => {
    problems.push(`service ${s.namespace}/${s.name}: ${why}; ignored`);
    return undefined;
  };
  if (s.vips.some((ip) => isIP(ip) === 0)) return bad(`a VIP is not an IP (${s.vips.join(', ')})`);
  const badPort = s.ports.find((p) => !(p.port >= 1 && p.port <= 65535));
  if (badPort !== undefined) return bad(`port ${badPort.port} is not a port number`);
  const badProtocol = s.ports.find(
    (p) => p.protocol !== '' && !(PROTOCOLS as readonly string[]).includes(p.protocol),
  );
  if (badProtocol !== undefined)
    return bad(`protocol ${JSON.stringify(badProtocol.protocol)} is not TCP, UDP or SCTP`);
  let trafficPolicy: AppliedTrafficPolicy | undefined;
  if (s.traffic_policy !== null && s.traffic_policy !== undefined) {
    try {
      trafficPolicy = decodeTrafficPolicy(s.traffic_policy);
    } catch (err) {
      return bad(`traffic policy: ${(err as Error).message}`);
    }
  }
  const endpoints: ServiceEndpoint[] = s.endpoints.map((e) => ({
    workloadUid: e.workload_uid,
    ready: e.ready,
    ports: e.ports,
  }));
  return {
    namespace: s.namespace,
    name: s.name,
    hostname: s.hostname,
    vips: s.vips,
    labels: s.labels,
    ports: s.ports.map((p) => ({
      ...(p.name === '' ? {} : { name: p.name }),
      port: p.port,
      targetPort: /^[0-9]+$/.test(p.target_port) ? Number(p.target_port) : p.target_port,
      protocol: (p.protocol === '' ? 'TCP' : p.protocol) as Protocol,
      ...(p.app_protocol === '' ? {} : { appProtocol: p.app_protocol }),
    })),
    endpoints,
    ...(waypointRef(s.waypoint) === undefined ? {} : { waypoint: waypointRef(s.waypoint)! }),
    ...(waypointRef(s.required_waypoint) === undefined
      ? {}
      : { requiredWaypoint: waypointRef(s.required_waypoint)! }),
    ...(trafficPolicy === undefined ? {} : { trafficPolicy }),
  };
}

/** Applies an update to what a proxy had. */
export function applyUpdate(
  current: PushedConfig | undefined,
  u: ConfigUpdate,
): { config: PushedConfig; problems: string[] } {
  const problems: string[] = [];
  const base = u.full || current === undefined ? undefined : current;
  const workloads = new Map(base?.view.workloads.map((w) => [w.uid, w]) ?? []);
  const services = new Map(base?.view.services.map((s) => [serviceKey(s), s]) ?? []);
  const policies = new Map<string, MeshPolicy>(base?.policies ?? []);
  const routes = new Map<string, MeshRoute>(base?.routes ?? []);
  for (const k of u.removed_routes ?? []) routes.delete(k);
  for (const r of u.routes ?? []) {
    const d = decodeRoute(r);
    if ('route' in d) routes.set(r.key, d.route);
    else {
      routes.delete(r.key);
      problems.push(d.problem);
    }
  }
  for (const k of u.removed_workloads) workloads.delete(k);
  for (const k of u.removed_services) services.delete(k);
  for (const k of u.removed_policies) policies.delete(k);
  for (const w of u.workloads) {
    const d = decodeWorkload(w, problems);
    if (d !== undefined) workloads.set(d.uid, d);
  }
  for (const s of u.services) {
    const d = decodeService(s, problems);
    if (d !== undefined) services.set(serviceKey(d), d);
  }
  for (const p of u.policies) {
    const d = decodePolicy(p);
    if ('policy' in d) policies.set(p.key, d.policy);
    else {
      // A policy that cannot be read must not linger in its old form either.
      policies.delete(p.key);
      problems.push(d.problem);
    }
  }
  const nodes: readonly MeshNode[] =
    u.full || u.nodes_changed || base === undefined
      ? u.nodes.filter((n) => n.ips.every((ip) => isIP(ip) !== 0)).map((n) => ({ name: n.name, ips: n.ips }))
      : base.view.nodes;
  const waypoints: readonly MeshWaypoint[] =
    u.full || u.waypoints_changed || base === undefined
      ? (u.waypoints ?? []).flatMap((w) => decodeWaypoint(w, problems) ?? [])
      : base.view.waypoints;
  const view: MeshView = {
    revision: u.version,
    trustDomain: u.trust_domain,
    nodes,
    workloads: [...workloads.values()],
    services: [...services.values()],
    waypoints,
  };
  const trustBundle = u.trust_bundle.length > 0 ? u.trust_bundle : (base?.trustBundle ?? []);
  const rejections = u.full || u.rejections_changed || base === undefined ? u.rejections : base.rejections;
  return { config: { view, trustBundle, rejections, policies, routes }, problems };
}
