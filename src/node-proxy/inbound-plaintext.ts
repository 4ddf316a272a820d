import { connect, createServer, type Server, type Socket } from 'node:net';
import { authorize } from '../mesh/authz.js';
import { decideInbound } from '../mesh/inbound.js';
import type { MeshIndex } from '../mesh/mesh-index.js';
import { canonicalIp } from '../net/ip.js';
import { resetSocket, splice } from '../net/splice.js';
import type { ActivePolicies } from '../policy/active.js';
import type { ConnectionRecorder } from '../telemetry/connection-record.js';
import type { Outcome } from '../telemetry/outcomes.js';

export interface PlaintextInboundDeps {
  readonly node: string;
  readonly mesh: () => MeshIndex | undefined;
  readonly policies: () => ActivePolicies;
  readonly recorder: ConnectionRecorder;
}

/**
 * The captured-plaintext listener (15006, transparent): a connection from outside the mesh to an
 * enrolled pod, steered here by the node's TPROXY rules, arrives with the pod's address and port as
 * its local address. `decideInbound` decides (STRICT refuses it; otherwise authorization with no peer
 * identity); an allowed connection is forwarded to the pod, a refused one reset. Either way it is counted.
 */
export function createPlaintextInboundServer(deps: PlaintextInboundDeps): Server {
  return createServer({ allowHalfOpen: true, noDelay: true }, (socket: Socket) => {
    socket.on('error', () => undefined);
    const src = { ip: canonicalIp(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
    const dstAddr = { ip: canonicalIp(socket.localAddress ?? ''), port: socket.localPort ?? 0 };
    const rec = deps.recorder.start('inbound', src);
    rec.securityPolicy = 'none';
    rec.originalDst = dstAddr;
    rec.target = dstAddr;
    const refuse = (outcome: Outcome, reason: string): void => {
      rec.refuse(outcome, reason);
      socket.resetAndDestroy();
    };
    const mesh = deps.mesh();
    if (mesh !== undefined) {
      const w = mesh.workloadByIp(src.ip);
      if (w !== undefined) rec.srcWorkload = w;
    }
    const d = decideInbound(mesh, deps.policies(), {
      node: deps.node,
      via: { kind: 'plaintext' },
      source: src,
      target: dstAddr,
    });
    if (d.dst !== undefined) rec.dstWorkload = d.dst;
    if (!d.allowed) return refuse(d.outcome, d.reason);
    const attrs = d.attrs;
    rec.recheck = () => authorize(deps.policies().authz, attrs);
    socket.pause();
    const upstream = connect({ host: dstAddr.ip, port: dstAddr.port, allowHalfOpen: true, noDelay: true });
    upstream.once('error', (err) =>
      refuse('upstream-failure', `connect to ${dstAddr.ip}:${dstAddr.port}: ${err.message}`),
    );
    upstream.once('connect', () => {
      upstream.removeAllListeners('error');
      rec.abort = (reason) => {
        rec.reason = reason;
        upstream.resetAndDestroy();
        socket.resetAndDestroy();
      };
      rec.established();
      splice(socket, upstream, { down: resetSocket, up: resetSocket }, (err) =>
        rec.finish({ received: socket.bytesRead, sent: socket.bytesWritten }, err),
      );
      socket.resume();
    });
  });
}
