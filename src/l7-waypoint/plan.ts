import type { Random } from '../gateway-api/backend-pick.js';
import type { HeaderRecord } from '../gateway-api/route-filters.js';
import type { HeaderModifier, RequestMirror } from '../gateway-api/types.js';
import { type RequestTimeouts, type RetryPolicy, retryPolicyOf } from '../mesh/http-retry.js';
import type { RuleRef } from '../mesh/l7-route.js';
import type { MeshService } from '../mesh/view.js';
import type { HttpFailure } from '../telemetry/http-outcomes.js';
import {
  type ConnContext,
  decide,
  dstIsV6,
  type RequestHead,
  redirectFor,
  upstreamHead,
} from './exchange.js';
import type { Protected } from './protect.js';
import type { RoutingState } from './routing-state.js';
import type { UpstreamEndpoint } from './upstream.js';

/** What the waypoint does with one request, carried out: where it goes and how. */
export interface Plan {
  readonly endpoints: readonly UpstreamEndpoint[];
  readonly head: RequestHead;
  readonly retry: RetryPolicy;
  readonly timeouts: RequestTimeouts;
  readonly responseHeaders: readonly HeaderModifier[];
  readonly mirrors: readonly RequestMirror[];
  readonly routeNamespace: string;
  /** The backend Service; undefined for a request addressed to a pod. */
  readonly backend?: MeshService;
  /** The backend Service's BackendTrafficPolicy, with the Service's hostname (the metrics' label). */
  readonly policy?: Protected;
}

/** The decision for a request, made concrete: a plan to carry out, or the waypoint's own answer. */
export type Planned = (
  | { readonly kind: 'send'; readonly plan: Plan }
  | { readonly kind: 'refuse'; readonly failure: HttpFailure; readonly reason: string }
  | { readonly kind: 'redirect'; readonly status: number; readonly headers: HeaderRecord }
) & { readonly route?: RuleRef };

/**
 * The route decision (`decide`) for a request, with the endpoints and the head it is sent with: the
 * same for ordinary requests and for HTTP/1.1 upgrades (which `keep` their `upgrade` header). A
 * request addressed to a pod (a waypoint for workloads) goes to that pod, as it is.
 */
export function planRequest(
  state: RoutingState,
  ctx: ConnContext,
  head: RequestHead,
  requestId: string,
  random: Random,
  keep: readonly string[] = [],
): Planned {
  const v6 = dstIsV6(ctx);
  const decision = decide(state, ctx, head, random);
  if (decision === undefined) {
    const dst = ctx.dst as Extract<ConnContext['dst'], { kind: 'workload' }>;
    const ep = state.endpointOf(dst.workload, dst.port, v6);
    return {
      kind: 'send',
      plan: {
        endpoints: ep === undefined ? [] : [ep],
        head: upstreamHead(undefined, head, requestId, keep),
        retry: retryPolicyOf(undefined),
        timeouts: {},
        responseHeaders: [],
        mirrors: [],
        routeNamespace: dst.workload.namespace,
      },
    };
  }
  const route = decision.route === undefined ? {} : { route: decision.route };
  if (decision.kind === 'refuse')
    return { kind: 'refuse', failure: decision.failure, reason: decision.reason, ...route };
  if (decision.kind === 'redirect') {
    const r = redirectFor(decision, ctx.dst as Extract<ConnContext['dst'], { kind: 'service' }>, head);
    return { kind: 'redirect', status: r.status, headers: r.headers, ...route };
  }
  const service = decision.backend.service;
  return {
    kind: 'send',
    ...route,
    plan: {
      endpoints: state.endpoints(service, decision.backend.port, v6),
      head: upstreamHead(decision, head, requestId, keep),
      retry: decision.retry,
      timeouts: decision.timeouts,
      responseHeaders: decision.responseHeaders,
      mirrors: decision.mirrors,
      routeNamespace: decision.route?.namespace ?? decision.backend.namespace,
      backend: service,
      ...(service.trafficPolicy === undefined
        ? {}
        : { policy: { hostname: service.hostname, applied: service.trafficPolicy } }),
    },
  };
}
