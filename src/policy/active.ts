import type { AuthorizationPolicy, PeerAuthentication } from './types.js';

/** The policies in force on a proxy: decoded and checked from the config stream. */
export interface ActivePolicies {
  readonly authz: readonly AuthorizationPolicy[];
  readonly peerAuth: readonly PeerAuthentication[];
}

export const EMPTY_POLICIES: ActivePolicies = { authz: [], peerAuth: [] };

/** The principal form authorization policies use: a SPIFFE id without its scheme. */
export function principalOf(spiffeId: string): string {
  return spiffeId.replace(/^spiffe:\/\//, '');
}
