import { createHash } from 'node:crypto';
import { isIP } from 'node:net';

/** HBONE's port on every node proxy (and waypoint). */
export const HBONE_PORT = 15008;

/** HTTP/2 settings, as ztunnel's: big windows so one tunnel can carry bulk traffic. */
export const H2_STREAM_WINDOW = 4 << 20;
export const H2_CONNECTION_WINDOW = 16 << 20;
export const H2_MAX_FRAME = 1 << 20;
export const H2_SERVER_MAX_STREAMS = 200;
export const H2_CLIENT_MAX_STREAMS = 100;
/** nghttp2's session memory cap in MB: above Node's default 10 so large windows are not refused. */
export const H2_MAX_SESSION_MEMORY = 64;

export const H2_SETTINGS = {
  initialWindowSize: H2_STREAM_WINDOW,
  maxFrameSize: H2_MAX_FRAME,
  maxHeaderListSize: 64 * 1024,
  enablePush: false,
} as const;

/**
 * The TLS server name a client asks for: a hash of the destination workload identity. The server uses
 * it to present that workload's certificate; hashing keeps service-account names out of clear text.
 */
export function sniFor(identity: string): string {
  return `${createHash('sha256').update(identity).digest('hex').slice(0, 32)}.hbone.ambit`;
}

/** `10.0.0.2:8080` or `[fd00::2]:8080` -> address and port; undefined if it is not an IP:port. */
export function parseAuthority(authority: string | undefined): { ip: string; port: number } | undefined {
  if (authority === undefined) return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d+\.\d+\.\d+\.\d+)):(\d{1,5})$/.exec(authority);
  if (m === null) return undefined;
  const ip = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (isIP(ip) === 0 || port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined && isIP(ip) !== 6) return undefined;
  return { ip, port };
}

/** `for="10.0.0.1:43210"` (RFC 7239, as ztunnel sends it) -> address and port. */
export function parseForwardedFor(
  value: string | string[] | undefined,
): { ip: string; port: number } | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  const m = /for="?([^";,]+)"?/.exec(v ?? '');
  return m === null ? undefined : parseAuthority(m[1]);
}
