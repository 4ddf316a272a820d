import { existsSync, readFileSync } from 'node:fs';
import { Gauge, type Registry } from 'prom-client';
import { GrpcCaClient } from '../api/ca-client.js';
import { followConfig } from '../api/config-client.js';
import type { PushedConfig } from '../api/config-codec.js';
import { controlPlaneIdentity } from '../api/identities.js';
import { type Clock, systemClock } from '../clock.js';
import { WorkloadCertificates } from '../identity/workload-certs.js';
import { splitPem } from '../identity/x509.js';
import type { Logger } from '../telemetry/logger.js';

/**
 * What every proxy daemon (node proxy, waypoint) runs beside its listeners: it follows the control
 * plane's config stream, holds the trust bundle (rotated with the config) and the workload
 * certificates (issued by the control plane's CA, renewed at half life), and reports all three in
 * metrics. Proxies keep serving their last good config while the control plane is away.
 */
export interface DataplaneOptions {
  /** The name this proxy asks the config stream for (its node). */
  readonly node: string;
  readonly trustDomain: string;
  /** The control plane's gRPC address (`host:port`). */
  readonly controlPlane: string;
  /** PEM trust bundle to verify the control plane with until the first config brings the current one. */
  readonly caBundlePath: string;
  /** File holding this proxy's bearer token (re-read for every call, so it can rotate). */
  readonly tokenPath: string;
  /** Requested workload certificate lifetime; 0 leaves it to the CA. */
  readonly certTtlSeconds: number;
  readonly clock?: Clock;
}

export interface Dataplane {
  readonly certs: WorkloadCertificates;
  bundle(): readonly string[];
  /** The config in force (undefined before the first). */
  config(): PushedConfig | undefined;
  /** Every new config (and at once the one in force), after a changed trust bundle has been taken in. */
  onConfig(listener: (config: PushedConfig, version: string) => void): void;
  /** A rotated trust bundle: TLS servers must verify clients against it from now on. */
  onBundle(listener: (bundle: readonly string[]) => void): void;
  /** Resolves true at the first config, false when stopped before one came. */
  readonly firstConfig: Promise<boolean>;
  close(): void;
}

async function waitForFile(path: string, log: Logger, signal: AbortSignal): Promise<string | undefined> {
  while (!signal.aborted) {
    if (existsSync(path)) {
      const text = readFileSync(path, 'utf8');
      if (text.trim() !== '') return text;
    }
    log.info({ path }, 'waiting for the file');
    await new Promise((r) => setTimeout(r, 500));
  }
  return undefined;
}

/** Starts following the control plane; resolves once the initial trust bundle is in hand. */
export async function startDataplane(
  o: DataplaneOptions,
  log: Logger,
  registry: Registry,
  signal: AbortSignal,
): Promise<Dataplane | undefined> {
  const configVersion = new Gauge({
    name: 'ambit_proxy_config_version',
    help: 'Version of the config in force',
    registers: [registry],
  });
  const connected = new Gauge({
    name: 'ambit_proxy_control_plane_connected',
    help: '1 while the config stream to the control plane is up',
    registers: [registry],
  });
  const certExpiry = new Gauge({
    name: 'ambit_workload_cert_expiry_timestamp_seconds',
    help: 'When each workload certificate this proxy holds expires',
    labelNames: ['identity'],
    registers: [registry],
  });
  const initial = await waitForFile(o.caBundlePath, log, signal);
  if (initial === undefined) return undefined;
  let bundle = splitPem(initial);
  const token = (): string => readFileSync(o.tokenPath, 'utf8').trim();
  const cpIdentity = controlPlaneIdentity(o.trustDomain);
  const ca = new GrpcCaClient(o.controlPlane, token, bundle, cpIdentity);
  const certs = new WorkloadCertificates(ca, {
    ttlSeconds: o.certTtlSeconds,
    clock: o.clock ?? systemClock,
    log: log.child({ component: 'certificates' }),
    bundle: () => bundle,
    onIssued: (c) => certExpiry.set({ identity: c.identity }, c.notAfter.getTime() / 1000),
  });
  let current: { config: PushedConfig; version: string } | undefined;
  const configListeners: ((c: PushedConfig, v: string) => void)[] = [];
  const bundleListeners: ((b: readonly string[]) => void)[] = [];
  const stop = new AbortController();
  signal.addEventListener('abort', () => stop.abort(), { once: true });
  const firstConfig = new Promise<boolean>((resolve) => {
    stop.signal.addEventListener('abort', () => resolve(false), { once: true });
    void followConfig(
      {
        address: o.controlPlane,
        node: o.node,
        token,
        bundle: () => bundle,
        cpIdentity,
        log: log.child({ component: 'config' }),
        onConfig: (next, version) => {
          if (next.trustBundle.length > 0 && next.trustBundle.join('') !== bundle.join('')) {
            bundle = [...next.trustBundle];
            ca.setBundle(bundle);
            certs.bundleChanged();
            for (const l of bundleListeners) l(bundle);
            log.info({ roots: bundle.length }, 'trust bundle updated');
          }
          current = { config: next, version };
          configVersion.set(Number(version));
          for (const l of configListeners) l(next, version);
          resolve(true);
        },
        onConnection: (up) => connected.set(up ? 1 : 0),
      },
      stop.signal,
    );
  });
  return {
    certs,
    bundle: () => bundle,
    config: () => current?.config,
    onConfig: (l) => {
      configListeners.push(l);
      // A listener that arrives late still starts from the config in force.
      if (current !== undefined) l(current.config, current.version);
    },
    onBundle: (l) => bundleListeners.push(l),
    firstConfig,
    close: () => {
      stop.abort();
      certs.close();
      ca.close();
    },
  };
}
