import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { uriSans } from '../identity/peer-identity.js';

/**
 * TLS credentials for talking to the control plane: its chain must verify against the trust bundle and
 * its certificate must carry the control plane's SPIFFE id (checked instead of a host name, since nodes
 * dial it by address).
 */
export function controlPlaneCredentials(
  bundle: readonly string[],
  identity: string,
): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(bundle.join('')), null, null, {
    checkServerIdentity: (_host: string, cert: PeerCertificate) => {
      const uris = uriSans(cert);
      return uris.includes(identity)
        ? undefined
        : new Error(`the control plane presented ${uris.join(', ') || 'no URI SAN'}, not ${identity}`);
    },
  });
}

/** `host:port` for grpc-js, with IPv6 in brackets. */
export function grpcTarget(address: string): string {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  if (m === null) return address;
  return m[1]!.includes(':') ? `[${m[1]}]:${m[2]}` : `${m[1]}:${m[2]}`;
}

/**
 * Channel options: nodes dial the control plane by address, and an address is not a valid TLS server
 * name (RFC 6066); present its Service name instead. The certificate check above does not use it.
 */
export const CHANNEL_OPTIONS: Record<string, string | number> = {
  'grpc.ssl_target_name_override': 'ambit-control-plane.ambit-system.svc',
  'grpc.default_authority': 'ambit-control-plane.ambit-system.svc',
  'grpc.keepalive_time_ms': 20_000,
  'grpc.keepalive_timeout_ms': 10_000,
};
