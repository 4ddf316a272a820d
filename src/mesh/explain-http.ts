import type { MeshRoute } from '../gateway-api/types.js';
import { type ActivePolicies, principalOf } from '../policy/active.js';
import type { RequestAuthentication } from '../policy/types.js';
import { HTTP_FAILURES } from '../telemetry/http-outcomes.js';
import { describeTrafficPolicy, faultsApplyTo } from '../traffic-policy/describe.js';
import { explainAuthn } from './authn-jwt.js';
import { authorizeRequest } from './authz-l7.js';
import { type Explanation, explainConnection } from './explain.js';
import { compilePortRoutes, decideL7 } from './l7-route.js';
import type { MeshIndex } from './mesh-index.js';
import { routeOutbound } from './route.js';
import type { Workload } from './view.js';

/** What the waypoint decides for one request, for people (`ambit explain ... http://...`). */
export interface L7Explanation {
  readonly waypoint: string;
  /** The waypoint's RequestAuthentication step, when one applies (before authorization). */
  readonly authn?: string;
  /** The waypoint's AuthorizationPolicy decision (targetRefs policies), before routing. */
  readonly authz: string;
  /** The rule that matched (`HTTPRoute/ns/name rule 0`), or why none did. */
  readonly route: string;
  readonly outcome: 'forward' | 'redirect' | 'refuse';
  /** refuse: the status the client gets, and why. */
  readonly status?: number;
  readonly reason?: string;
  /** forward: every backend with its share of requests. */
  readonly backends: readonly {
    readonly backend: string;
    readonly share: string;
    readonly problem?: string;
  }[];
  readonly filters: readonly string[];
  readonly retry: string;
  readonly timeouts: string;
  /** forward: each backend's BackendTrafficPolicy, and whether its faults may hit this request. */
  readonly trafficPolicies?: readonly string[];
}

export interface HttpExplanation extends Explanation {
  /** Present when the request goes through a waypoint. */
  readonly l7?: L7Explanation;
}

export interface ExplainedRequest {
  readonly method: string;
  /** Path and query. */
  readonly path: string;
  /** Lowercase names. */
  readonly headers: Readonly<Record<string, string>>;
  /** The authority the client sends; the Service's hostname when not given. */
  readonly host?: string;
}

/**
 * The decision path of one HTTP request: the connection's (capture, route, transport, policy; see
 * `explainConnection`), and, when the destination's traffic goes through a waypoint, the waypoint's L7
 * decision computed with the same function the waypoint runs (`decideL7`), from the routes it holds.
 */
