import type { Counter } from 'prom-client';
import type { AttemptResult } from '../mesh/http-retry.js';
import type { PassiveHealthCheck } from '../traffic-policy/balancing.js';
import { type Ejected, OutlierDetector } from './outlier-detector.js';

/**
 * The outlier detectors of this waypoint replica, one per backend Service whose BackendTrafficPolicy
 * has `healthCheck.passive`: fed every attempt's outcome, asked which endpoints are out. Ejections are
 * counted in `ambit_outlier_ejections_total` (Envoy's ejections_enforced_total, by reason) and refusals
 * by maxEjectionPercent in `ambit_outlier_ejections_overflow_total`.
 */
export class Outliers {
  private readonly detectors = new Map<string, OutlierDetector>();

  constructor(
    private readonly metrics: {
      readonly ejections: Counter<'destination_service' | 'endpoint' | 'reason'>;
      readonly overflows: Counter<'destination_service' | 'reason'>;
    },
    private readonly now: () => number = Date.now,
  ) {}

  private of(service: string, config: PassiveHealthCheck): OutlierDetector {
    let d = this.detectors.get(service);
    if (d === undefined) {
      d = new OutlierDetector(config);
      this.detectors.set(service, d);
    } else d.configure(config);
    return d;
  }

  /** One attempt's outcome at an endpoint (`key`, its address) of a Service with `total` endpoints. */
  record(
    service: string,
    config: PassiveHealthCheck,
    key: string,
    outcome: AttemptResult,
    total: number,
  ): void {
    const v = this.of(service, config).record(key, outcome, this.now(), total);
    if (v?.kind === 'ejected')
      this.metrics.ejections.inc({ destination_service: service, endpoint: key, reason: v.reason });
    else if (v?.kind === 'overflow')
      this.metrics.overflows.inc({ destination_service: service, reason: v.reason });
  }

  /** Whether the endpoint is ejected now (the sweeps due have run). */
  isEjected(service: string, key: string): boolean {
    const d = this.detectors.get(service);
    if (d === undefined) return false;
    d.advance(this.now());
    return d.isEjected(key);
  }

  /** Every Service's ejected endpoints now, for the gauge and proxy-config. */
  ejected(): Map<string, Ejected[]> {
    const out = new Map<string, Ejected[]>();
    const now = this.now();
    for (const [service, d] of this.detectors) out.set(service, d.ejected(now));
    return out;
  }

  /** Forgets the detectors of Services that no longer have a passive health check. */
  retain(services: ReadonlySet<string>): void {
    for (const s of this.detectors.keys()) if (!services.has(s)) this.detectors.delete(s);
  }
}
