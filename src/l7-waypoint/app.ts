import { createServer as createHttp1Server } from 'node:http';
import { performServerHandshake } from 'node:http2';
import { setDefaultHighWaterMark } from 'node:stream';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Clock } from '../clock.js';
import { drain, startEndpoints } from '../dataplane/endpoints.js';
import { startDataplane } from '../dataplane/runtime.js';
import { describeError } from '../errors.js';
import { HbonePool } from '../hbone/pool.js';
import { H2_MAX_SESSION_MEMORY, H2_SETTINGS, sniFor } from '../hbone/protocol.js';
import { createHboneServer } from '../hbone/server.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import { TLS_OPTIONS } from '../identity/workload-certs.js';
import { MeshIndex } from '../mesh/mesh-index.js';
import { backoffDelay, RECONNECT_BACKOFF } from '../net/backoff.js';
import { listen } from '../net/listen.js';
import { IstioHttpMetrics } from '../telemetry/istio-http-metrics.js';
import type { Logger } from '../telemetry/logger.js';
import { outcomeInfo } from '../telemetry/outcomes.js';
import { ruleKeys } from '../traffic-policy/rate-limit.js';
import { adminRoutes } from './admin.js';
import { CircuitBreakers } from './circuit-breakers.js';
import type { WaypointConfig } from './config.js';
import { http1Downstream, http2Downstream } from './downstream.js';
import { EndpointPicker } from './endpoint-picker.js';
import { type ForwardDeps, forward } from './forward.js';
import { type ConnSocket, handleConnect } from './inbound.js';
import { JwksCache } from './jwks.js';
import { Outliers } from './outliers.js';
import { RateLimits } from './rate-limits.js';
import { RetryBudgets } from './retry-budgets.js';
import { RoutingState } from './routing-state.js';
import { handleUpgrade } from './upgrade.js';
import { Upstreams, type UpstreamsOptions } from './upstream.js';

const DRAIN_MS = 5000;
/** Node's HTTP/1.1 default keeps an idle client connection 5 s; a waypoint's clients are long-lived proxies. */
const KEEP_ALIVE_MS = 60_000;
/** Request heads larger than this get 431 (Envoy's default limit is 60 KiB; Node's 16 KiB is kept). */
const MAX_HEADER_BYTES = 16 * 1024;

export interface WaypointDeps {
  readonly clock?: Clock;
  readonly random?: () => number;
}

export interface Waypoint {
  readonly ports: {
    readonly hbone: number;
    readonly admin: number;
    readonly metrics: number;
    readonly readiness: number;
  };
  readonly registry: Registry;
  stop(): Promise<void>;
}

/**
 * Composition root of the waypoint: config and its own certificate from the control plane (the
 * shared data-plane runtime), the HBONE server on 15008 that terminates its clients' tunnels, the
 * HTTP/1.1 and HTTP/2 servers that read them, the upstream pools, telemetry (Istio's HTTP metrics,
 * one access line per request, OTLP traces) and health. Ready once it has a config and a certificate.
 */