export function explainHttp(
  mesh: MeshIndex,
  policies: ActivePolicies,
  routes: Iterable<MeshRoute>,
  src: Workload,
  dst: { readonly ip: string; readonly port: number },
  req: ExplainedRequest,
  requestAuthn: readonly RequestAuthentication[] = [],
): HttpExplanation {
  const base = explainConnection(mesh, policies, src, dst);
  const r = routeOutbound(mesh, dst, (_k, c) => c[0], src);
  if (r.kind !== 'waypoint' || r.service === undefined) return base;
  const service = r.service;
  const port = service.ports.find((p) => p.port === dst.port && p.protocol === 'TCP');
  if (port === undefined) return base;
  const q = req.path.indexOf('?');
  const path = q === -1 ? req.path : req.path.slice(0, q);
  const grpc = (req.headers['content-type'] ?? '').startsWith('application/grpc');
  const portRoutes = compilePortRoutes(routes, service, port, src.namespace);
  const facts = {
    method: req.method,
    path,
    query: q === -1 ? [] : ([...new URLSearchParams(req.path.slice(q + 1))] as [string, string][]),
    header: (name: string) => req.headers[name],
    grpc,
  };
  const waypointName = `${r.waypoint.namespace}/${r.waypoint.name}`;
  const an = explainAuthn(
    requestAuthn,
    {
      waypoint: r.waypoint,
      service: { namespace: service.namespace, name: service.name },
      namespace: service.namespace,
      workloadLabels: service.endpoints.flatMap((e) => {
        const w = mesh.workload(e.workloadUid);
        return w === undefined ? [] : [w.labels];
      }),
    },
    { path: req.path, headers: req.headers },
  );
  if (an?.refused !== undefined)
    return {
      ...base,
      verdict: 'denied',
      endpoints: [],
      l7: {
        waypoint: waypointName,
        authn: an.text,
        authz: '- (not reached)',
        route: '-',
        outcome: 'refuse',
        status: an.refused.status,
        reason: an.refused.message,
        backends: [],
        filters: [],
        retry: '-',
        timeouts: '-',
      },
    };
  const az = authorizeRequest(
    policies.authz,
    { waypoint: r.waypoint, service: { namespace: service.namespace, name: service.name } },
    {
      srcPrincipal: principalOf(src.identity),
      srcIp: src.ips.find((ip) => ip.includes(':') === dst.ip.includes(':')) ?? src.ips[0] ?? '',
      dstIp: dst.ip,
      dstPort: dst.port,
      method: req.method,
      path,
      host: req.host ?? req.headers.host ?? service.hostname,
      header: (name) =>
        name === 'host' ? (req.host ?? req.headers.host ?? service.hostname) : req.headers[name],
      ...(an?.auth === undefined ? {} : { auth: an.auth }),
    },
  );
  const authz = `${az.reason}${az.audited.length > 0 ? `; audited by ${az.audited.join(', ')}` : ''}`;
  if (!az.allowed) {
    const info = HTTP_FAILURES['rbac-denied'];
    return {
      ...base,
      verdict: 'denied',
      endpoints: [],
      l7: {
        waypoint: waypointName,
        ...(an === undefined ? {} : { authn: an.text }),
        authz,
        route: '-',
        outcome: 'refuse',
        status: info.status,
        reason: `${az.reason} (${info.flag})`,
        backends: [],
        filters: [],
        retry: '-',
        timeouts: '-',
      },
    };
  }
  let d = decideL7(mesh, portRoutes, service, port, facts, () => 0);
  // The weights draw one backend per request; explain shows the rule as it serves most requests:
  // drawn towards the first backend that exists, so a missing first backend does not hide the rest.
  if (d.kind === 'refuse' && d.failure === 'no-backend' && d.backends !== undefined) {
    const total = d.backends.reduce((n, b) => n + b.weight, 0);
    let before = 0;
    for (const b of d.backends) {
      if (b.service !== undefined && b.weight > 0) {
        const r = (before + b.weight / 2) / total;
        d = decideL7(mesh, portRoutes, service, port, facts, () => r);
        break;
      }
      before += b.weight;
    }
  }
  const route =
    d.route === undefined
      ? d.kind === 'refuse'
        ? 'no rule matches'
        : 'no route is attached: the Service as it is'
      : `${d.route.kind}/${d.route.namespace}/${d.route.name} rule ${d.route.rule}${d.route.ruleName === undefined ? '' : ` (${d.route.ruleName})`}`;
  const waypoint = waypointName;
  if (d.kind === 'refuse') {
    const info = HTTP_FAILURES[d.failure];
    return {
      ...base,
      l7: {
        waypoint,
        ...(an === undefined ? {} : { authn: an.text }),
        authz,
        route,
        outcome: 'refuse',
        status: info.status,
        reason: `${d.reason} (${info.flag})`,
        backends: (d.backends ?? []).map((b) => ({
          backend: `${b.namespace}/${b.name}:${b.port}`,
          share: String(b.weight),
          ...(b.problem === undefined ? {} : { problem: b.problem }),
        })),
        filters: [],
        retry: '-',
        timeouts: '-',
      },
    };
  }
  if (d.kind === 'redirect') {
    return {
      ...base,
      l7: {
        waypoint,
        ...(an === undefined ? {} : { authn: an.text }),
        authz,
        route,
        outcome: 'redirect',
        status: d.redirect.statusCode,
        backends: [],
        filters: [`RequestRedirect ${JSON.stringify(d.redirect)}`],
        retry: '-',
        timeouts: '-',
      },
    };
  }
  const total = d.backends.reduce((n, b) => n + b.weight, 0);
  // The endpoints are the chosen backends' (not the addressed Service's), reached from the waypoint,
  // which speaks HBONE itself with its own identity.
  const fromWaypoint: Workload = { ...r.pod, captured: true };
  const v6 = dst.ip.includes(':');
  const endpoints = d.backends.flatMap((b) => {
    const vip = b.service?.vips.find((ip) => ip.includes(':') === v6) ?? b.service?.vips[0];
    return vip === undefined
      ? []
      : explainConnection(mesh, policies, fromWaypoint, { ip: vip, port: b.port }).endpoints.map((e) => ({
          ...e,
          endpoint: `${e.endpoint} (backend ${b.namespace}/${b.name})`,
        }));
  });
  const verdicts = new Set(endpoints.map((e) => e.verdict));
  return {
    ...base,
    // The last route step named the addressed Service's endpoints, which the waypoint does not use as such.
    steps: base.steps.filter((st, i) => !(st.step === 'route' && i === base.steps.length - 1)),
    endpoints,
    verdict: endpoints.length === 0 ? 'refused' : verdicts.size === 1 ? [...verdicts][0]! : 'mixed',
    l7: {
      waypoint,
      ...(an === undefined ? {} : { authn: an.text }),
      authz,
      route,
      outcome: 'forward',
      backends: d.backends.map((b) => ({
        backend: `${b.namespace}/${b.name}:${b.port}`,
        share: total === 0 ? '0%' : `${Math.round((b.weight / total) * 1000) / 10}%`,
        ...(b.problem === undefined ? {} : { problem: `${b.problem}: its share gets 500` }),
      })),
      filters: [
        ...d.requestHeaders.map((m) => `RequestHeaderModifier ${JSON.stringify(m)}`),
        ...d.responseHeaders.map((m) => `ResponseHeaderModifier ${JSON.stringify(m)}`),
        ...(d.rewrite === undefined ? [] : [`URLRewrite ${JSON.stringify(d.rewrite.rewrite)}`]),
        ...d.mirrors.map(
          (m) => `RequestMirror ${m.backendRef.name}:${m.backendRef.port} (${m.fraction * 100}%)`,
        ),
      ],
      retry:
        d.retry.source === 'default'
          ? `default: up to ${d.retry.retries} retries when the request never reached a backend`
          : `up to ${d.retry.retries} retries on ${[...d.retry.codes].join(', ') || 'no codes'} and connection errors, back-off ${d.retry.backoffMs} ms; bodies over 64 KiB are not retried`,
      timeouts:
        d.timeouts.requestMs === undefined && d.timeouts.attemptMs === undefined
          ? 'none'
          : [
              d.timeouts.requestMs === undefined ? '' : `request ${d.timeouts.requestMs} ms`,
              d.timeouts.attemptMs === undefined ? '' : `per attempt ${d.timeouts.attemptMs} ms`,
            ]
              .filter((x) => x !== '')
              .join(', '),
      trafficPolicies: d.backends.flatMap((b) => {
        const p = b.service?.trafficPolicy;
        if (p === undefined) return [];
        const hit =
          p.faultInjection === undefined
            ? ''
            : faultsApplyTo(p, { header: (n) => req.headers[n] })
              ? '; its faults apply to this request'
              : "; its faults do not apply to this request (headers don't match)";
        return [`${b.namespace}/${b.name}: ${describeTrafficPolicy(p)}${hit}`];
      }),
    },
  };
}
