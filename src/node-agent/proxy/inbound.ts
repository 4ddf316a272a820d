import type { ServerHttp2Stream } from 'node:http2';
import { connect } from 'node:net';
import type { HboneRequest } from '../../hbone/server.js';
import { authorize, type ConnAttrs } from '../../mesh/authz.js';
import type { MeshIndex } from '../../mesh/mesh-index.js';
import { type ActivePolicies, principalOf } from '../../mesh/policy-set.js';
import { ResponseFlag } from '../../mesh/route.js';
import type { ConnectionRecorder } from './connection-record.js';
import { endStream, resetSocket, splice } from './splice.js';

export interface InboundDeps {
  readonly node: string;
  readonly mesh: () => MeshIndex | undefined;
  readonly policies: () => ActivePolicies;
  readonly recorder: ConnectionRecorder;
}

/**
 * One inbound HBONE CONNECT on this node: the authority must be a meshed workload on this node and the
 * one whose identity this connection's certificate proved (no confused deputy); then the pod is dialled,
 * and only when that succeeded does the client get 200. 400 for a bad target, 503 when the pod cannot
 * be reached. Metrics and the access line are recorded as the destination reporter.
 */
export function handleInbound(deps: InboundDeps, req: HboneRequest, stream: ServerHttp2Stream): void {
  const source = req.forwardedFor ?? req.tlsPeer;
  const rec = deps.recorder.start('inbound', source);
  rec.securityPolicy = 'mutual_tls';
  rec.srcIdentity = req.peer.toString();
  const mesh = deps.mesh();
  const claimed = req.forwardedFor === undefined ? undefined : mesh?.workloadByIp(req.forwardedFor.ip);
  // The forwarded address names a workload only if that workload has the identity the client proved.
  if (claimed !== undefined && claimed.identity === rec.srcIdentity) rec.srcWorkload = claimed;
  const target = req.target!;
  rec.originalDst = target;
  rec.target = target;
  const host = /host="?([^";,]+)"?/.exec(String(req.headers.forwarded ?? ''))?.[1];
  const service = host === undefined ? undefined : mesh?.serviceByHost(host);
  if (service !== undefined) rec.service = service;
  const dst = mesh?.workloadByIp(target.ip);
  const refuse = (status: number, flag: ResponseFlag, reason: string): void => {
    rec.flag = flag;
    rec.reason = reason;
    if (!stream.destroyed) stream.respond({ ':status': status }, { endStream: true });
    rec.finish({ received: 0, sent: 0 });
  };
  if (mesh === undefined) {
    refuse(503, ResponseFlag.NoRoute, 'no mesh configuration yet');
    return;
  }
  if (dst === undefined || dst.node !== deps.node || !dst.captured) {
    refuse(400, ResponseFlag.NoRoute, `${req.authority} is not a meshed workload on ${deps.node}`);
    return;
  }
  rec.dstWorkload = dst;
  rec.dstIdentity = dst.identity;
  if (dst.identity !== req.serverIdentity) {
    refuse(
      400,
      ResponseFlag.NoRoute,
      `${req.authority} is ${dst.identity}, but this connection was made for ${req.serverIdentity}`,
    );
    return;
  }
  // L4 authorization, at the destination, with the identity the client proved.
  const attrs: ConnAttrs = {
    srcPrincipal: principalOf(rec.srcIdentity),
    srcIp: source.ip,
    dstIp: target.ip,
    dstPort: target.port,
    dst: { namespace: dst.namespace, labels: dst.labels },
  };
  const decision = authorize(deps.policies().authz, attrs);
  if (!decision.allowed) {
    refuse(401, ResponseFlag.Denied, decision.reason);
    return;
  }
  rec.attrs = attrs;
  const upstream = connect({ host: target.ip, port: target.port, allowHalfOpen: true, noDelay: true });
  const onConnectError = (err: Error): void =>
    refuse(503, ResponseFlag.UpstreamFailure, `connect to ${req.authority}: ${err.message}`);
  upstream.once('error', onConnectError);
  upstream.once('connect', () => {
    upstream.off('error', onConnectError);
    if (stream.destroyed) {
      upstream.destroy();
      return refuse(503, ResponseFlag.UpstreamFailure, 'the client went away');
    }
    stream.respond({ ':status': 200 });
    rec.abort = (reason) => {
      rec.reason = reason;
      upstream.resetAndDestroy();
      if (!stream.writableEnded) stream.end();
    };
    rec.established();
    // The socket to the pod counts the bytes: what it wrote came from the client, what it read goes back.
    splice(stream, upstream, { down: endStream, up: resetSocket }, (err) =>
      rec.finish({ received: upstream.bytesWritten, sent: upstream.bytesRead }, err),
    );
  });
}
