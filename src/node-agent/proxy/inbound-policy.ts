import { type AuthzDecision, authorize } from '../../mesh/authz.js';
import type { ActivePolicies } from '../../mesh/policy-set.js';
import type { ConnectionRecorder } from './connection-record.js';

/**
 * Decides again, for every live inbound connection, whether the policies now in force allow it, and
 * ends the ones that are now denied: a DENY applied while a connection is open closes it.
 */
export function recheckLive(recorder: ConnectionRecorder, policies: ActivePolicies): { closed: number } {
  let closed = 0;
  for (const rec of [...recorder.live.values()]) {
    if (rec.direction !== 'inbound' || rec.attrs === undefined || rec.abort === undefined) continue;
    const d: AuthzDecision = authorize(policies.authz, rec.attrs);
    if (d.allowed) continue;
    rec.abort(`closed: policy changed and the connection is now ${d.reason}`);
    closed++;
  }
  return { closed };
}
