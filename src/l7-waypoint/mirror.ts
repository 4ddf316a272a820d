import type { Random } from '../gateway-api/backend-pick.js';
import { type HeaderRecord, mirrorChosen } from '../gateway-api/route-filters.js';
import type { AttemptResult } from '../mesh/http-retry.js';
import { resolveBackend } from '../mesh/l7-route.js';
import type { Logger } from '../telemetry/logger.js';
import { type EndpointPicker, hashFactsOf, targetOf } from './endpoint-picker.js';
import { type ConnContext, dstIsV6 } from './exchange.js';
import type { Plan } from './plan.js';
import type { RequestBody } from './request-body.js';
import type { RoutingState } from './routing-state.js';
import { AttemptError, type Upstreams } from './upstream.js';

/** How long a mirrored request may take before it is cut. */
const MIRROR_TIMEOUT_MS = 30_000;

/** Mirrored requests in flight at once; more are dropped (a slow mirror must not hold the waypoint's memory). */
export const MAX_MIRRORS_IN_FLIGHT = 64;

export interface MirrorDeps {
  readonly upstreams: Upstreams;
  readonly picker: EndpointPicker;
  readonly random: Random;
  readonly log: Logger;
  readonly active: { mirrors: number };
}

/**
 * The plan's mirrors: a copy of the request to each mirror backend (chosen by its fraction), sent
 * aside and its answer dropped. Only a body that ends within the bound is mirrored (it is sent once
 * it is whole).
 */
export function sendMirrors(
  deps: MirrorDeps,
  state: RoutingState,
  ctx: ConnContext,
  protocol: 'HTTP/1.1' | 'HTTP/2',
  plan: Plan,
  body: RequestBody | undefined,
): void {
  for (const m of plan.mirrors) {
    if (!mirrorChosen(m.fraction, deps.random)) continue;
    const target = resolveBackend(state.mesh, plan.routeNamespace, { ...m.backendRef, weight: 1 });
    if (target.service === undefined) continue;
    const pickTarget = targetOf(target.service);
    const endpoints = state.endpoints(target.service, target.port, dstIsV6(ctx));
    const ep = deps.picker.request(pickTarget, hashFactsOf(ctx, plan.head.headers)).next(endpoints);
    if (ep === undefined) continue;
    // A mirror's outcome feeds its Service's passive health check, as any request to it does.
    const outcome = (result: AttemptResult): void =>
      deps.picker.outcome(pickTarget, ep, result, endpoints.length);
    const send = (payload: Buffer | undefined): void => {
      if (deps.active.mirrors >= MAX_MIRRORS_IN_FLIGHT) {
        deps.log.debug({ mirror: ep.key }, 'mirror dropped: too many mirrored requests in flight');
        return;
      }
      deps.active.mirrors++;
      const headers: HeaderRecord = { ...plan.head.headers };
      if (payload !== undefined) headers['content-length'] = String(payload.length);
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        deps.active.mirrors--;
      };
      deps.upstreams
        .send(ep, protocol, { ...plan.head, headers, body: payload }, AbortSignal.timeout(MIRROR_TIMEOUT_MS))
        .then(
          (r) => {
            outcome({ kind: 'response', status: r.status });
            r.pipe({ data: () => true, onResume: () => undefined, end: release, error: release });
          },
          (err: unknown) => {
            release();
            outcome(
              err instanceof AttemptError
                ? { kind: err.kind }
                : (err as Error).name === 'TimeoutError'
                  ? { kind: 'attempt-timeout' }
                  : { kind: 'reset' },
            );
            deps.log.debug({ err, mirror: ep.key }, 'mirror request failed');
          },
        );
    };
    if (body === undefined) send(undefined);
    else void body.whole().then((b) => b !== undefined && send(b));
  }
}