export async function startWaypoint(
  cfg: WaypointConfig,
  deps: WaypointDeps,
  log: Logger,
  signal: AbortSignal,
): Promise<Waypoint | undefined> {
  setDefaultHighWaterMark(false, 1 << 20);
  const identity = SpiffeId.of(cfg.trustDomain, cfg.namespace, cfg.serviceAccount).toString();
  const self = { namespace: cfg.namespace, name: cfg.gateway };
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const refused = new Counter({
    name: 'ambit_hbone_refused_total',
    help: 'HBONE connections refused before a stream, by reason',
    labelNames: ['response_flags'],
    registers: [registry],
  });
  const dp = await startDataplane(
    {
      node: cfg.node,
      trustDomain: cfg.trustDomain,
      controlPlane: cfg.controlPlane,
      caBundlePath: cfg.caBundle,
      tokenPath: cfg.tokenFile,
      certTtlSeconds: cfg.certTtlSeconds,
      ...(deps.clock === undefined ? {} : { clock: deps.clock }),
    },
    log,
    registry,
    signal,
  );
  if (dp === undefined) return undefined;
  dp.certs.setWanted(new Set([identity]));
  let routing: RoutingState | undefined;
  let hasCert = false;
  const random = deps.random ?? Math.random;
  const hbonePool = new HbonePool({
    cert: (id) => dp.certs.get(id),
    log: log.child({ component: 'hbone-client' }),
  });
  const dial: UpstreamsOptions = {
    hbone: hbonePool,
    identity,
    podIp: cfg.podIp,
    hbonePort: cfg.nodeHbonePort,
  };
  const upstreams = new Upstreams(dial);
  // The OpenTelemetry SDK costs memory: it is loaded only when a Gateway asks for traces.
  const tracing =
    cfg.otlpEndpoint === undefined
      ? undefined
      : new (await import('../telemetry/tracing.js')).Tracing({
          endpoint: cfg.otlpEndpoint,
          serviceName: `${cfg.gateway}.${cfg.namespace}`,
          sampling: cfg.traceSampling,
          attributes: {
            'k8s.pod.name': cfg.pod,
            'k8s.namespace.name': cfg.namespace,
            'k8s.node.name': cfg.node,
          },
        });
  const accessLog = log.child({ component: 'access' });
  const tcpConnections = new Counter({
    name: 'ambit_waypoint_tcp_connections_total',
    help: 'Connections the waypoint passed through as TCP (not HTTP), by response flag',
    labelNames: ['response_flags'],
    registers: [registry],
  });
  const now = deps.clock === undefined ? Date.now : () => deps.clock!.now().getTime();
  const outliers = new Outliers(
    {
      ejections: new Counter({
        name: 'ambit_outlier_ejections_total',
        help: "Endpoints ejected by a BackendTrafficPolicy's passive health check (Envoy's ejections_enforced_total), by why",
        labelNames: ['destination_service', 'endpoint', 'reason'],
        registers: [registry],
      }),
      overflows: new Counter({
        name: 'ambit_outlier_ejections_overflow_total',
        help: 'Outliers not ejected because maxEjectionPercent of the endpoints were out already',
        labelNames: ['destination_service', 'reason'],
        registers: [registry],
      }),
    },
    now,
  );
  new Gauge({
    name: 'ambit_outlier_ejected_endpoints',
    help: 'Endpoints ejected now by a passive health check, per backend Service',
    labelNames: ['destination_service'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [service, out] of outliers.ejected()) this.set({ destination_service: service }, out.length);
    },
  });
  const picker = new EndpointPicker(upstreams, random, outliers);
  const overflows = new Counter({
    name: 'ambit_waypoint_circuit_breaker_overflows_total',
    help: 'Requests refused (503, flag UO) or retries not made because a BackendTrafficPolicy circuit breaker was open or the retry budget spent, by the limit reached (reason="retryConstraint": the budget)',
    labelNames: ['destination_service', 'reason'],
    registers: [registry],
  });
  const jwks = new JwksCache({
    log: log.child({ component: 'jwks' }),
    ...(deps.clock === undefined ? {} : { clock: deps.clock }),
    fetched: new Counter({
      name: 'ambit_jwks_fetch_total',
      help: 'JWKS fetches for RequestAuthentication jwksUri, by result (success, failed): Envoy jwks_fetch_success/failed',
      labelNames: ['result'],
      registers: [registry],
    }),
  });
  const fwd: ForwardDeps & { dial: UpstreamsOptions } = {
    routing: () => routing,
    upstreams,
    metrics: new IstioHttpMetrics(registry),
    retries: new Counter({
      name: 'ambit_waypoint_retries_total',
      help: 'Retries of requests to a backend, by why (status code, connect-failure, reset, attempt-timeout)',
      labelNames: ['destination_service', 'reason'],
      registers: [registry],
    }),
    accessLog,
    log,
    ...(tracing === undefined ? {} : { tracing }),
    random,
    picker,
    dial,
    active: { count: 0, mirrors: 0 },
    breakers: new CircuitBreakers(overflows),
    budgets: new RetryBudgets(overflows),
    faults: new Counter({
      name: 'ambit_waypoint_faults_injected_total',
      help: 'Faults injected by a BackendTrafficPolicy (abort: flag FI, delay: flag DI)',
      labelNames: ['destination_service', 'fault'],
      registers: [registry],
    }),
    rateLimits: new RateLimits(
      new Counter({
        name: 'ambit_waypoint_rate_limit_buckets_evicted_total',
        help: 'Rate-limit buckets dropped (least recently used) to keep a replica under its bound, by policy',
        labelNames: ['policy'],
        registers: [registry],
      }),
      log.child({ component: 'rate-limit' }),
    ),
    rateLimited: new Counter({
      name: 'ambit_waypoint_rate_limited_requests_total',
      help: 'Requests answered 429 (flag RL) by a BackendTrafficPolicy local rate limit',
      labelNames: ['destination_service', 'policy'],
      registers: [registry],
    }),
    jwt: {
      jwks,
      counter: new Counter({
        name: 'ambit_jwt_authn_total',
        help: 'Requests a RequestAuthentication applied to, by result: allowed (valid token), denied (401/403), missing (no token): Envoy jwt_authn.allowed/denied',
        labelNames: ['destination_service', 'result'],
        registers: [registry],
      }),
    },
  };

  const http1 = createHttp1Server({
    maxHeaderSize: MAX_HEADER_BYTES,
    keepAliveTimeout: KEEP_ALIVE_MS,
    requestTimeout: 0,
  });
  http1.on('request', (req, res) => {
    void forward(fwd, (req.socket as unknown as ConnSocket).ctx, http1Downstream(req, res)).catch(
      (err: unknown) => log.error({ err }, 'request failed'),
    );
  });
  http1.on('upgrade', (req, socket, head) => handleUpgrade(fwd, req, socket, head));
  // A client that sends garbage or an oversized head gets the status node:http chose, and the log says who.
  http1.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const ctx = (socket as unknown as ConnSocket).ctx;
    log.warn({ peer: ctx?.client.identity, code: err.code, reason: err.message }, 'bad HTTP/1.1 request');
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const status =
      err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
  });
  // node:http2 wraps a stream that is not a socket, so a server's sessions cannot tell their
  // connection's context: each connection gets its own session, made by the handshake function.
  const http2 = (socket: ConnSocket): void => {
    const session = performServerHandshake(socket, {
      settings: H2_SETTINGS,
      maxSessionMemory: H2_MAX_SESSION_MEMORY,
      maxHeaderListPairs: 256,
    });
    session.on('error', (err) =>
      log.warn({ peer: socket.ctx.client.identity, reason: err.message }, 'HTTP/2 client session failed'),
    );
    session.on('stream', (stream, headers, flags) => {
      stream.on('error', () => undefined);
      void forward(fwd, socket.ctx, http2Downstream(stream, headers, flags)).catch((err: unknown) =>
        log.error({ err }, 'request failed'),
      );
    });
  };

  const serverName = sniFor(identity);
  const hbone = createHboneServer({
    trustDomain: cfg.trustDomain,
    bundle: dp.bundle,
    serverFor: async (sni) => {
      if (sni !== serverName) return undefined;
      const c = dp.certs.current(identity) ?? (await dp.certs.get(identity));
      return { context: c.context, identity };
    },
    onRequest: (req, stream) =>
      handleConnect(
        {
          routing: () => routing,
          http1,
          http2,
          upstreams,
          dial,
          accessLog,
          log: log.child({ component: 'inbound' }),
          random,
          picker,
          tcp: (flag) => tcpConnections.inc({ response_flags: flag }),
          refused: (flag) => refused.inc({ response_flags: flag }),
        },
        req,
        stream,
      ),
    onRefused: (outcome) => refused.inc({ response_flags: outcomeInfo(outcome).flag }),
    log: log.child({ component: 'hbone-server' }),
  });
  dp.onBundle((bundle) => hbone.setSecureContext({ ...TLS_OPTIONS, ca: bundle.join('') }));

  const endpoints = await startEndpoints({
    log,
    registry,
    readinessPort: cfg.readinessPort,
    metricsPort: cfg.metricsPort,
    adminPort: cfg.adminPort,
    notReady: () =>
      routing === undefined ? 'no config yet' : hasCert ? undefined : `no certificate for ${identity} yet`,
    admin: adminRoutes({
      cfg,
      identity,
      routing: () => routing,
      upstreams,
      dp,
      pool: hbonePool,
      jwks,
      ...(fwd.breakers === undefined ? {} : { breakers: fwd.breakers }),
      outliers,
      ...(fwd.budgets === undefined ? {} : { budgets: fwd.budgets }),
    }),
  });

  dp.onConfig((next, version) => {
    const authz = [...next.policies.values()].flatMap((p) =>
      p.kind === 'AuthorizationPolicy' && p.targetRefs !== undefined ? [p] : [],
    );
    const requestAuthn = [...next.policies.values()].flatMap((p) =>
      p.kind === 'RequestAuthentication' ? [p] : [],
    );
    jwks.retain(requestAuthn.flatMap((p) => p.jwtRules));
    const next_ = new RoutingState(new MeshIndex(next.view), next.routes, self, authz, requestAuthn);
    routing = next_;
    outliers.retain(
      new Set(next.view.services.flatMap((s) => (s.trafficPolicy?.passiveHealthCheck ? [s.hostname] : []))),
    );
    // Pools to endpoints that moved (a pod IP now another pod's, identity or node) are closed.
    upstreams.retain((ep) => {
      const w = next_.mesh.workloadByIp(ep.ip);
      if (w === undefined) return false;
      const now = next_.endpointOf(w, ep.port, ep.ip.includes(':'));
      return (
        now !== undefined &&
        now.hbone?.identity === ep.hbone?.identity &&
        now.hbone?.nodeIp === ep.hbone?.nodeIp
      );
    });
    const hosts = new Set(next.view.services.map((s) => s.hostname));
    fwd.budgets?.retain((h) => hosts.has(h));
    fwd.rateLimits?.retain(
      new Set(
        next.view.services.flatMap((s) => {
          const p = s.trafficPolicy;
          return p?.rateLimit === undefined ? [] : ruleKeys(p.policy, p.rateLimit);
        }),
      ),
    );
    log.info({ version, routes: next.routes.size, services: next.view.services.length }, 'config applied');
  });
  // The first certificate can be refused while the control plane has not seen this pod yet: retry.
  const fetchCert = (attempt: number): void => {
    if (signal.aborted) return;
    dp.certs.get(identity).then(
      () => {
        hasCert = true;
      },
      (err: unknown) => {
        const wait = backoffDelay(attempt, RECONNECT_BACKOFF);
        log.warn(
          { identity, err: describeError(err), retryInMs: wait },
          'cannot get the waypoint certificate yet',
        );
        setTimeout(() => fetchCert(attempt + 1), wait).unref();
      },
    );
  };
  fetchCert(0);
  if (!(await dp.firstConfig)) {
    endpoints.close();
    dp.close();
    return undefined;
  }
  const hbonePort = await listen(hbone, cfg.hbonePort, '::');
  log.info({ hbone: hbonePort, identity, tracing: cfg.otlpEndpoint ?? 'off' }, 'waypoint ready');
  return {
    ports: { hbone: hbonePort, ...endpoints.ports },
    registry,
    stop: async () => {
      routing = undefined;
      await drain([hbone], () => fwd.active.count, DRAIN_MS);
      http1.close();
      await upstreams.close();
      hbonePool.close();
      jwks.close();
      await tracing?.shutdown().catch(() => undefined);
      dp.close();
      endpoints.close();
    },
  };
}
