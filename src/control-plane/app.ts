import * as grpc from '@grpc/grpc-js';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { CA_ADMIN_PATHS, type CaStatus } from '../api/ca-admin.js';
import { services, withPreserializedResponses } from '../api/grpc.js';
import { controlPlaneIdentity } from '../api/identities.js';
import { type Clock, systemClock } from '../clock.js';
import type { ClusterSource } from '../cluster/source.js';
import { ClusterStore } from '../cluster/store.js';
import { CertificateAuthority } from '../identity/ca.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import { certInfo } from '../identity/x509.js';
import type { TokenReviewer } from '../kube/token-review.js';
import { listen } from '../net/listen.js';
import { endpointServer, metricsHandler } from '../telemetry/http-endpoints.js';
import type { Logger } from '../telemetry/logger.js';
import { caServiceImpl } from './ca-service.js';
import type { ControlPlaneConfig } from './config.js';
import { ConfigPublisher, configServiceImpl } from './config-service.js';
import { MeshConfigBuilder } from './mesh-config.js';
import { Callers, podPrincipalProblem } from './node-auth.js';
import { ServingCertificate } from './serving-cert.js';
import { meshStatus } from './status.js';
import type { StatusWriter } from './status-writer.js';

const CA_ORG = 'ambit';

/** The control plane's serving certificate: a day, renewed at half life. */
const SERVING_CERT_TTL_SECONDS = 86_400;

function caStatus(ca: CertificateAuthority): CaStatus {
  const signing = ca.rootInfo().serial;
  return {
    signingRoot: signing,
    trusted: ca.trustBundle().map((pem) => {
      const c = certInfo(pem);
      return {
        serial: c.serial,
        notBefore: c.notBefore.toISOString(),
        notAfter: c.notAfter.toISOString(),
        signing: c.serial === signing,
      };
    }),
  };
}

export interface ControlPlane {
  /** Bound ports (they differ from the configured ones when those were 0). */
  readonly ports: { readonly grpc: number; readonly monitoring: number; readonly admin: number };
  stop(): Promise<void>;
}

/**
 * Composition root of the control plane: the CA, the cluster (from the ClusterSource it is given),
 * the config publisher and the gRPC server on 15012 (TLS, served with its own workload certificate),
 * plus metrics and readiness on 15014 and CA administration on localhost.
 */
