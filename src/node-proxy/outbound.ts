import { connect, createServer, type Server, type Socket } from 'node:net';
import { describeError } from '../errors.js';
import { HboneError, type HbonePool } from '../hbone/pool.js';
import { RoundRobin } from '../mesh/load-balancer.js';
import type { MeshIndex } from '../mesh/mesh-index.js';
import { routeOutbound, transportFor } from '../mesh/route.js';
import type { Workload } from '../mesh/view.js';
import { canonicalIp, hostPort } from '../net/ip.js';
import { endStream, resetSocket, splice } from '../net/splice.js';
import type { ConnectionRecord, ConnectionRecorder } from '../telemetry/connection-record.js';
import type { Outcome } from '../telemetry/outcomes.js';
import type { OriginalDestinationTable } from './redirection.js';

/** The pods of this node by the id the node agent gave their cgroups (`workloadId(uid)`), per config. */
export interface LocalWorkloads {
  byWorkloadId(id: bigint): Workload | undefined;
  /**
   * Resolves once the config names the pod of this id, or after `timeoutMs` (then undefined). A pod
   * is enrolled by the CNI step before its containers start, so its first connection may come before
   * the control plane has sent the pod: that connection waits for it rather than being refused.
   */
  awaitWorkloadId?(id: bigint, timeoutMs: number): Promise<Workload | undefined>;
}

/** How long a connection of a pod that the config does not name yet waits for it (see awaitWorkloadId). */
export const NEW_POD_WAIT_MS = 5_000;

export interface OutboundDeps {
  readonly node: string;
  /** The current view of the mesh (undefined before the first config). */
  readonly mesh: () => MeshIndex | undefined;
  readonly local: () => LocalWorkloads;
  readonly origDst: OriginalDestinationTable;
  readonly recorder: ConnectionRecorder;
  readonly hbone: HbonePool;
  /** HBONE's port on every node proxy. */
  readonly hbonePort: number;
}

/** Refuses a client connection: a TCP reset, which the client sees as "connection reset" or "refused". */
function refuse(socket: Socket, rec: ConnectionRecord, outcome: Outcome, reason: string): void {
  rec.refuse(outcome, reason);
  socket.resetAndDestroy();
}

/**
 * The pod a redirected connection came from. The eBPF record names the pod by its cgroup (what the
 * kernel saw); the source address must belong to that pod, so a pod that changed its own address
 * cannot borrow another pod's identity.
 */
export function sourceWorkload(
  mesh: MeshIndex,
  local: LocalWorkloads,
  peerIp: string,
  recordedId: bigint,
): { workload?: Workload; problem?: string } {
  const byIp = mesh.workloadByIp(peerIp);
  if (recordedId === 0n) return byIp === undefined ? {} : { workload: byIp };
  const byId = local.byWorkloadId(recordedId);
  if (byId === undefined)
    return { problem: 'the pod that made this connection is not in the mesh config yet' };
  if (!byId.ips.some((ip) => canonicalIp(ip) === peerIp)) {
    return {
      problem: `source address ${peerIp} is not an address of ${byId.namespace}/${byId.name}, which made the connection`,
    };
  }
  return { workload: byId };
}

/**
 * The outbound listener (15001): every connection here was redirected by eBPF from an enrolled pod.
 * It learns the original destination and who made the connection, routes it (`routeOutbound`), and
 * carries it in HBONE (meshed destinations) or plain TCP (outside the mesh).
 */
