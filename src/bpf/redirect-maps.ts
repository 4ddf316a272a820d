import { createHash } from 'node:crypto';
import { bytes16ToIp, ipToBytes16 } from '../net/ip.js';

/*
 * Byte layouts of the maps in bpf/redirect.bpf.c (checked against the object's BTF by a test).
 * All multi-byte integers are little-endian host order except addresses, which stay in network order.
 */

export const MAX_EXCLUDED_PORTS = 16;
export const MAX_EXCLUDED_CIDRS = 8;
export const POD_CONFIG_SIZE = 216;
export const PROXY_CONFIG_SIZE = 40;
export const ORIG_DST_SIZE = 40;
export const TUPLE_KEY_SIZE = 20;

export const MapName = {
  pods: 'ambit_pods',
  proxy: 'ambit_proxy',
  byCookie: 'ambit_by_cookie',
  origDst: 'ambit_orig_dst',
  stats: 'ambit_stats',
  proxySocks: 'ambit_proxy_socks',
} as const;

export const ProgramName = {
  connect4: 'ambit_connect4',
  connect6: 'ambit_connect6',
  sockops: 'ambit_sockops',
  skLookup: 'ambit_sk_lookup',
} as const;

export interface PodRedirectConfig {
  /** Which pod the cgroup is: `workloadId(uid)`. */
  readonly workloadId: bigint;
  readonly excludedPorts: readonly number[];
  /** CIDRs in text form: `10.0.0.0/8`, `fd00::/8`. */
  readonly excludedCidrs: readonly string[];
}

export function encodeCgroupId(id: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(id);
  return b;
}

export function decodeCgroupId(b: Buffer): bigint {
  return b.readBigUInt64LE(0);
}

export function encodePodConfig(c: PodRedirectConfig): Buffer {
  if (c.excludedPorts.length > MAX_EXCLUDED_PORTS)
    throw new Error(`at most ${MAX_EXCLUDED_PORTS} excluded ports are supported`);
  if (c.excludedCidrs.length > MAX_EXCLUDED_CIDRS)
    throw new Error(`at most ${MAX_EXCLUDED_CIDRS} excluded CIDRs are supported`);
  const b = Buffer.alloc(POD_CONFIG_SIZE);
  b.writeUInt32LE(0, 0);
  b.writeUInt32LE(c.excludedPorts.length, 4);
  b.writeUInt32LE(c.excludedCidrs.length, 8);
  c.excludedPorts.forEach((p, i) => {
    b.writeUInt16LE(p, 12 + i * 2);
  });
  c.excludedCidrs.forEach((cidr, i) => {
    const [net, bits] = cidr.split('/');
    const addr = ipToBytes16(net!);
    const v6 = net!.includes(':');
    const len = bits === undefined ? 128 : Number(bits) + (v6 ? 0 : 96);
    const off = 44 + i * 20;
    addr.copy(b, off);
    b.writeUInt32LE(len, off + 16);
  });
  b.writeBigUInt64LE(c.workloadId, 208);
  return b;
}

export function decodePodConfig(b: Buffer): PodRedirectConfig {
  const nPorts = b.readUInt32LE(4);
  const nCidrs = b.readUInt32LE(8);
  const excludedPorts = Array.from({ length: nPorts }, (_, i) => b.readUInt16LE(12 + i * 2));
  const excludedCidrs = Array.from({ length: nCidrs }, (_, i) => {
    const off = 44 + i * 20;
    const ip = bytes16ToIp(b.subarray(off, off + 16));
    const len = b.readUInt32LE(off + 16);
    return `${ip}/${ip.includes(':') ? len : len - 96}`;
  });
  return { workloadId: b.readBigUInt64LE(208), excludedPorts, excludedCidrs };
}

/** A pod's 64-bit id in the kernel maps: the first 8 bytes of SHA-256 of its UID (never 0). */
export function workloadId(uid: string): bigint {
  const id = createHash('sha256').update(uid).digest().readBigUInt64LE(0);
  return id === 0n ? 1n : id;
}

/** The proxy's addresses and port; without `ip6` (an IPv4-only node) the IPv6 one stays `::`: no IPv6 redirect. */
export function encodeProxyConfig(c: {
  ip4: string;
  ip6?: string | undefined;
  port: number;
  podsLevel: number;
}): Buffer {
  const b = Buffer.alloc(PROXY_CONFIG_SIZE);
  ipToBytes16(c.ip4).copy(b, 0);
  if (c.ip6 !== undefined) ipToBytes16(c.ip6).copy(b, 16);
  b.writeUInt16LE(c.port, 32);
  b.writeUInt32LE(c.podsLevel, 36);
  return b;
}

/** Writes the key under which sockops stored a connection: the source address and port the proxy sees. */
export function writeTupleKey(into: Buffer, ip: string, port: number): void {
  ipToBytes16(ip).copy(into, 0);
  into.writeUInt16LE(port, 16);
  into.writeUInt16LE(0, 18);
}

export interface OriginalDestination {
  readonly ip: string;
  readonly port: number;
  readonly family: 4 | 6;
  /** The enrolled cgroup the connection came from: who made it, as the kernel saw it. */
  readonly cgroupId: bigint;
  /** The pod behind that cgroup (`workloadId(uid)`), or 0 when the agent did not say. */
  readonly workloadId: bigint;
}

export function decodeOrigDst(b: Buffer): OriginalDestination {
  return {
    ip: bytes16ToIp(b.subarray(0, 16)),
    port: b.readUInt16LE(16),
    family: b.readUInt16LE(18) === 10 ? 6 : 4,
    cgroupId: b.readBigUInt64LE(24),
    workloadId: b.readBigUInt64LE(32),
  };
}
