import type { Counter } from 'prom-client';
import type { HeaderRecord } from '../gateway-api/route-filters.js';
import {
  type AuthnOutcome,
  type AuthnTarget,
  authnOutcome,
  authnRewrite,
  type CheckedToken,
  findTokens,
  jwtRulesFor,
  ruleForToken,
} from '../mesh/authn-jwt.js';
import type { ConnContext, RequestHead } from './exchange.js';
import type { JwksCache } from './jwks.js';
import type { RoutingState } from './routing-state.js';

/*
 * The waypoint's RequestAuthentication step, before authorization: find the request's tokens, check
 * each against its issuer's rule (jwks.ts), decide (src/mesh/authn-jwt.ts), and give the request as it
 * goes on. Counted per request in ambit_jwt_authn_total (Envoy's jwt_authn.allowed / denied).
 */

/** The destination of a request as RequestAuthentications select it. */
export function authnTargetOf(state: RoutingState, ctx: ConnContext): AuthnTarget {
  const dst = ctx.dst;
  if (dst.kind === 'workload')
    return { waypoint: state.self, namespace: dst.workload.namespace, workloadLabels: [dst.workload.labels] };
  const labels = dst.service.endpoints.flatMap((e) => {
    const w = state.mesh.workload(e.workloadUid);
    return w === undefined ? [] : [w.labels];
  });
  return {
    waypoint: state.self,
    service: { namespace: dst.service.namespace, name: dst.service.name },
    namespace: dst.service.namespace,
    workloadLabels: labels,
  };
}

export interface AuthnStep {
  readonly outcome: AuthnOutcome;
  /** The request as it goes on (tokens removed, claim headers set); the same head when nothing applies. */
  readonly head: RequestHead;
}

export type AuthnResultLabel = 'allowed' | 'denied' | 'missing';

export async function authenticate(
  state: RoutingState,
  ctx: ConnContext,
  head: RequestHead,
  jwks: JwksCache,
  counter?: Counter<'destination_service' | 'result'>,
): Promise<AuthnStep> {
  if (state.requestAuthn.length === 0) return { outcome: { kind: 'none' }, head };
  const { policies, rules } = jwtRulesFor(state.requestAuthn, authnTargetOf(state, ctx));
  if (policies.length === 0) return { outcome: { kind: 'none' }, head };
  const found = findTokens(rules, head);
  const checked: CheckedToken[] = [];
  for (const f of found) {
    const pick = ruleForToken(f);
    if ('failure' in pick) {
      checked.push({ found: f, result: { ok: false, failure: pick.failure } });
      break;
    }
    const result = await jwks.verify(pick.rule.rule, f.token);
    checked.push({ found: f, rule: pick.rule, result });
    if (!result.ok) break;
  }
  const outcome = authnOutcome(policies, checked);
  const service = ctx.dst.kind === 'service' ? ctx.dst.service.hostname : 'unknown';
  const label: AuthnResultLabel =
    outcome.kind === 'denied' ? 'denied' : outcome.kind === 'missing' ? 'missing' : 'allowed';
  counter?.inc({ destination_service: service, result: label });
  if (outcome.kind === 'denied') return { outcome, head };
  const { path, headers } = authnRewrite(head, rules, checked);
  return { outcome, head: { ...head, path, headers: headers as HeaderRecord } };
}
