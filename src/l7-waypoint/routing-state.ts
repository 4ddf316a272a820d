import type { ServicePort } from '../config/kube-types.js';
import type { MeshRoute } from '../gateway-api/types.js';
import type { WaypointRef } from '../gateway-api/waypoint.js';
import { compilePortRoutes, type PortRoutes, serviceEndpoints } from '../mesh/l7-route.js';
import type { MeshIndex } from '../mesh/mesh-index.js';
import type { MeshService, Workload } from '../mesh/view.js';
import { isV6 } from '../net/ip.js';
import type { AuthorizationPolicy, RequestAuthentication } from '../policy/types.js';
import type { UpstreamEndpoint } from './upstream.js';

/**
 * What the waypoint derives from one config version, lazily and once: the compiled routes of each
 * Service port per client namespace, and the endpoints of each backend. A new config makes a new one.
 */
export class RoutingState {
  private readonly portRoutes = new Map<string, PortRoutes>();
  private readonly endpointLists = new Map<string, readonly UpstreamEndpoint[]>();

  constructor(
    readonly mesh: MeshIndex,
    readonly routes: ReadonlyMap<string, MeshRoute>,
    readonly self: WaypointRef,
    /** The AuthorizationPolicies with targetRefs: the ones a waypoint enforces. */
    readonly authz: readonly AuthorizationPolicy[] = [],
    /** Every RequestAuthentication: the waypoint decides which apply to a request (src/mesh/authn-jwt.ts). */
    readonly requestAuthn: readonly RequestAuthentication[] = [],
  ) {}

  /** Whether this waypoint serves the Service (the Service's traffic is bound to it). */
  serves(s: { readonly waypoint?: WaypointRef }): boolean {
    return s.waypoint?.namespace === this.self.namespace && s.waypoint.name === this.self.name;
  }

  routesFor(service: MeshService, port: ServicePort, clientNamespace: string | undefined): PortRoutes {
    const key = `${service.namespace}/${service.name}:${port.port}:${clientNamespace ?? ''}`;
    let r = this.portRoutes.get(key);
    if (r === undefined) {
      r = compilePortRoutes(this.routes.values(), service, port, clientNamespace);
      this.portRoutes.set(key, r);
    }
    return r;
  }

  /** The ready endpoints of a Service port, addressed in the family of the original destination. */
  endpoints(service: MeshService, port: number, v6: boolean): readonly UpstreamEndpoint[] {
    const key = `${service.namespace}/${service.name}:${port}:${v6 ? 6 : 4}`;
    let list = this.endpointLists.get(key);
    if (list === undefined) {
      list = serviceEndpoints(this.mesh, service, port).flatMap((e) => {
        const w = this.mesh.workload(e.workloadUid);
        const ep = w === undefined ? undefined : this.endpointOf(w, e.targetPort, v6);
        return ep === undefined ? [] : [ep];
      });
      this.endpointLists.set(key, list);
    }
    return list;
  }

  /**
   * How the waypoint dials a workload: HBONE to its node when it is in the mesh, plain TCP when it is
   * not; undefined for a meshed workload whose node's address is unknown (never plaintext instead).
   */
  endpointOf(w: Workload, port: number, v6: boolean): UpstreamEndpoint | undefined {
    const ip = w.ips.find((a) => isV6(a) === v6) ?? w.ips[0]!;
    const nodeIps = this.mesh.nodeAddresses(w.node);
    const nodeIp = nodeIps.find((a) => isV6(a) === isV6(ip)) ?? nodeIps[0];
    const key = ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
    if (w.captured && nodeIp === undefined) return undefined;
    return {
      key,
      ip,
      port,
      workload: w,
      ...(w.captured && nodeIp !== undefined ? { hbone: { nodeIp, identity: w.identity } } : {}),
    };
  }
}
