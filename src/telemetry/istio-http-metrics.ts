import type { Registry } from 'prom-client';
import { PEER_LABELS, type PeerFacts, type PeerLabels, peerLabels } from './istio-labels.js';
import { type CounterSeries, FastCounter, FastHistogram, type HistogramSeries } from './series.js';

/** Istio's HTTP labels: the peers, then what the request was and how it ended. */
export const HTTP_LABELS = [
  ...PEER_LABELS,
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
] as const;
type LabelName = (typeof HTTP_LABELS)[number];
export type HttpLabels = Record<LabelName, string>;

/** Istio's buckets for request duration, in milliseconds. */
export const DURATION_BUCKETS_MS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
];
/** Istio's buckets for request and response sizes, in bytes (1 to 10^8, by tens). */
export const SIZE_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000];

export function httpLabels(
  f: PeerFacts & {
    readonly protocol: 'http' | 'grpc';
    readonly status: number;
    readonly grpcStatus: number | undefined;
    readonly flags: string;
    readonly securityPolicy: string;
  },
): HttpLabels {
  const peers: PeerLabels = peerLabels(f);
  return {
    ...peers,
    request_protocol: f.protocol,
    response_code: String(f.status),
    grpc_response_status: f.grpcStatus === undefined ? '' : String(f.grpcStatus),
    response_flags: f.flags,
    connection_security_policy: f.securityPolicy,
  };
}

/** What a request's labels are made of (the facts `httpLabels` reads). */
export type HttpFacts = Parameters<typeof httpLabels>[0];

interface HttpSeries {
  readonly requests: CounterSeries;
  readonly duration: HistogramSeries;
  readonly requestBytes: HistogramSeries;
  readonly responseBytes: HistogramSeries;
}

const peerKey = (w: HttpFacts['src']): string =>
  w === undefined
    ? ''
    : `${w.workloadName}\u0001${w.app}\u0001${w.labels.version ?? '\u0002'}\u0001${w.namespace}`;

/** A key of the facts the labels are made of: cheap to build, so a request costs one map lookup. */
function factsKey(f: HttpFacts): string {
  const svc =
    f.service === undefined
      ? `\u0002${f.target ?? ''}`
      : `${f.service.hostname}\u0001${f.service.namespace}\u0001${f.service.name}`;
  return `${f.reporter}\u0000${peerKey(f.src)}\u0000${f.srcPrincipal ?? ''}\u0000${peerKey(f.dst)}\u0000${f.dstPrincipal ?? ''}\u0000${svc}\u0000${f.protocol}\u0000${f.status}\u0000${f.grpcStatus ?? ''}\u0000${f.flags}\u0000${f.securityPolicy}`;
}

/**
 * Istio's standard HTTP metrics with Istio's names, labels and buckets, so that Kiali and Istio's
 * Grafana boards read a waypoint as they read Envoy. A request costs one lookup by the facts its
 * labels come from; the labels are computed once per new set of facts (two sets of facts with the
 * same labels share one series, so the export never repeats a label set).
 */
export class IstioHttpMetrics {
  readonly requests: FastCounter;
  readonly duration: FastHistogram;
  readonly requestBytes: FastHistogram;
  readonly responseBytes: FastHistogram;
  private readonly byFacts = new Map<string, HttpSeries>();
  private readonly byLabels = new Map<string, HttpSeries>();

  constructor(registry: Registry) {
    this.requests = new FastCounter(
      'istio_requests_total',
      'Requests handled, by source, destination and outcome',
      registry,
    );
    this.duration = new FastHistogram(
      'istio_request_duration_milliseconds',
      'Time from the first byte of the request to the last byte of the response',
      DURATION_BUCKETS_MS,
      registry,
    );
    this.requestBytes = new FastHistogram(
      'istio_request_bytes',
      'Request sizes (headers and body)',
      SIZE_BUCKETS,
      registry,
    );
    this.responseBytes = new FastHistogram(
      'istio_response_bytes',
      'Response sizes (headers and body)',
      SIZE_BUCKETS,
      registry,
    );
  }

  /** Counts one finished request. */
  record(facts: HttpFacts, durationMs: number, requestBytes: number, responseBytes: number): void {
    const fk = factsKey(facts);
    let s = this.byFacts.get(fk);
    if (s === undefined) {
      const labels = httpLabels(facts);
      const lk = HTTP_LABELS.map((l) => labels[l]).join('\u0000');
      s = this.byLabels.get(lk);
      if (s === undefined) {
        const get = () => labels;
        s = {
          requests: this.requests.series(lk, get),
          duration: this.duration.series(lk, get),
          requestBytes: this.requestBytes.series(lk, get),
          responseBytes: this.responseBytes.series(lk, get),
        };
        this.byLabels.set(lk, s);
      }
      this.byFacts.set(fk, s);
    }
    s.requests.inc();
    s.duration.observe(durationMs);
    s.requestBytes.observe(requestBytes);
    s.responseBytes.observe(responseBytes);
  }
}
