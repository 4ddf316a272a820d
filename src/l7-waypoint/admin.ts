import type { WaypointAuthnDump, WaypointClustersDump, WaypointRoutesDump } from '../api/waypoint-admin.js';
import type { Dataplane } from '../dataplane/runtime.js';
import type { HbonePool } from '../hbone/pool.js';
import { serviceEndpoints } from '../mesh/l7-route.js';
import type { Handler } from '../telemetry/http-endpoints.js';
import { describeTrafficPolicy } from '../traffic-policy/describe.js';
import { describeRetryConstraint } from '../traffic-policy/retry-budget.js';
import type { CircuitBreakers } from './circuit-breakers.js';
import type { WaypointConfig } from './config.js';
import type { JwksCache } from './jwks.js';
import type { Ejected } from './outlier-detector.js';
import type { Outliers } from './outliers.js';
import type { RetryBudgets } from './retry-budgets.js';
import type { RoutingState } from './routing-state.js';
import type { Upstreams } from './upstream.js';

export function adminRoutes(o: {
  readonly cfg: WaypointConfig;
  readonly identity: string;
  readonly routing: () => RoutingState | undefined;
  readonly upstreams: Upstreams;
  readonly dp: Dataplane;
  readonly pool: HbonePool;
  readonly breakers?: CircuitBreakers;
  readonly outliers?: Outliers;
  readonly budgets?: RetryBudgets;
  readonly jwks?: JwksCache;
}): Record<string, Handler> {
  const json = (res: Parameters<Handler>[1], body: unknown): void => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body, null, 2));
  };
  const name = `${o.cfg.namespace}/${o.cfg.gateway}`;
  return {
    '/config_dump': (_req, res) => {
      const config = o.dp.config();
      json(res, {
        waypoint: name,
        identity: o.identity,
        pod: `${o.cfg.namespace}/${o.cfg.pod}`,
        node: o.cfg.node,
        version: config?.view.revision ?? null,
        routes: config === undefined ? [] : [...config.routes.values()],
        requestAuthentications: o.routing()?.requestAuthn ?? [],
        rejections: config?.rejections ?? [],
        certificates: o.dp.certs.list(),
        tunnels: o.pool.stats(),
        memory: process.memoryUsage(),
      });
    },
    '/routes': (_req, res) => {
      const state = o.routing();
      const services = (state?.mesh.view.services ?? []).filter((s) => state?.serves(s));
      const dump: WaypointRoutesDump = {
        waypoint: name,
        services: services.flatMap((s) =>
          s.ports
            .filter((p) => p.protocol === 'TCP')
            .map((p) => {
              const r = state!.routesFor(s, p, s.namespace);
              return {
                service: `${s.namespace}/${s.name}`,
                port: p.port,
                ...(p.name === undefined ? {} : { portName: p.name }),
                ...(p.appProtocol === undefined ? {} : { appProtocol: p.appProtocol }),
                routes: r.names,
              };
            }),
        ),
        consumerRoutes: [...(state?.routes.values() ?? [])].flatMap((r) => {
          const parents = r.route.parentRefs
            .filter((p) => p.kind === 'Service' && (p.namespace ?? r.route.namespace) !== r.route.namespace)
            .map((p) => `${p.namespace}/${p.name}${p.port === undefined ? '' : `:${p.port}`}`);
          return parents.length === 0
            ? []
            : [
                {
                  route: `${r.kind}/${r.route.namespace}/${r.route.name}`,
                  namespace: r.route.namespace,
                  parents,
                },
              ];
        }),
      };
      json(res, dump);
    },
    '/authn': (_req, res) => {
      const state = o.routing();
      const dump: WaypointAuthnDump = {
        waypoint: name,
        requestAuthentications: (state?.requestAuthn ?? []).map((p) => ({
          policy: `${p.namespace}/${p.name}`,
          targets:
            p.targetRefs?.map((t) => `${t.kind}/${t.name}`) ??
            (p.selector === undefined
              ? [`namespace ${p.namespace}`]
              : [
                  `selector ${Object.entries(p.selector)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(',')}`,
                ]),
          rules: p.jwtRules.map((r) => ({
            issuer: r.issuer,
            audiences: r.audiences ?? [],
            jwks: r.jwks.kind === 'uri' ? r.jwks.uri : 'inline',
            locations: [
              ...r.fromHeaders.map((h) => `header ${h.name}${h.prefix === '' ? '' : ` "${h.prefix}"`}`),
              ...r.fromParams.map((q) => `param ${q}`),
              ...r.fromCookies.map((c) => `cookie ${c}`),
            ],
            forwardOriginalToken: r.forwardOriginalToken,
          })),
        })),
        jwks: o.jwks?.states() ?? [],
        verifiedTokens: o.jwks?.verifiedTokens ?? 0,
      };
      json(res, dump);
    },
    '/clusters': (_req, res) => {
      const state = o.routing();
      const ejected: Map<string, Ejected[]> = o.outliers?.ejected() ?? new Map();
      const iso = (ms: number): string => new Date(ms).toISOString();
      const clusters = (state?.mesh.view.services ?? []).flatMap((s) =>
        s.ports
          .filter((p) => p.protocol === 'TCP')
          .map((p) => ({
            service: `${s.namespace}/${s.name}`,
            port: p.port,
            endpoints: serviceEndpoints(state!.mesh, s, p.port).flatMap((e) => {
              const w = state!.mesh.workload(e.workloadUid)!;
              const ep = state!.endpointOf(w, e.targetPort, false);
              return ep === undefined
                ? []
                : [
                    {
                      address: ep.key,
                      pod: `${w.namespace}/${w.name}`,
                      inFlight: o.upstreams.inFlight(ep.key),
                      hbone: ep.hbone !== undefined,
                      ...((u) => (u === undefined ? {} : { ejectedUntil: iso(u.untilMs) }))(
                        ejected.get(s.hostname)?.find((x) => x.key === ep.key),
                      ),
                    },
                  ];
            }),
          })),
      );
      const dump: WaypointClustersDump = {
        waypoint: name,
        clusters: clusters.filter((c) => c.endpoints.length > 0),
        trafficPolicies: (state?.mesh.view.services ?? []).flatMap((s) =>
          s.trafficPolicy === undefined
            ? []
            : [
                {
                  service: `${s.namespace}/${s.name}`,
                  description: describeTrafficPolicy(s.trafficPolicy),
                  inFlight: o.breakers?.inFlight(s.hostname) ?? {
                    requests: 0,
                    connections: 0,
                    pending: 0,
                    retries: 0,
                  },
                  ...(s.trafficPolicy.passiveHealthCheck === undefined
                    ? {}
                    : {
                        ejected: (ejected.get(s.hostname) ?? []).map((x) => ({
                          address: x.key,
                          since: iso(x.sinceMs),
                          until: iso(x.untilMs),
                          ejections: x.times,
                        })),
                      }),
                },
              ],
        ),
        retryBudgets: Object.entries(o.budgets?.snapshot() ?? {}).map(([service, b]) => ({
          service,
          constraint: describeRetryConstraint(b.constraint),
          requests: b.requests,
          retries: b.retries,
        })),
      };
      json(res, dump);
    },
  };
}
