import type { PeerCertificate, TLSSocket } from 'node:tls';
import { AmbitError, ErrorCode } from '../errors.js';
import { SpiffeId } from './spiffe-id.js';

/** The URI SANs of a peer certificate as Node reports them (`URI:spiffe://..., DNS:...`). */
export function uriSans(cert: Pick<PeerCertificate, 'subjectaltname'> | undefined): string[] {
  const san = cert?.subjectaltname;
  if (san === undefined || san === '') return [];
  return san
    .split(', ')
    .filter((e) => e.startsWith('URI:'))
    .map((e) => e.slice(4));
}

/**
 * The workload identity of a peer whose chain TLS already verified: exactly one URI SAN, a SPIFFE
 * workload id, in our trust domain. Anything else is AMBIT_ERR_IDENTITY naming what was presented.
 */
export function peerIdentity(socket: TLSSocket, trustDomain: string, peerName: string): SpiffeId {
  const uris = uriSans(socket.getPeerCertificate());
  if (uris.length !== 1) {
    throw new AmbitError(
      ErrorCode.IDENTITY,
      `${peerName} presented ${uris.length === 0 ? 'no URI SAN' : `${uris.length} URI SANs (${uris.join(', ')})`}; exactly one SPIFFE id is required`,
    );
  }
  const id = SpiffeId.tryParse(uris[0]!);
  if (id === undefined)
    throw new AmbitError(
      ErrorCode.IDENTITY,
      `${peerName} presented ${JSON.stringify(uris[0])}, which is not a workload identity`,
    );
  if (id.trustDomain !== trustDomain) {
    throw new AmbitError(
      ErrorCode.IDENTITY,
      `${peerName} is ${id}, from trust domain ${id.trustDomain}, not ${trustDomain}`,
    );
  }
  return id;
}
