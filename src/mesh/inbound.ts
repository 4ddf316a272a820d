import { canonicalIp, hostPort } from '../net/ip.js';
import { type ActivePolicies, principalOf } from '../policy/active.js';
import type { MtlsMode } from '../policy/types.js';
import type { Outcome } from '../telemetry/outcomes.js';
import { type AuthzDecision, authorize, type ConnAttrs, mtlsMode } from './authz.js';
import type { MeshIndex } from './mesh-index.js';
import type { Workload } from './view.js';
import { decideWaypointRequired, type InboundPeer, requiredWaypoints } from './waypoint-required.js';

/** A connection arriving at a node proxy for one of its pods. */
export interface InboundRequest {
  /** The node of the proxy deciding. */
  readonly node: string;
  /**
   * How it arrived: an HBONE CONNECT, with the peer identity the client's certificate proved and the
   * identity this proxy presented (chosen by SNI), or plaintext captured on its way to the pod.
   */
  readonly via:
    | { readonly kind: 'hbone'; readonly peer: string; readonly serverIdentity: string }
    | { readonly kind: 'plaintext' };
  /** The original client (HBONE: from `forwarded`, else the TLS peer). */
  readonly source: { readonly ip: string; readonly port: number };
  readonly target: { readonly ip: string; readonly port: number };
}

export type InboundDecision =
  | {
      readonly allowed: true;
      readonly dst: Workload;
      readonly attrs: ConnAttrs;
      readonly authz: AuthzDecision;
      /** Why a waypoint the destination requires let it in (src/mesh/waypoint-required.ts). */
      readonly waypoint?: string;
      /** Plaintext only: the mTLS mode that let it in. */
      readonly mtls?: { readonly mode: MtlsMode; readonly from?: string };
    }
  | {
      readonly allowed: false;
      readonly outcome: Outcome;
      readonly reason: string;
      readonly dst?: Workload;
      readonly authz?: AuthzDecision;
      /** Set when a waypoint the destination requires refused it (the same text as `reason`). */
      readonly waypoint?: string;
      readonly mtls?: { readonly mode: MtlsMode; readonly from?: string };
    };

/**
 * Whether a node proxy lets an inbound connection through to its pod, decided from its view of the
 * mesh and its policies alone. Both inbound listeners (HBONE on 15008, captured plaintext on 15006)
 * carry out this decision, and `ambit explain` shows it.
 * - HBONE: the target must be a meshed workload on this node, and the one whose identity this
 *   connection's certificate carries (no confused deputy); then authorization, with the peer identity.
 * - Plaintext: the target must be a workload on this node; STRICT mTLS refuses it; then authorization,
 *   with no peer identity.
 * Before authorization, a destination whose Services require a waypoint takes only that waypoint's
 * identity (and, in plaintext, the node's own health checks).
 */
export function decideInbound(
  mesh: MeshIndex | undefined,
  policies: ActivePolicies,
  req: InboundRequest,
): InboundDecision {
  if (mesh === undefined)
    return { allowed: false, outcome: 'no-config', reason: 'no mesh configuration yet' };
  const authority = hostPort(req.target.ip, req.target.port);
  const dst = mesh.workloadByIp(req.target.ip);
  const sel = dst === undefined ? undefined : { namespace: dst.namespace, labels: dst.labels };
  if (req.via.kind === 'hbone') {
    if (dst === undefined || sel === undefined || dst.node !== req.node || !dst.captured)
      return {
        allowed: false,
        outcome: 'no-route',
        reason: `${authority} is not a meshed workload on ${req.node}`,
      };
    if (dst.identity !== req.via.serverIdentity) {
      return {
        allowed: false,
        outcome: 'wrong-destination-identity',
        reason: `${authority} is ${dst.identity}, but this connection was made for ${req.via.serverIdentity}`,
        dst,
      };
    }
    const attrs: ConnAttrs = {
      srcPrincipal: principalOf(req.via.peer),
      srcIp: req.source.ip,
      dstIp: req.target.ip,
      dstPort: req.target.port,
      dst: sel,
    };
    const wp = waypointCheck(mesh, dst, { kind: 'hbone', identity: req.via.peer });
    if (!wp.allowed)
      return { allowed: false, outcome: 'denied', reason: wp.reason, dst, waypoint: wp.reason };
    const authz = authorize(policies.authz, attrs);
    return authz.allowed
      ? { allowed: true, dst, attrs, authz, ...(wp.reason === undefined ? {} : { waypoint: wp.reason }) }
      : { allowed: false, outcome: 'denied', reason: authz.reason, dst, authz };
  }
  if (dst === undefined || sel === undefined || dst.node !== req.node)
    return { allowed: false, outcome: 'no-route', reason: `${authority} is not a workload on ${req.node}` };
  const mtls = mtlsMode(policies.peerAuth, sel, req.target.port);
  if (mtls.mode === 'STRICT') {
    return {
      allowed: false,
      outcome: 'denied',
      reason: `plaintext from outside the mesh is refused: mTLS is STRICT for ${dst.namespace}/${dst.name}${mtls.from === undefined ? '' : ` (PeerAuthentication ${mtls.from})`}`,
      dst,
      mtls,
    };
  }
  const attrs: ConnAttrs = { srcIp: req.source.ip, dstIp: req.target.ip, dstPort: req.target.port, dst: sel };
  const fromNode = mesh.nodeAddresses(dst.node).some((ip) => canonicalIp(ip) === canonicalIp(req.source.ip));
  const wp = waypointCheck(mesh, dst, { kind: 'plaintext', fromNode });
  if (!wp.allowed)
    return { allowed: false, outcome: 'denied', reason: wp.reason, dst, waypoint: wp.reason, mtls };
  const authz = authorize(policies.authz, attrs);
  return authz.allowed
    ? { allowed: true, dst, attrs, authz, mtls, ...(wp.reason === undefined ? {} : { waypoint: wp.reason }) }
    : { allowed: false, outcome: 'denied', reason: authz.reason, dst, authz, mtls };
}

function waypointCheck(mesh: MeshIndex, dst: Workload, peer: InboundPeer) {
  const required = requiredWaypoints(mesh.servicesOf(dst.uid), (ref) => mesh.waypoint(ref)?.identity);
  return decideWaypointRequired(`${dst.namespace}/${dst.name}`, required, peer);
}