export async function startControlPlane(
  cfg: ControlPlaneConfig,
  source: ClusterSource,
  reviewer: TokenReviewer,
  log: Logger,
  clock: Clock = systemClock,
  /** Where the Gateway API status goes (the API server); without it, only /debug/status shows it. */
  statusWriter?: StatusWriter,
  /** Told the CA's trust bundle at start and after each change (the CA root ConfigMap publisher). */
  trustBundleSink?: { offer(bundle: readonly string[]): void },
): Promise<ControlPlane> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const issued = new Counter({
    name: 'ambit_ca_certificates_total',
    help: 'Certificate requests by result',
    labelNames: ['result'],
    registers: [registry],
  });
  const connected = new Gauge({
    name: 'ambit_config_connected_nodes',
    help: 'Nodes connected to the config stream',
    labelNames: ['node'],
    registers: [registry],
  });
  const version = new Gauge({
    name: 'ambit_config_version',
    help: 'Version of the config pushed to nodes',
    registers: [registry],
  });

  const { ca, created } = await CertificateAuthority.loadOrCreate(cfg.caDir, CA_ORG, clock);
  log.info(
    { caDir: cfg.caDir, created, root: ca.rootInfo().serial },
    created ? 'CA root generated' : 'CA root loaded',
  );
  trustBundleSink?.offer(ca.trustBundle());
  const streamConfig = services().config.service.StreamConfig!;
  const publisher = new ConfigPublisher((u) => streamConfig.responseSerialize(u));
  const store = new ClusterStore();
  const callers = new Callers(reviewer, cfg.nodeServiceAccount, (ns, name) =>
    store.pods.get(`${ns}/${name}`),
  );
  const builder = new MeshConfigBuilder(store, cfg.trustDomain);
  let synced = false;
  let lastIssues = '';
  const publish = (): void => {
    // A rotation or drop changes the bundle; the sink ignores an offer of the same one.
    trustBundleSink?.offer(ca.trustBundle());
    if (!synced) return;
    const latest = publisher.latest;
    const config = builder.config(ca.trustBundle(), String((latest?.version ?? 0n) + 1n));
    // Each policy is accepted or rejected on its own; the reasons go to the log and to the nodes.
    const warnings = builder.warnings();
    const text = JSON.stringify([config.rejections, warnings]);
    if (text !== lastIssues) {
      lastIssues = text;
      for (const r of config.rejections)
        log.warn(
          { object: `${r.kind}/${r.namespace}/${r.name}`, file: r.file, line: r.line, path: r.path },
          `config object rejected: ${r.message}`,
        );
      for (const w of warnings)
        log.warn(
          { object: w.object, file: w.file, line: w.line, path: w.path },
          `config object changed on load: ${w.message}`,
        );
    }
    if (publisher.publish(config)) {
      version.set(Number(publisher.latest?.version ?? 0n));
      log.info({ version: publisher.latest?.version.toString() }, 'config published');
    }
    statusWriter?.offer(meshStatus(store, cfg.trustDomain));
  };
  const stopWatch = new AbortController();
  const clusterLog = log.child({ component: 'cluster', source: source.description });
  source.watch(
    {
      onEvents: (events) => {
        store.apply(events);
        builder.apply(events);
        publish();
      },
      onSynced: () => {
        synced = true;
        clusterLog.info(
          { pods: store.pods.size, services: store.services.size, namespaces: store.namespaces.size },
          'cluster view synced',
        );
        publish();
      },
      onError: (message) => clusterLog.warn(message),
    },
    stopWatch.signal,
  );

  // The control plane's own serving certificate, from its own CA (renewed, and re-issued on rotation).
  const identity = SpiffeId.parse(controlPlaneIdentity(cfg.trustDomain));
  const serving = new ServingCertificate(
    ca,
    identity,
    SERVING_CERT_TTL_SECONDS,
    log.child({ component: 'ca' }),
    clock,
  );
  await serving.issue();
  const server = new grpc.Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000 });
  const { ca: caSvc, config: cfgSvc } = services();
  server.addService(
    caSvc.service,
    caServiceImpl({
      ca,
      callers,
      cluster: () => (synced ? store : undefined),
      trustDomain: cfg.trustDomain,
      defaultTtl: cfg.certTtlSeconds,
      maxTtl: cfg.maxCertTtlSeconds,
      log: log.child({ component: 'ca' }),
      issued,
    }),
  );
  server.addService(
    withPreserializedResponses(cfgSvc.service),
    configServiceImpl(
      publisher,
      callers,
      (claims) =>
        synced
          ? podPrincipalProblem(claims, store.pods.get(`${claims.namespace}/${claims.pod}`))
          : 'the control plane has not read the cluster yet',
      log.child({ component: 'config' }),
      connected,
    ),
  );
  const creds = grpc.experimental.createCertificateProviderServerCredentials(serving, null, false);
  const host = cfg.listenHost.includes(':') ? `[${cfg.listenHost}]` : cfg.listenHost;
  const grpcPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${cfg.grpcPort}`, creds, (err, port) =>
      err === null ? resolve(port) : reject(err),
    ),
  );
  log.info({ port: grpcPort, identity: identity.toString() }, 'control plane serving gRPC (TLS)');

  const monitoring = endpointServer({
    '/ready': (_req, res) => {
      res
        .writeHead(synced ? 200 : 503, { 'content-type': 'text/plain' })
        .end(synced ? 'ready\n' : 'not ready: the cluster has not been read yet\n');
    },
    '/metrics': metricsHandler(registry),
    // Gateway and route status, as a controller would write it (`ambit waypoint status` reads it).
    '/debug/status': (_req, res) => {
      res
        .writeHead(synced ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify(synced ? meshStatus(store, cfg.trustDomain) : null, null, 2));
    },
    '/debug/config': (_req, res) => {
      const latest = publisher.latest;
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify(
          latest === undefined
            ? null
            : {
                version: latest.version.toString(),
                view: latest.config.view,
                rejections: latest.config.rejections,
              },
          null,
          2,
        ),
      );
    },
  });
  const monitoringPort = await listen(monitoring, cfg.monitoringPort, cfg.listenHost);
  const roots = () => caStatus(ca);
  const admin = endpointServer({
    [CA_ADMIN_PATHS.status]: (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(roots()));
    },
    [CA_ADMIN_PATHS.rotate]: async (req, res) => {
      if (req.method !== 'POST') return void res.writeHead(405).end('POST only\n');
      await ca.rotate(CA_ORG);
      // The serving certificate stays on the old root, which every node trusts, until the drop.
      publish();
      log.info(
        { root: ca.rootInfo().serial, trusted: ca.trustBundle().length },
        'CA root rotated; the old root stays trusted until drop-old-roots',
      );
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(roots()));
    },
    [CA_ADMIN_PATHS.dropOldRoots]: async (req, res) => {
      if (req.method !== 'POST') return void res.writeHead(405).end('POST only\n');
      // Serve from the signing root before nodes learn it is the only one they may trust; they have
      // trusted it since the rotation.
      await serving.issue();
      ca.dropOldRoots();
      publish();
      log.info({ root: ca.rootInfo().serial }, 'old CA roots dropped from the trust bundle');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(roots()));
    },
  });
  const adminPort = await listen(admin, cfg.adminPort, '127.0.0.1');
  return {
    ports: { grpc: grpcPort, monitoring: monitoringPort, admin: adminPort },
    stop: async () => {
      stopWatch.abort();
      monitoring.close();
      admin.close();
      serving.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
  };
}
