import type { Registry } from 'prom-client';

/*
 * Counters and histograms for a hot path, registered in a prom-client Registry and exported by it
 * like its own metrics. A series is resolved once per label set (the caller keys it by what it knows,
 * cheaply) and each increment is then a number added in place: prom-client validates and hashes the
 * labels on every `inc`/`observe` even of a labelled child, ~8 us each, four times per request.
 */

type Labels = Readonly<Record<string, string>>;

interface Exported {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly values: { labels: Record<string, string | number>; value: number; metricName?: string }[];
  readonly aggregator: 'sum';
}

export interface CounterSeries {
  inc(n?: number): void;
}

export interface HistogramSeries {
  observe(v: number): void;
}

/** A counter whose series are resolved once (`series(key, labels)`) and incremented in place. */
export class FastCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  private readonly map = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    registry: Registry,
  ) {
    registry.registerMetric(this as never);
  }

  series(key: string, labels: () => Labels): CounterSeries {
    let s = this.map.get(key);
    if (s === undefined) {
      s = { labels: labels(), value: 0 };
      this.map.set(key, s);
    }
    const entry = s;
    return {
      inc: (n = 1) => {
        entry.value += n;
      },
    };
  }

  async get(): Promise<Exported> {
    return {
      name: this.name,
      help: this.help,
      type: 'counter',
      values: [...this.map.values()].map((s) => ({ labels: { ...s.labels }, value: s.value })),
      aggregator: 'sum',
    };
  }

  reset(): void {
    this.map.clear();
  }
}

/** A histogram (Prometheus buckets, cumulative on export) resolved once per series. */
export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly map = new Map<
    string,
    { labels: Labels; counts: Float64Array; sum: number; count: number }
  >();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as never);
  }

  series(key: string, labels: () => Labels): HistogramSeries {
    let s = this.map.get(key);
    if (s === undefined) {
      s = { labels: labels(), counts: new Float64Array(this.buckets.length), sum: 0, count: 0 };
      this.map.set(key, s);
    }
    const entry = s;
    const bounds = this.buckets;
    return {
      observe: (v) => {
        entry.sum += v;
        entry.count++;
        for (let i = 0; i < bounds.length; i++) {
          if (v <= bounds[i]!) {
            entry.counts[i]!++;
            break;
          }
        }
      },
    };
  }

  async get(): Promise<Exported> {
    const values: Exported['values'] = [];
    for (const s of this.map.values()) {
      let acc = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        acc += s.counts[i]!;
        values.push({
          labels: { le: this.buckets[i]!, ...s.labels },
          value: acc,
          metricName: `${this.name}_bucket`,
        });
      }
      values.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }

  reset(): void {
    this.map.clear();
  }
}
