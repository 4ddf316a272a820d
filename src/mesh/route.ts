import { servicePortKey } from '../config/kube-types.js';
import { isV6 } from '../net/ip.js';
import type { Outcome } from '../telemetry/outcomes.js';
import type { MeshIndex } from './mesh-index.js';
import type { MeshService, Workload } from './view.js';

export interface Target {
  readonly ip: string;
  readonly port: number;
}

export type OutboundRoute =
  | {
      readonly kind: 'service';
      readonly service: MeshService;
      readonly endpoint: Workload;
      readonly target: Target;
    }
  | { readonly kind: 'workload'; readonly workload: Workload; readonly target: Target }
  | { readonly kind: 'passthrough'; readonly target: Target }
  | {
      readonly kind: 'refuse';
      readonly outcome: Outcome;
      readonly reason: string;
      readonly service?: MeshService;
    };

/** Chooses one of the candidates for a service (round-robin in the proxy; deterministic in tests). */
export type Picker = (serviceKey: string, candidates: readonly Workload[]) => Workload | undefined;

/**
 * Where a redirected connection goes, decided from the proxy's view of the mesh alone:
 * - a Service VIP: an endpoint that is ready and serves the port (same address family as the VIP);
 * - a pod address: that pod;
 * - anything else: outside the mesh, straight through;
 * - a VIP port the Service does not have, or a Service with no ready endpoint: refused.
 */
export function routeOutbound(index: MeshIndex, dst: Target, pick: Picker): OutboundRoute {
  const service = index.serviceByVip(dst.ip);
  if (service !== undefined) {
    const port = service.ports.find((p) => p.port === dst.port && p.protocol === 'TCP');
    if (port === undefined) {
      return {
        kind: 'refuse',
        outcome: 'no-route',
        reason: `service ${service.hostname} has no TCP port ${dst.port}`,
        service,
      };
    }
    const key = servicePortKey(port);
    const v6 = isV6(dst.ip);
    const candidates: { w: Workload; port: number }[] = [];
    for (const e of service.endpoints) {
      const target = e.ports[key];
      const w = index.workload(e.workloadUid);
      if (!e.ready || target === undefined || w === undefined) continue;
      candidates.push({ w, port: target });
    }
    const chosen = pick(
      `${service.namespace}/${service.name}:${dst.port}`,
      candidates.map((c) => c.w),
    );
    const match = candidates.find((c) => c.w === chosen);
    if (chosen === undefined || match === undefined) {
      return {
        kind: 'refuse',
        outcome: 'no-healthy-upstream',
        reason: `service ${service.hostname} has no ready endpoint for port ${dst.port}`,
        service,
      };
    }
    const ip = chosen.ips.find((a) => isV6(a) === v6) ?? chosen.ips[0]!;
    return { kind: 'service', service, endpoint: chosen, target: { ip, port: match.port } };
  }
  const workload = index.workloadByIp(dst.ip);
  if (workload !== undefined) return { kind: 'workload', workload, target: dst };
  return { kind: 'passthrough', target: dst };
}

/** How the proxy carries a routed connection. */
export type Transport =
  | { readonly kind: 'hbone'; readonly nodeIp: string; readonly dstIdentity: string }
  | { readonly kind: 'plain' };

/**
 * Meshed destinations get HBONE to their node's proxy, also on this node (over the node's own
 * address), so that every meshed hop is mutual TLS with the same inbound checks; anything else stays
 * plain TCP.
 */
export function transportFor(index: MeshIndex, route: OutboundRoute): Transport {
  if (route.kind !== 'service' && route.kind !== 'workload') return { kind: 'plain' };
  const dst = route.kind === 'service' ? route.endpoint : route.workload;
  if (!dst.captured) return { kind: 'plain' };
  const nodeIp = index.nodeAddresses(dst.node)[0];
  if (nodeIp === undefined) return { kind: 'plain' };
  return { kind: 'hbone', nodeIp, dstIdentity: dst.identity };
}
