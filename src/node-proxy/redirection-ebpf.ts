import type { Server } from 'node:net';
import { join } from 'node:path';
import { type Bpf, Libbpf, type MapSlot, transparentListener } from '../bpf/libbpf.js';
import {
  decodeOrigDst,
  MapName,
  ORIG_DST_SIZE,
  TUPLE_KEY_SIZE,
  writeTupleKey,
} from '../bpf/redirect-maps.js';
import { AmbitError, describeError, ErrorCode } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { OriginalDestinationTable, Redirection } from './redirection.js';

/**
 * Redirection as the node agent sets it up: the eBPF programs keyed each redirected connection's
 * original destination by the client's (address, port), which is the peer of the accepted socket; an
 * entry is taken (looked up and deleted) in one FFI call, so the map holds only connections not yet
 * accepted. The outbound listeners go into the sockmap that sk_lookup reads, so that SYNs to any port of
 * the proxy address reach them; inbound plaintext is accepted on transparent sockets (TPROXY).
 */
export function ebpfRedirection(bpfDir: string, log: Logger): Redirection {
  const bpf = new Libbpf();
  return {
    async open(signal) {
      while (!signal.aborted) {
        try {
          return openOriginalDestinations(bpf, bpfDir);
        } catch (err) {
          log.info({ reason: describeError(err) }, 'waiting for the node agent to pin the redirection maps');
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      return undefined;
    },
    registerOutbound(server, family) {
      registerListener(bpf, bpfDir, family, listenerFd(server));
    },
    inboundListen(family, port) {
      return { fd: transparentListener(family, port) };
    },
  };
}

/** The pinned original-destination map, as a table; fails with a clear error until the agent has run. */
export function openOriginalDestinations(bpf: Bpf, bpfDir: string): OriginalDestinationTable {
  const path = join(bpfDir, 'maps', MapName.origDst);
  const fd = bpf.objGet(path);
  if (fd === undefined)
    throw new AmbitError(
      ErrorCode.PRECONDITION,
      `${path} is not pinned yet (is the node agent running on this node?)`,
    );
  const slot: MapSlot = bpf.mapSlot(fd, TUPLE_KEY_SIZE, ORIG_DST_SIZE);
  return {
    take(peerIp, peerPort) {
      writeTupleKey(slot.key, peerIp, peerPort);
      return slot.lookupAndDelete() ? decodeOrigDst(slot.value) : undefined;
    },
    close: () => bpf.close(fd),
  };
}

/** The listening socket's fd: Node keeps it on the server's handle. */
function listenerFd(server: Server): number {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('cannot get the outbound listener fd');
  return fd;
}

/** Puts a listening socket into the pinned sockmap; the kernel drops the entry when the socket closes. */
export function registerListener(bpf: Bpf, bpfDir: string, family: 4 | 6, fd: number): void {
  const path = join(bpfDir, 'maps', MapName.proxySocks);
  const map = bpf.objGet(path);
  if (map === undefined)
    throw new AmbitError(ErrorCode.PRECONDITION, `${path} is not pinned yet (is the node agent running?)`);
  try {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(family === 4 ? 0 : 1);
    const value = Buffer.alloc(8);
    value.writeBigUInt64LE(BigInt(fd));
    bpf.mapUpdate(map, key, value);
  } finally {
    bpf.close(map);
  }
}
