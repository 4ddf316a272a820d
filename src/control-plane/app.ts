import * as grpc from '@grpc/grpc-js';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { PushedConfig } from '../api/config-codec.js';
import { services } from '../api/grpc.js';
import { controlPlaneIdentity } from '../api/identities.js';
import { CertificateAuthority, systemClock } from '../identity/ca.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import { certInfo } from '../identity/x509.js';
import { watchLocalApi } from '../kube/local-api.js';
import type { ClusterSnapshot } from '../kube/snapshot.js';
import { policyKey } from '../mesh/policy.js';
import { policiesFromConfig } from '../mesh/policy-parse.js';
import { buildMeshView } from '../mesh/view.js';
import { endpointServer, listen, metricsHandler } from '../telemetry/http-endpoints.js';
import type { Logger } from '../telemetry/logger.js';
import { caServiceImpl } from './ca-service.js';
import type { ControlPlaneConfig } from './config.js';
import { ConfigPublisher, configServiceImpl } from './config-service.js';
import { NodeTokens } from './node-auth.js';
import { ServingCertificate } from './serving-cert.js';

const CA_ORG = 'ambit';
/** The control plane's serving certificate: a day, renewed at half life. */
const SERVING_CERT_TTL_SECONDS = 86_400;

export interface CaStatus {
  /** The root that signs new certificates. */
  readonly signingRoot: string;
  readonly trusted: readonly { serial: string; notBefore: string; notAfter: string; signing: boolean }[];
}

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

/**
 * Composition root of the control plane: the CA, the cluster source (the local cluster's state in
 * local mode), the config publisher and the gRPC server on 15012 (TLS, served with its own workload
 * certificate), plus metrics and readiness on 15014 and CA administration on localhost.
 */
export async function runControlPlane(
  cfg: ControlPlaneConfig,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
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

  const { ca, created } = await CertificateAuthority.loadOrCreate(cfg.caDir, CA_ORG, systemClock);
  log.info(
    { caDir: cfg.caDir, created, root: ca.rootInfo().serial },
    created ? 'CA root generated' : 'CA root loaded',
  );
  const tokens = NodeTokens.fromFile(cfg.nodeTokens);
  const publisher = new ConfigPublisher();
  let snapshot: ClusterSnapshot | undefined;

  let lastRejections = '';
  const publish = (): void => {
    if (snapshot === undefined) return;
    // Each policy is accepted or rejected on its own; the reasons go to the log and to the nodes.
    const parsed = policiesFromConfig(snapshot.config);
    const text = JSON.stringify([parsed.rejections, parsed.warnings]);
    if (text !== lastRejections) {
      lastRejections = text;
      for (const r of parsed.rejections)
        log.warn(
          { object: `${r.kind}/${r.namespace}/${r.name}`, file: r.file, line: r.line, path: r.path },
          `policy rejected: ${r.message}`,
        );
      for (const w of parsed.warnings)
        log.warn(
          { object: `${w.kind}/${w.namespace}/${w.name}`, file: w.file, line: w.line, path: w.path },
          `policy changed on load: ${w.message}`,
        );
    }
    const policies = new Map<string, string>(
      [...parsed.authz, ...parsed.peerAuth].map((p) => [policyKey(p), JSON.stringify(p)]),
    );
    const config: PushedConfig = {
      view: buildMeshView(snapshot, cfg.trustDomain),
      trustBundle: ca.trustBundle(),
      rejections: parsed.rejections.map((r) => ({ ...r })),
      policies,
    };
    publisher.publish(config);
    version.set(Number(publisher.latest?.version ?? 0n));
  };
  watchLocalApi(
    cfg.localState,
    log.child({ component: 'cluster-api' }),
    (snap) => {
      snapshot = snap;
      publish();
      log.info(
        { revision: snap.revision, version: publisher.latest?.version.toString() },
        'config published',
      );
    },
    signal,
  );

  // The control plane's own serving certificate, from its own CA (renewed, and re-issued on rotation).
  const identity = SpiffeId.parse(controlPlaneIdentity(cfg.trustDomain));
  const serving = new ServingCertificate(
    ca,
    identity,
    SERVING_CERT_TTL_SECONDS,
    log.child({ component: 'ca' }),
  );
  await serving.issue();
  const server = new grpc.Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000 });
  const { ca: caSvc, config: cfgSvc } = services();
  server.addService(
    caSvc.service,
    caServiceImpl({
      ca,
      tokens,
      snapshot: () => snapshot,
      trustDomain: cfg.trustDomain,
      defaultTtl: cfg.certTtlSeconds,
      maxTtl: cfg.maxCertTtlSeconds,
      log: log.child({ component: 'ca' }),
      issued,
    }),
  );
  server.addService(
    cfgSvc.service,
    configServiceImpl(publisher, tokens, log.child({ component: 'config' }), connected),
  );
  const creds = grpc.experimental.createCertificateProviderServerCredentials(serving, null, false);
  const host = cfg.listenHost.includes(':') ? `[${cfg.listenHost}]` : cfg.listenHost;
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`${host}:${cfg.grpcPort}`, creds, (err) => (err === null ? resolve() : reject(err))),
  );
  log.info({ port: cfg.grpcPort, identity: identity.toString() }, 'control plane serving gRPC (TLS)');

  const monitoring = endpointServer({
    '/ready': (_req, res) => {
      const ready = snapshot !== undefined;
      res
        .writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' })
        .end(ready ? 'ready\n' : 'not ready: the cluster has not been read yet\n');
    },
    '/metrics': metricsHandler(registry),
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
  await listen(monitoring, cfg.monitoringPort, cfg.listenHost);
  const roots = () => caStatus(ca);
  const admin = endpointServer({
    '/ca': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(roots()));
    },
    '/ca/rotate': async (req, res) => {
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
    '/ca/drop-old-roots': async (req, res) => {
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
  await listen(admin, cfg.adminPort, '127.0.0.1');

  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
  monitoring.close();
  admin.close();
  serving.close();
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
}