export function createOutboundServer(deps: OutboundDeps): Server {
  const rr = new RoundRobin();
  const pick = (key: string, candidates: readonly Workload[]) => rr.pick(key, candidates);
  return createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    const peerIp = canonicalIp(socket.remoteAddress ?? '');
    const peerPort = socket.remotePort ?? 0;
    const rec = deps.recorder.start('outbound', { ip: peerIp, port: peerPort });
    socket.on('error', () => undefined);
    let od: ReturnType<OriginalDestinationTable['take']>;
    try {
      od = deps.origDst.take(peerIp, peerPort);
    } catch (err) {
      return refuse(
        socket,
        rec,
        'not-redirected',
        `cannot read the original destination: ${describeError(err)}`,
      );
    }
    if (od === undefined) {
      // Not redirected by Ambit's programs (a direct connection to the proxy address): refusing it is
      // also what makes a redirect loop impossible.
      return refuse(
        socket,
        rec,
        'not-redirected',
        'no original destination recorded for this connection (it was not redirected)',
      );
    }
    rec.originalDst = { ip: od.ip, port: od.port };
    const local = deps.local();
    if (od.workloadId !== 0n && local.byWorkloadId(od.workloadId) === undefined && local.awaitWorkloadId) {
      // A new pod's first connection (the client's bytes wait in the socket, which is not read yet).
      const id = od.workloadId;
      void local.awaitWorkloadId(id, NEW_POD_WAIT_MS).then(() => carry(od));
      return;
    }
    carry(od);

    function carry(od: NonNullable<ReturnType<OriginalDestinationTable['take']>>) {
      const mesh = deps.mesh();
      if (mesh === undefined) return refuse(socket, rec, 'no-config', 'no mesh configuration yet');
      const src = sourceWorkload(mesh, deps.local(), peerIp, od.workloadId);
      if (src.problem !== undefined) return refuse(socket, rec, 'unknown-source', src.problem);
      if (src.workload !== undefined) rec.srcWorkload = src.workload;
      const route = routeOutbound(mesh, od, pick, src.workload);
      if (route.kind === 'refuse') {
        if (route.service !== undefined) rec.service = route.service;
        return refuse(socket, rec, route.outcome, route.reason);
      }
      rec.target = route.target;
      if (route.kind === 'service') {
        rec.service = route.service;
        rec.dstWorkload = route.endpoint;
      } else if (route.kind === 'workload') {
        rec.dstWorkload = route.workload;
      } else if (route.kind === 'waypoint') {
        // Istio's ztunnel reports a waypoint hop the same way: the Service, reached at the waypoint.
        if (route.service !== undefined) rec.service = route.service;
        rec.dstWorkload = route.pod;
      }
      socket.pause();
      const transport = transportFor(mesh, route);
      if (transport.kind === 'hbone') {
        if (src.workload === undefined) {
          return refuse(
            socket,
            rec,
            'unknown-source',
            'cannot tell which pod made this connection, so there is no identity to send',
          );
        }
        rec.securityPolicy = 'mutual_tls';
        const forwarded = `for="${hostPort(peerIp, peerPort)}"${rec.service === undefined ? '' : `;host=${rec.service.hostname}`}`;
        deps.hbone
          .open(
            {
              ip: transport.nodeIp,
              port: transport.port ?? deps.hbonePort,
              srcIdentity: src.workload.identity,
              dstIdentity: transport.dstIdentity,
            },
            route.kind === 'waypoint'
              ? hostPort(route.authority.ip, route.authority.port)
              : hostPort(route.target.ip, route.target.port),
            { forwarded },
          )
          .then(
            (stream) => {
              rec.dstIdentity = transport.dstIdentity;
              rec.hboneAddr = hostPort(transport.nodeIp, transport.port ?? deps.hbonePort);
              rec.established();
              splice(socket, stream, { down: resetSocket, up: endStream }, (err) =>
                rec.finish({ received: socket.bytesRead, sent: socket.bytesWritten }, err),
              );
              socket.resume();
            },
            (err: unknown) =>
              refuse(
                socket,
                rec,
                err instanceof HboneError ? err.outcome : 'tunnel-failure',
                describeError(err),
              ),
          );
        return;
      }
      const upstream = connect({
        host: route.target.ip,
        port: route.target.port,
        allowHalfOpen: true,
        noDelay: true,
      });
      const onConnectError = (err: Error): void =>
        refuse(
          socket,
          rec,
          'upstream-failure',
          `connect to ${hostPort(route.target.ip, route.target.port)}: ${err.message}`,
        );
      upstream.once('error', onConnectError);
      upstream.once('connect', () => {
        upstream.off('error', onConnectError);
        rec.established();
        splice(socket, upstream, { down: resetSocket, up: resetSocket }, (err) =>
          rec.finish({ received: socket.bytesRead, sent: socket.bytesWritten }, err),
        );
        socket.resume();
      });
    }
  });
}
