import { hostPort } from '../../mesh/ip.js';
import type { MeshService, Workload } from '../../mesh/view.js';
import { type IstioTcpMetrics, labelValue, type TcpLabels } from '../../telemetry/istio-tcp-metrics.js';
import type { Logger } from '../../telemetry/logger.js';
import { ResponseFlag } from './outbound-route.js';

export type Direction = 'outbound' | 'inbound';

/** The live connections of a proxy, for `ambit proxy-config connections`. */
export interface ConnectionSummary {
  readonly id: number;
  readonly direction: Direction;
  readonly src: string;
  readonly dst: string;
  readonly srcWorkload?: string;
  readonly dstWorkload?: string;
  readonly service?: string;
  readonly startedAt: string;
}

/**
 * Everything known about one connection, filled in as it progresses. `finish` is the one place that
 * writes its access-log line and records its metrics, so the two always agree: exactly one line and
 * one closed (or failed) count per connection.
 */
export class ConnectionRecord {
  readonly id: number;
  readonly started = Date.now();
  originalDst?: { ip: string; port: number };
  target?: { ip: string; port: number };
  srcWorkload?: Workload;
  srcIdentity?: string;
  dstWorkload?: Workload;
  dstIdentity?: string;
  service?: MeshService;
  flag: ResponseFlag = ResponseFlag.None;
  reason?: string;
  securityPolicy: 'mutual_tls' | 'none' | 'unknown' = 'none';
  private opened = false;
  private done = false;

  constructor(
    private readonly recorder: ConnectionRecorder,
    readonly direction: Direction,
    readonly src: { ip: string; port: number },
  ) {
    this.id = recorder.nextId();
  }

  private labels(): TcpLabels {
    const s = this.srcWorkload;
    const d = this.dstWorkload;
    return {
      reporter: this.direction === 'outbound' ? 'source' : 'destination',
      source_workload: labelValue(s?.workloadName),
      source_workload_namespace: labelValue(s?.namespace),
      source_principal: labelValue(this.srcIdentity ?? s?.identity),
      source_app: labelValue(s?.app),
      destination_service: labelValue(
        this.service?.hostname ?? (this.target === undefined ? undefined : this.target.ip),
      ),
      destination_service_name: labelValue(this.service?.name),
      destination_service_namespace: labelValue(this.service?.namespace),
      destination_workload: labelValue(d?.workloadName),
      destination_workload_namespace: labelValue(d?.namespace),
      destination_principal: labelValue(this.dstIdentity ?? d?.identity),
      destination_app: labelValue(d?.app),
      request_protocol: 'tcp',
      response_flags: this.flag,
      connection_security_policy: this.securityPolicy,
    };
  }

  /** The upstream side is connected: the connection counts as opened. */
  established(): void {
    if (this.opened || this.done) return;
    this.opened = true;
    this.recorder.metrics.series(this.labels()).opened.inc();
    this.recorder.live.set(this.id, this);
  }

  /** Ends the record: bytes as the proxy moved them (received = from the source, sent = to the source). */
  finish(bytes: { received: number; sent: number }, error?: string): void {
    if (this.done) return;
    this.done = true;
    this.recorder.live.delete(this.id);
    const series = this.recorder.metrics.series(this.labels());
    if (this.opened) {
      series.closed.inc();
      if (bytes.received > 0) series.receivedBytes.inc(bytes.received);
      if (bytes.sent > 0) series.sentBytes.inc(bytes.sent);
    } else {
      series.failed.inc();
    }
    const entry: Record<string, unknown> = {
      direction: this.direction,
      'src.addr': hostPort(this.src.ip, this.src.port),
      'src.workload': this.srcWorkload?.name,
      'src.namespace': this.srcWorkload?.namespace,
      'src.identity': this.srcIdentity ?? this.srcWorkload?.identity,
      'dst.addr': this.target === undefined ? undefined : hostPort(this.target.ip, this.target.port),
      'dst.service': this.service?.hostname,
      'dst.workload': this.dstWorkload?.name,
      'dst.namespace': this.dstWorkload?.namespace,
      'dst.identity': this.dstIdentity ?? this.dstWorkload?.identity,
      original_dst:
        this.originalDst === undefined ? undefined : hostPort(this.originalDst.ip, this.originalDst.port),
      bytes_sent: bytes.sent,
      bytes_recv: bytes.received,
      duration_ms: Date.now() - this.started,
      response_flags: this.flag,
      connection_security_policy: this.securityPolicy,
    };
    if (error !== undefined || this.reason !== undefined) entry.error = error ?? this.reason;
    const level = this.opened ? 'info' : 'warn';
    this.recorder.log[level](entry, this.opened ? 'connection complete' : 'connection failed');
  }

  summary(): ConnectionSummary {
    return {
      id: this.id,
      direction: this.direction,
      src: hostPort(this.src.ip, this.src.port),
      dst: this.target === undefined ? '' : hostPort(this.target.ip, this.target.port),
      ...(this.srcWorkload === undefined
        ? {}
        : { srcWorkload: `${this.srcWorkload.namespace}/${this.srcWorkload.name}` }),
      ...(this.dstWorkload === undefined
        ? {}
        : { dstWorkload: `${this.dstWorkload.namespace}/${this.dstWorkload.name}` }),
      ...(this.service === undefined ? {} : { service: this.service.hostname }),
      startedAt: new Date(this.started).toISOString(),
    };
  }
}

export class ConnectionRecorder {
  readonly live = new Map<number, ConnectionRecord>();
  private id = 0;

  constructor(
    readonly metrics: IstioTcpMetrics,
    /** The access log: a child logger whose lines are one per connection. */
    readonly log: Logger,
  ) {}

  nextId(): number {
    return ++this.id;
  }

  start(direction: Direction, src: { ip: string; port: number }): ConnectionRecord {
    return new ConnectionRecord(this, direction, src);
  }
}
