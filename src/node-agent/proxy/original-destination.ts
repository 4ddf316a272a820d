import { join } from 'node:path';
import type { Bpf, MapSlot } from '../../bpf/libbpf.js';
import { AmbitError, ErrorCode } from '../../errors.js';
import {
  decodeOrigDst,
  MapName,
  ORIG_DST_SIZE,
  type OriginalDestination,
  TUPLE_KEY_SIZE,
  writeTupleKey,
} from '../redirection/maps.js';

/**
 * Reads back where a redirected connection was going. The eBPF programs keyed it by the client's
 * (address, port), which is the peer of the accepted socket; the entry is taken (looked up and
 * deleted) in one FFI call, so the map only holds connections not yet accepted.
 */
export class OriginalDestinations {
  private readonly slot: MapSlot;

  private constructor(
    private readonly bpf: Bpf,
    private readonly fd: number,
  ) {
    this.slot = bpf.mapSlot(fd, TUPLE_KEY_SIZE, ORIG_DST_SIZE);
  }

  /** Opens the map the node agent pinned; fails with a clear error until the agent has run once. */
  static open(bpf: Bpf, bpfDir: string): OriginalDestinations {
    const path = join(bpfDir, 'maps', MapName.origDst);
    const fd = bpf.objGet(path);
    if (fd === undefined) {
      throw new AmbitError(
        ErrorCode.PRECONDITION,
        `${path} is not pinned yet (is the node agent running on this node?)`,
      );
    }
    return new OriginalDestinations(bpf, fd);
  }

  take(peerIp: string, peerPort: number): OriginalDestination | undefined {
    writeTupleKey(this.slot.key, peerIp, peerPort);
    return this.slot.lookupAndDelete() ? decodeOrigDst(this.slot.value) : undefined;
  }

  close(): void {
    this.bpf.close(this.fd);
  }
}

/**
 * Puts the proxy's outbound listening socket into the pinned sockmap that sk_lookup reads, so that
 * SYNs to any port of the proxy address reach it. The kernel drops the entry when the socket closes.
 */
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
