import { hostPort } from '../net/ip.js';
import { type PeerService, type PeerWorkload, type TcpLabels, tcpLabels } from './istio-labels.js';

export type { PeerService, PeerWorkload } from './istio-labels.js';

import type { IstioTcpMetrics } from './istio-tcp-metrics.js';
import type { Logger } from './logger.js';
import { type Outcome, outcomeInfo, ResponseFlag } from './outcomes.js';

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
  srcWorkload?: PeerWorkload;
  srcIdentity?: string;
  dstWorkload?: PeerWorkload;
  dstIdentity?: string;
  service?: PeerService;
  /** How it ended, when it did not succeed; its response flag comes from the outcome table. */
  outcome?: Outcome;
  reason?: string;
  securityPolicy: 'mutual_tls' | 'none' | 'unknown' = 'none';
  /** For HBONE: the node proxy the tunnel went to (`ip:15008`). */
  hboneAddr?: string;
  /** For inbound connections: decides again under the policies now in force (a DENY closes it). */
  recheck?: () => { readonly allowed: boolean; readonly reason: string };
  /** Ends the live connection (both sides) when policy no longer allows it. */
  abort?: (reason: string) => void;
  private opened = false;
  private done = false;

  constructor(
    private readonly recorder: ConnectionRecorder,
    readonly direction: Direction,
    readonly src: { ip: string; port: number },
  ) {
    this.id = recorder.nextId();
  }

  get flag(): ResponseFlag {
    return this.outcome === undefined ? ResponseFlag.None : outcomeInfo(this.outcome).flag;
  }

  /**
   * Who the source is, as far as it was proven: outbound, the pod the kernel says made the connection;
   * inbound, the identity its certificate proved (none for plaintext).
   */
  private sourceIdentity(): string | undefined {
    return this.srcIdentity ?? (this.direction === 'outbound' ? this.srcWorkload?.identity : undefined);
  }

  private labels(): TcpLabels {
    return tcpLabels({
      reporter: this.direction === 'outbound' ? 'source' : 'destination',
      src: this.srcWorkload,
      srcPrincipal: this.sourceIdentity(),
      dst: this.dstWorkload,
      dstPrincipal: this.dstIdentity ?? this.dstWorkload?.identity,
      service: this.service,
      target: this.target?.ip,
      flag: this.flag,
      securityPolicy: this.securityPolicy,
    });
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
      'src.identity': this.sourceIdentity(),
      'dst.addr': this.target === undefined ? undefined : hostPort(this.target.ip, this.target.port),
      'dst.hbone_addr': this.hboneAddr,
      'dst.service': this.service?.hostname,
      'dst.workload': this.dstWorkload?.name,
      'dst.namespace': this.dstWorkload?.namespace,
      'dst.identity': this.dstIdentity ?? this.dstWorkload?.identity,
      original_dst:
        this.originalDst === undefined ? undefined : hostPort(this.originalDst.ip, this.originalDst.port),
      bytes_sent: bytes.sent,
      bytes_recv: bytes.received,
      duration: `${Date.now() - this.started}ms`,
      response_flags: this.flag,
      connection_security_policy: this.securityPolicy,
    };
    if (error !== undefined || this.reason !== undefined) entry.error = error ?? this.reason;
    const level = this.opened ? 'info' : 'warn';
    this.recorder.log[level](entry, this.opened ? 'connection complete' : 'connection failed');
  }

  /** Ends a connection that never got through: why, in the outcome table's terms. */
  refuse(outcome: Outcome, reason: string): void {
    this.outcome = outcome;
    this.reason = reason;
    this.finish({ received: 0, sent: 0 });
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

  /**
   * Decides again, for every live inbound connection, whether it is still allowed, and ends the ones
   * that are not: a DENY applied while a connection is open closes it.
   */
  recheckLive(): { closed: number } {
    let closed = 0;
    for (const rec of [...this.live.values()]) {
      if (rec.direction !== 'inbound' || rec.recheck === undefined || rec.abort === undefined) continue;
      const d = rec.recheck();
      if (d.allowed) continue;
      rec.abort(`closed: policy changed and the connection is now ${d.reason}`);
      closed++;
    }
    return { closed };
  }
}
