import type { ClusterStore } from '../cluster/store.js';
import {
  type GatewayStatus,
  gatewayStatus,
  type RouteStatus,
  rejectedGatewayStatus,
  rejectedRouteStatus,
  routeStatus,
} from '../gateway-api/status.js';
import type { Gateway, MeshRoute } from '../gateway-api/types.js';
import { GATEWAY_NAME_LABEL, isWaypoint } from '../gateway-api/waypoint.js';
import { checkWaypoint, waypointReplicas } from '../gateway-api/waypoint-render.js';
import { bindWaypoint, meshWaypointOf, type WaypointLookup, waypointKey } from '../mesh/waypoints.js';

/** The status of the Gateway API objects Ambit owns, as `ambit waypoint status` shows it. */
export interface MeshStatus {
  readonly gateways: readonly {
    readonly namespace: string;
    readonly name: string;
    readonly status: GatewayStatus;
  }[];
  readonly routes: readonly {
    readonly kind: MeshRoute['kind'];
    readonly namespace: string;
    readonly name: string;
    readonly status: RouteStatus;
    /** Set when the route could not be read at all (its parents are unknown). */
    readonly rejected?: string;
  }[];
}

/**
 * Computes the status of every waypoint Gateway and every route from the cluster as the control plane
 * reads it (a pure function of the store): what a controller writes to the objects' `status` on
 * Kubernetes. The StatusWriter writes it there (status-writer.ts); /debug/status serves it for the CLI.
 */
export function meshStatus(store: ClusterStore, trustDomain: string): MeshStatus {
  const gateways = new Map<string, Gateway>();
  const routes: MeshRoute[] = [];
  const out: { gateways: MeshStatus['gateways'][number][]; routes: MeshStatus['routes'][number][] } = {
    gateways: [],
    routes: [],
  };
  for (const o of store.config.values()) {
    const where = o.source === undefined ? '' : ` (${o.source.file}:${o.source.line})`;
    const errors = o.issues.filter((i) => i.severity === 'error');
    if (o.parsed === undefined || errors.length > 0) {
      const reason = errors.map((i) => `${i.path}: ${i.message}`).join('; ') + where;
      if (o.kind === 'Gateway')
        out.gateways.push({ namespace: o.namespace, name: o.name, status: rejectedGatewayStatus(reason) });
      if (o.kind === 'HTTPRoute' || o.kind === 'GRPCRoute')
        out.routes.push({
          kind: o.kind,
          namespace: o.namespace,
          name: o.name,
          status: rejectedRouteStatus(o.kind, [], reason),
          rejected: reason,
        });
      continue;
    }
    const p = o.parsed;
    if (p.kind === 'Gateway') gateways.set(`${o.namespace}/${o.name}`, p.value);
    else if (p.kind === 'HTTPRoute') routes.push({ kind: 'HTTPRoute', route: p.value });
    else if (p.kind === 'GRPCRoute') routes.push({ kind: 'GRPCRoute', route: p.value });
  }
  const waypoints = new Map(
    [...gateways.values()].filter(isWaypoint).map((g) => [waypointKey(g), meshWaypointOf(g, trustDomain)]),
  );
  const lookup: WaypointLookup = (ref) => waypoints.get(waypointKey(ref));
  for (const gw of gateways.values()) {
    if (!isWaypoint(gw)) continue;
    const pods = [...store.pods.values()].filter(
      (p) => p.namespace === gw.namespace && p.labels[GATEWAY_NAME_LABEL] === gw.name && !p.terminating,
    );
    const svc = store.services.get(`${gw.namespace}/${gw.name}`);
    const { replicas } = waypointReplicas(gw.annotations);
    out.gateways.push({
      namespace: gw.namespace,
      name: gw.name,
      status: gatewayStatus(gw, {
        readyReplicas: pods.filter((p) => p.ready && p.phase === 'Running').length,
        replicas,
        ...(svc?.vips[0] === undefined ? {} : { address: svc.vips[0] }),
        problems: checkWaypoint(gw).problems,
      }),
    });
  }
  for (const r of routes) {
    out.routes.push({
      kind: r.kind,
      namespace: r.route.namespace,
      name: r.route.name,
      status: routeStatus(r, {
        service: (ns, name) => {
          const s = store.services.get(`${ns}/${name}`);
          return s === undefined
            ? undefined
            : {
                ports: s.ports.map((p) => ({
                  port: p.port,
                  ...(p.name === undefined ? {} : { name: p.name }),
                })),
              };
        },
        waypointOf: (ns, name) => {
          const s = store.services.get(`${ns}/${name}`);
          if (s === undefined) return undefined;
          const b = bindWaypoint(s, store.namespaces.get(ns)?.labels, 'service', lookup);
          return b.waypoint ?? (b.problem === undefined ? undefined : { problem: b.problem });
        },
        gateway: (ns, name) => gateways.get(`${ns}/${name}`),
        // No ReferenceGrant yet; a backend that is the route's own parent Service needs none (a
        // consumer route to the producer's Service: the MeshConsumerRoute conformance test).
        referenceAllowed: (x) =>
          r.route.parentRefs.some(
            (p) =>
              p.group === '' && p.kind === 'Service' && p.name === x.name && (p.namespace ?? x.from) === x.to,
          ),
        routes,
      }),
    });
  }
  const byName = (a: { namespace: string; name: string }, b: { namespace: string; name: string }): number =>
    `${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1;
  return { gateways: out.gateways.sort(byName), routes: out.routes.sort(byName) };
}
