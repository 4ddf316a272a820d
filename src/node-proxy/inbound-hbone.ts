import type { ServerHttp2Stream } from 'node:http2';
import { connect } from 'node:net';
import type { HboneRequest } from '../hbone/server.js';
import { authorize } from '../mesh/authz.js';
import { decideInbound } from '../mesh/inbound.js';
import type { MeshIndex } from '../mesh/mesh-index.js';
import { endStream, resetSocket, splice } from '../net/splice.js';
import type { ActivePolicies } from '../policy/active.js';
import type { ConnectionRecorder } from '../telemetry/connection-record.js';
import { type Outcome, outcomeInfo } from '../telemetry/outcomes.js';

export interface InboundDeps {
  readonly node: string;
  readonly mesh: () => MeshIndex | undefined;
  readonly policies: () => ActivePolicies;
  readonly recorder: ConnectionRecorder;
}

/**
 * One inbound HBONE CONNECT on this node: `decideInbound` says whether it may reach its pod; then the
 * pod is dialled, and only when that succeeded does the client get 200. A refusal answers with the
 * outcome's HBONE status. Metrics and the access line are recorded as the destination reporter.
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
  const refuse = (outcome: Outcome, reason: string): void => {
    if (!stream.destroyed)
      stream.respond({ ':status': outcomeInfo(outcome).hboneStatus }, { endStream: true });
    rec.refuse(outcome, reason);
  };
  const d = decideInbound(mesh, deps.policies(), {
    node: deps.node,
    via: { kind: 'hbone', peer: rec.srcIdentity, serverIdentity: req.serverIdentity },
    source,
    target,
  });
  if (d.dst !== undefined) {
    rec.dstWorkload = d.dst;
    rec.dstIdentity = d.dst.identity;
  }
  if (!d.allowed) {
    refuse(d.outcome, d.reason);
    return;
  }
  const attrs = d.attrs;
  rec.recheck = () => authorize(deps.policies().authz, attrs);
  const upstream = connect({ host: target.ip, port: target.port, allowHalfOpen: true, noDelay: true });
  const onConnectError = (err: Error): void =>
    refuse('upstream-failure', `connect to ${req.authority}: ${err.message}`);
  upstream.once('error', onConnectError);
  upstream.once('connect', () => {
    upstream.off('error', onConnectError);
    if (stream.destroyed) {
      upstream.destroy();
      return refuse('upstream-failure', 'the client went away');
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
