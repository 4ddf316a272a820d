import { Counter, type Registry } from 'prom-client';

/**
 * Istio's standard TCP metrics, with Istio's names and labels, so that existing dashboards (Kiali,
 * the Istio Grafana boards) work on Ambit. Values are bounded sets; a missing value is `unknown`.
 */
export const TCP_LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
] as const;

export type TcpLabels = Record<(typeof TCP_LABELS)[number], string>;

export class IstioTcpMetrics {
  readonly opened: Counter<(typeof TCP_LABELS)[number]>;
  readonly closed: Counter<(typeof TCP_LABELS)[number]>;
  readonly failed: Counter<(typeof TCP_LABELS)[number]>;
  readonly sentBytes: Counter<(typeof TCP_LABELS)[number]>;
  readonly receivedBytes: Counter<(typeof TCP_LABELS)[number]>;

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
}

/** `unknown` for a missing label value, as Istio reports it. */
export function labelValue(v: string | undefined): string {
  return v === undefined || v === '' ? 'unknown' : v;
}
