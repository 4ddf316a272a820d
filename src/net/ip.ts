import { isIPv4, isIPv6 } from 'node:net';

/**
 * IP address helpers in one canonical text form (RFC 5952 for IPv6, dotted quad for IPv4, IPv4-mapped
 * IPv6 shown as IPv4), so that addresses from sockets, BPF maps and manifests compare as strings.
 */

/** 16 bytes: IPv6, or IPv4 as ::ffff:a.b.c.d (the kernel's mapped form). */
export function ipToBytes16(ip: string): Buffer {
  const out = Buffer.alloc(16);
  const v4 = asIPv4(ip);
  if (v4 !== undefined) {
    out[10] = 0xff;
    out[11] = 0xff;
    v4.split('.').forEach((o, i) => {
      out[12 + i] = Number(o);
    });
    return out;
  }
  if (!isIPv6(ip)) throw new Error(`${JSON.stringify(ip)} is not an IP address`);
  // A zone (`fe80::1%eth0`) does not change the address; an embedded IPv4 tail (`64:ff9b::1.2.3.4`)
  // is two 16-bit groups.
  let text = ip.split('%')[0]!;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const parse = (part: string | undefined): number[] =>
    part === undefined || part === '' ? [] : part.split(':').map((h) => Number.parseInt(h, 16));
  const h = parse(head);
  const t = parse(tail);
  const groups = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  groups.forEach((g, i) => {
    out.writeUInt16BE(g, i * 2);
  });
  return out;
}

/** The canonical text of 16 address bytes (IPv4-mapped becomes dotted IPv4). */
export function bytes16ToIp(b: Uint8Array): string {
  const isMapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (isMapped) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  return formatV6(groups);
}

function formatV6(groups: readonly number[]): string {
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on a tie; lowercase hex.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical text for any accepted spelling of an address (e.g. `::ffff:10.0.0.1` -> `10.0.0.1`). */
export function canonicalIp(ip: string): string {
  const v4 = asIPv4(ip);
  if (v4 !== undefined) return v4;
  return bytes16ToIp(ipToBytes16(ip));
}

function asIPv4(ip: string): string | undefined {
  if (isIPv4(ip)) return ip;
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m !== null && isIPv4(m[1]!) ? m[1] : undefined;
}

export function isV6(ip: string): boolean {
  return asIPv4(ip) === undefined;
}

/** `host:port`, with IPv6 in brackets (the HBONE :authority form). */
export function hostPort(ip: string, port: number): string {
  return isV6(ip) ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Whether `ip` lies in `cidr` (`a.b.c.d/n` or `x::/n`; a bare address is a /32 or /128). */
export function inCidr(ip: string, cidr: string): boolean {
  const [net, bitsText] = cidr.split('/');
  if (net === undefined) return false;
  const netV6 = isV6(net);
  if (netV6 !== isV6(ip)) return false;
  const a = ipToBytes16(ip);
  const b = ipToBytes16(net);
  const bits = (bitsText === undefined ? (netV6 ? 128 : 32) : Number(bitsText)) + (netV6 ? 0 : 96);
  for (let i = 0; i < 16; i++) {
    const take = Math.max(0, Math.min(8, bits - i * 8));
    if (take === 0) return true;
    const mask = (0xff << (8 - take)) & 0xff;
    if ((a[i]! & mask) !== (b[i]! & mask)) return false;
  }
  return true;
}
