import { connect, createServer, type Server, type Socket } from 'node:net';
import { authorize, type ConnAttrs, mtlsMode } from '../../mesh/authz.js';
import { canonicalIp } from '../../mesh/ip.js';
import type { MeshIndex } from '../../mesh/mesh-index.js';
import type { ActivePolicies } from '../../mesh/policy-set.js';
import { ResponseFlag } from '../../mesh/route.js';
import type { ConnectionRecorder } from './connection-record.js';
import { resetSocket, splice } from './splice.js';

export interface PlaintextInboundDeps {
  readonly node: string;
  readonly mesh: () => MeshIndex | undefined;
  readonly policies: () => ActivePolicies;
  readonly recorder: ConnectionRecorder;
}

/**
 * The captured-plaintext listener (15006, transparent): a connection from outside the mesh to an
 * enrolled pod, steered here by the node's TPROXY rules, arrives with the pod's address and port as
 * its local address. Under STRICT it is refused; under PERMISSIVE (the default) authorization applies
 * with no peer identity, and an allowed connection is forwarded to the pod. Either way it is counted.
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
    const refuse = (flag: ResponseFlag, reason: string): void => {
      rec.flag = flag;
      rec.reason = reason;
      rec.finish({ received: 0, sent: 0 });
      socket.resetAndDestroy();
    };
    const mesh = deps.mesh();
    if (mesh === undefined) return refuse(ResponseFlag.NoRoute, 'no mesh configuration yet');
    rec.srcWorkload = mesh.workloadByIp(src.ip);
    const dst = mesh.workloadByIp(dstAddr.ip);
    if (dst === undefined || dst.node !== deps.node) {
      return refuse(ResponseFlag.NoRoute, `${dstAddr.ip}:${dstAddr.port} is not a workload on ${deps.node}`);
    }
    rec.dstWorkload = dst;
    const policies = deps.policies();
    const mode = mtlsMode(policies.peerAuth, { namespace: dst.namespace, labels: dst.labels }, dstAddr.port);
    if (mode.mode === 'STRICT') {
      return refuse(
        ResponseFlag.Denied,
        `plaintext from outside the mesh is refused: mTLS is STRICT for ${dst.namespace}/${dst.name}${mode.from === undefined ? '' : ` (PeerAuthentication ${mode.from})`}`,
      );
    }
    const attrs: ConnAttrs = {
      srcIp: src.ip,
      dstIp: dstAddr.ip,
      dstPort: dstAddr.port,
      dst: { namespace: dst.namespace, labels: dst.labels },
    };
    const decision = authorize(policies.authz, attrs);
    if (!decision.allowed) return refuse(ResponseFlag.Denied, decision.reason);
    rec.attrs = attrs;
    socket.pause();
    const upstream = connect({ host: dstAddr.ip, port: dstAddr.port, allowHalfOpen: true, noDelay: true });
    upstream.once('error', (err) =>
      refuse(ResponseFlag.UpstreamFailure, `connect to ${dstAddr.ip}:${dstAddr.port}: ${err.message}`),
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
