import { Counter, type Registry } from 'prom-client';
import { TCP_LABELS, type TcpLabels } from './istio-labels.js';

type LabelName = (typeof TCP_LABELS)[number];

/** The five counters of one label set, resolved once: prom-client hashes labels on every inc otherwise. */
export interface TcpSeries {
  readonly opened: { inc(n?: number): void };
  readonly closed: { inc(n?: number): void };
  readonly failed: { inc(n?: number): void };
  readonly sentBytes: { inc(n?: number): void };
  readonly receivedBytes: { inc(n?: number): void };
}

/**
 * Istio's standard TCP metrics, with Istio's names and labels, so that existing dashboards (Kiali,
 * the Istio Grafana boards) work on Ambit. Values are bounded sets; a missing value is `unknown`.
 */
export class IstioTcpMetrics {
  readonly opened: Counter<LabelName>;
  readonly closed: Counter<LabelName>;
  readonly failed: Counter<LabelName>;
  readonly sentBytes: Counter<LabelName>;
  readonly receivedBytes: Counter<LabelName>;
  private readonly cache = new Map<string, TcpSeries>();

  constructor(registry: Registry) {
    const make = (name: string, help: string) =>
      new Counter({ name, help, labelNames: TCP_LABELS, registers: [registry] });
    this.opened = make('istio_tcp_connections_opened_total', 'TCP connections opened');
    this.closed = make('istio_tcp_connections_closed_total', 'TCP connections closed');
    this.failed = make('istio_tcp_connections_failed_total', 'TCP connections that failed to establish');
    this.sentBytes = make('istio_tcp_sent_bytes_total', 'Bytes sent to the source (response direction)');
    this.receivedBytes = make(
      'istio_tcp_received_bytes_total',
      'Bytes received from the source (request direction)',
    );
  }

  /** The counters of one label set; label sets are bounded (workloads x services x flags), so is the cache. */
  series(labels: TcpLabels): TcpSeries {
    const key = TCP_LABELS.map((l) => labels[l]).join('\u0000');
    let s = this.cache.get(key);
    if (s === undefined) {
      s = {
        opened: this.opened.labels(labels),
        closed: this.closed.labels(labels),
        failed: this.failed.labels(labels),
        sentBytes: this.sentBytes.labels(labels),
        receivedBytes: this.receivedBytes.labels(labels),
      };
      this.cache.set(key, s);
    }
    return s;
  }
}
