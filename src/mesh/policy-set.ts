import type { AuthorizationPolicy, MeshPolicy, PeerAuthentication } from './policy.js';

/** The policies in force on a node, decoded from the config stream (validated by the control plane). */
export interface ActivePolicies {
  readonly authz: readonly AuthorizationPolicy[];
  readonly peerAuth: readonly PeerAuthentication[];
}

export const EMPTY_POLICIES: ActivePolicies = { authz: [], peerAuth: [] };

/** Decodes the JSON policies of a config update; an entry that is not a known policy is reported and skipped. */
export function decodePolicies(
  entries: ReadonlyMap<string, string>,
  problems: string[] = [],
): ActivePolicies {
  const authz: AuthorizationPolicy[] = [];
  const peerAuth: PeerAuthentication[] = [];
  for (const [key, json] of entries) {
    let p: MeshPolicy;
    try {
      p = JSON.parse(json) as MeshPolicy;
    } catch (err) {
      problems.push(`policy ${key}: not JSON (${(err as Error).message}); ignored`);
      continue;
    }
    if (p?.kind === 'AuthorizationPolicy' && Array.isArray(p.rules)) authz.push(p);
    else if (p?.kind === 'PeerAuthentication') peerAuth.push(p);
    else problems.push(`policy ${key}: unknown kind; ignored`);
  }
  return { authz, peerAuth };
}

/** The principal form authorization policies use: a SPIFFE id without its scheme. */
export function principalOf(spiffeId: string): string {
  return spiffeId.replace(/^spiffe:\/\//, '');
}
