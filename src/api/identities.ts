import { SpiffeId } from '../identity/spiffe-id.js';

/** The namespace of Ambit's own components. */
export const SYSTEM_NS = 'ambit-system';

/** The identity the control plane serves gRPC with; proxies check it instead of a host name. */
export function controlPlaneIdentity(trustDomain: string): string {
  return SpiffeId.of(trustDomain, SYSTEM_NS, 'ambit-control-plane').toString();
}
