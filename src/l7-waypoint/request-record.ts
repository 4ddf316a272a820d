import type { Counter } from 'prom-client';
import type { RuleRef } from '../mesh/l7-route.js';
import type { MeshService, Workload } from '../mesh/view.js';
import type { IstioHttpMetrics } from '../telemetry/istio-http-metrics.js';
import type { Logger } from '../telemetry/logger.js';

/**
 * Everything known about one request through the waypoint, filled in as it goes. `finish` is the one
 * place that records its metrics and writes its access-log line, so the two always agree: one line
 * and one count per request, label by label.
 */
export class RequestRecord {
  readonly started = performance.now();
  route?: RuleRef;
  backend?: MeshService;
  /** The endpoint of the last attempt. */
  endpoint?: Workload;
  upstreamHost?: string;
  status = 0;
  grpcStatus?: number;
  /** Envoy response flags, in the order they happened (`UF`, `URX`). */
  readonly flags: string[] = [];
  attempts = 0;
  /** Why each retry was made: the status code, or how the attempt's connection ended. */
  readonly retried: string[] = [];
  requestBytes = 0;
  responseBytes = 0;
  traceId?: string;
  reason?: string;
  /** The AuthorizationPolicy that decided (ALLOW or DENY), or the ALLOW policies none of which matched. */
  policy?: string;
  /** The AUDIT policies that matched. */
  audited?: readonly string[];
  /** The verified JWT's principal, `<iss>/<sub>` (RequestAuthentication). */
  requestPrincipal?: string;
  private done = false;

  constructor(
    private readonly sink: {
      metrics: IstioHttpMetrics;
      retries: Counter<'destination_service' | 'reason'>;
      log: Logger;
    },
    readonly src: { readonly workload?: Workload; readonly identity: string; readonly address: string },
    readonly req: {
      readonly method: string;
      readonly path: string;
      readonly authority: string;
      readonly protocol: string;
      readonly grpc: boolean;
      readonly requestId: string;
      readonly userAgent?: string;
    },
    /** The Service the client addressed (before routing). */
    readonly addressed: MeshService | undefined,
    /** The destination's name when no Service is known (a pod): never a client-chosen value. */
    readonly target: string,
  ) {}

  finish(): void {
    if (this.done) return;
    this.done = true;
    const durationMs = performance.now() - this.started;
    const flags = this.flags.length === 0 ? '-' : [...new Set(this.flags)].join(',');
    const service = this.backend ?? this.addressed;
    for (const reason of this.retried)
      this.sink.retries.inc({ destination_service: service?.hostname ?? 'unknown', reason });
    this.sink.metrics.record(
      {
        reporter: 'waypoint',
        src: this.src.workload,
        srcPrincipal: this.src.identity,
        dst: this.endpoint,
        dstPrincipal: this.endpoint?.identity,
        service,
        target: this.target,
        protocol: this.req.grpc ? 'grpc' : 'http',
        status: this.status,
        grpcStatus: this.grpcStatus,
        flags,
        securityPolicy: 'mutual_tls',
      },
      durationMs,
      this.requestBytes,
      this.responseBytes,
    );
    this.sink.log.info(
      {
        src: this.src.address,
        src_identity: this.src.identity,
        ...(this.src.workload === undefined
          ? {}
          : { src_workload: `${this.src.workload.namespace}/${this.src.workload.name}` }),
        method: this.req.method,
        path: this.req.path,
        authority: this.req.authority,
        protocol: this.req.protocol,
        status: this.status,
        ...(this.grpcStatus === undefined ? {} : { grpc_status: this.grpcStatus }),
        flags,
        duration_ms: Math.round(durationMs * 1000) / 1000,
        request_bytes: this.requestBytes,
        response_bytes: this.responseBytes,
        ...(this.route === undefined
          ? {}
          : {
              route: `${this.route.kind}/${this.route.namespace}/${this.route.name}`,
              rule: this.route.rule,
            }),
        ...(service === undefined ? {} : { service: service.hostname }),
        ...(this.endpoint === undefined
          ? {}
          : { endpoint: `${this.endpoint.namespace}/${this.endpoint.name}` }),
        ...(this.upstreamHost === undefined ? {} : { upstream: this.upstreamHost }),
        attempts: this.attempts,
        retries: this.retried.length,
        ...(this.retried.length === 0 ? {} : { retried_on: this.retried }),
        request_id: this.req.requestId,
        ...(this.traceId === undefined ? {} : { trace_id: this.traceId }),
        ...(this.req.userAgent === undefined ? {} : { user_agent: this.req.userAgent }),
        ...(this.reason === undefined ? {} : { reason: this.reason }),
        ...(this.policy === undefined ? {} : { authz_policy: this.policy }),
        ...(this.audited === undefined ? {} : { audited_by: this.audited }),
        ...(this.requestPrincipal === undefined ? {} : { request_principal: this.requestPrincipal }),
      },
      'request',
    );
  }
}
