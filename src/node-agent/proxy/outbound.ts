import { connect, createServer, type Server, type Socket } from 'node:net';
import { describeError } from '../../errors.js';
import { canonicalIp } from '../../mesh/ip.js';
import type { MeshIndex } from '../../mesh/mesh-index.js';
import type { Workload } from '../../mesh/view.js';
import type { Logger } from '../../telemetry/logger.js';
import type { ConnectionRecord, ConnectionRecorder } from './connection-record.js';
import { RoundRobin } from './load-balancer.js';
import type { OriginalDestinations } from './original-destination.js';
import { ResponseFlag, routeOutbound } from './outbound-route.js';

export interface OutboundDeps {
  /** The current view of the mesh (undefined before the first config). */
  readonly mesh: () => MeshIndex | undefined;
  readonly origDst: OriginalDestinations;
  readonly recorder: ConnectionRecorder;
  readonly log: Logger;
}

/**
 * Copies bytes both ways until both directions are done, keeping half-close (a FIN in one direction
 * leaves the other open). An error on one side resets the other, as a TCP proxy should.
 */
export function splice(
  down: Socket,
  up: Socket,
  done: (bytes: { received: number; sent: number }, err?: string) => void,
): void {
  let error: string | undefined;
  let closed = 0;
  const onClose = (): void => {
    if (++closed < 2) return;
    done({ received: down.bytesRead, sent: down.bytesWritten }, error);
  };
  down.once('close', onClose);
  up.once('close', onClose);
  down.on('error', (err) => {
    error ??= `downstream: ${err.message}`;
    up.resetAndDestroy();
  });
  up.on('error', (err) => {
    error ??= `upstream: ${err.message}`;
    down.resetAndDestroy();
  });
  down.pipe(up);
  up.pipe(down);
}

/** Refuses a client connection: a TCP reset, which the client sees as "connection reset" or "refused". */
function refuse(socket: Socket, rec: ConnectionRecord): void {
  rec.finish({ received: 0, sent: 0 });
  socket.resetAndDestroy();
}

/**
 * The outbound listener (15001): every connection here was redirected by eBPF from an enrolled pod.
 * It learns the original destination, routes it and splices it to the chosen upstream.
 */
export function createOutboundServer(deps: OutboundDeps): Server {
  const rr = new RoundRobin();
  const pick = (key: string, candidates: readonly Workload[]) => rr.pick(key, candidates);
  return createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    const peerIp = canonicalIp(socket.remoteAddress ?? '');
    const peerPort = socket.remotePort ?? 0;
    const rec = deps.recorder.start('outbound', { ip: peerIp, port: peerPort });
    socket.on('error', () => undefined);
    let od: ReturnType<OriginalDestinations['take']>;
    try {
      od = deps.origDst.take(peerIp, peerPort);
    } catch (err) {
      rec.flag = ResponseFlag.NoRoute;
      rec.reason = `cannot read the original destination: ${describeError(err)}`;
      return refuse(socket, rec);
    }
    if (od === undefined) {
      // Not redirected by Ambit's programs (a direct connection to the outbound port): refusing it
      // is also what makes a redirect loop impossible.
      rec.flag = ResponseFlag.NoRoute;
      rec.reason = 'no original destination recorded for this connection (it was not redirected)';
      return refuse(socket, rec);
    }
    rec.originalDst = { ip: od.ip, port: od.port };
    const mesh = deps.mesh();
    if (mesh === undefined) {
      rec.flag = ResponseFlag.NoRoute;
      rec.reason = 'no mesh configuration yet';
      return refuse(socket, rec);
    }
    rec.srcWorkload = mesh.workloadByIp(peerIp);
    const route = routeOutbound(mesh, od, pick);
    if (route.kind === 'refuse') {
      rec.flag = route.flag;
      rec.reason = route.reason;
      if (route.service !== undefined) rec.service = route.service;
      return refuse(socket, rec);
    }
    rec.target = route.target;
    if (route.kind === 'service') {
      rec.service = route.service;
      rec.dstWorkload = route.endpoint;
    } else if (route.kind === 'workload') {
      rec.dstWorkload = route.workload;
    }
    socket.pause();
    const upstream = connect({
      host: route.target.ip,
      port: route.target.port,
      allowHalfOpen: true,
      noDelay: true,
    });
    const onConnectError = (err: Error): void => {
      rec.flag = ResponseFlag.UpstreamFailure;
      rec.reason = `connect to ${route.target.ip}:${route.target.port}: ${err.message}`;
      refuse(socket, rec);
    };
    upstream.once('error', onConnectError);
    upstream.once('connect', () => {
      upstream.off('error', onConnectError);
      rec.established();
      splice(socket, upstream, (bytes, err) => rec.finish(bytes, err));
      socket.resume();
    });
  });
}
