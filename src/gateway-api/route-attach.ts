import type { GrpcRoute, HttpRoute, MeshRoute, ParentRef } from './types.js';

/*
 * Which routes apply to a request, the GAMMA way (GEP-1294): a route attaches to a Service by naming
 * it in a parentRef, and applies to the traffic addressed to that Service (its VIP) on the port the
 * client dialled. The Host header plays no part, and neither do the route's `hostnames`: GEP-1294
 * says a mesh SHOULD NOT infer anything from them.
 */

/** A Service by name, as a route's parentRef names it. */
export interface ServiceRef {
  readonly namespace: string;
  readonly name: string;
}

/** Where a request is going: the Service (its VIP) and the Service port the client dialled. */
export interface RouteTarget extends ServiceRef {
  readonly port: number;
  /** The name of that Service port, when it has one: a parentRef's `sectionName` selects by it. */
  readonly portName?: string;
}

/** The routes that decide a request to one Service port, from one client namespace. */
export interface AttachedRoutes {
  readonly http: readonly HttpRoute[];
  readonly grpc: readonly GrpcRoute[];
  /** true when these are consumer routes of the client's namespace */
  readonly consumer: boolean;
}

type RouteLike = Pick<HttpRoute, 'namespace' | 'parentRefs'>;

/** A parentRef to a core Service (group `""`, kind `Service`): the GAMMA attachment. */
export function isServiceParent(ref: ParentRef): boolean {
  return ref.group === '' && ref.kind === 'Service';
}

/** The parentRefs of a route that name this Service, whatever port they select (for route status). */
export function routeParentsFor(route: RouteLike, service: ServiceRef): readonly ParentRef[] {
  return route.parentRefs.filter(
    (ref) =>
      isServiceParent(ref) &&
      ref.name === service.name &&
      (ref.namespace ?? route.namespace) === service.namespace,
  );
}

/**
 * Whether one parentRef of a route selects this Service port. `port` unset selects every port of the
 * Service (GEP-1294 "Ports"); `sectionName` is the Service port's name (ParentReference.SectionName:
 * "Service: Port name"), and when both are set the port must match both (a port with no name matches
 * no sectionName).
 */
export function parentRefSelects(ref: ParentRef, routeNamespace: string, target: RouteTarget): boolean {
  return (
    isServiceParent(ref) &&
    ref.name === target.name &&
    (ref.namespace ?? routeNamespace) === target.namespace &&
    (ref.port === undefined || ref.port === target.port) &&
    (ref.sectionName === undefined || ref.sectionName === target.portName)
  );
}

function attaches(route: RouteLike, target: RouteTarget): boolean {
  return route.parentRefs.some((ref) => parentRefSelects(ref, route.namespace, target));
}

/**
 * The routes that apply to a request from `clientNamespace` to `target`:
 * - producer routes (in the Service's namespace) apply to clients from every namespace;
 * - consumer routes (in another namespace) apply only to clients of the route's own namespace, and
 *   when that namespace has any for this Service port they replace the producer routes for its
 *   clients (GEP-1294 "Multiple routes for a Service"; conformance MeshConsumerRoute). A client whose
 *   namespace is unknown gets the producer routes.
 * - When GRPCRoutes and HTTPRoutes both attach to the same Service port, only the GRPCRoutes apply
 *   (GEP-1294 "Route types": GRPCRoute wins; the HTTPRoutes are Conflicted). This is decided within
 *   the group that applies, so a consumer HTTPRoute still replaces producer GRPCRoutes.
 * Empty lists mean no route is attached: the request goes to the Service as it is.
 */
export function attachedRoutes(
  routes: Iterable<MeshRoute>,
  target: RouteTarget,
  clientNamespace: string | undefined,
): AttachedRoutes {
  const producer: MeshRoute[] = [];
  const consumer: MeshRoute[] = [];
  for (const r of routes) {
    if (!attaches(r.route, target)) continue;
    if (r.route.namespace === target.namespace) producer.push(r);
    else if (r.route.namespace === clientNamespace) consumer.push(r);
  }
  const chosen = consumer.length > 0 ? consumer : producer;
  const http: HttpRoute[] = [];
  const grpc: GrpcRoute[] = [];
  for (const r of chosen) {
    if (r.kind === 'HTTPRoute') http.push(r.route);
    else grpc.push(r.route);
  }
  return { http: grpc.length > 0 ? [] : http, grpc, consumer: consumer.length > 0 };
}
