import { existsSync, readFileSync } from 'node:fs';
import { isIP, type Server } from 'node:net';
import { setDefaultHighWaterMark } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { GrpcCaClient } from '../api/ca-client.js';
import { followConfig } from '../api/config-client.js';
import type { PushedConfig } from '../api/config-codec.js';
import { controlPlaneIdentity } from '../api/identities.js';
import { Libbpf, transparentListener } from '../bpf/libbpf.js';
import { describeError } from '../errors.js';
import { HbonePool } from '../hbone/pool.js';
import { sniFor } from '../hbone/protocol.js';
import { createHboneServer } from '../hbone/server.js';
import { systemClock } from '../identity/ca.js';
import { TLS_OPTIONS, WorkloadCertificates } from '../identity/workload-certs.js';
import { splitPem } from '../identity/x509.js';
import { MeshIndex } from '../mesh/mesh-index.js';
import { type ActivePolicies, decodePolicies, EMPTY_POLICIES } from '../mesh/policy-set.js';
import { endpointServer, listen, metricsHandler } from '../telemetry/http-endpoints.js';
import { IstioTcpMetrics } from '../telemetry/istio-tcp-metrics.js';
import { LOG_LEVELS, type Logger } from '../telemetry/logger.js';
import { ConnectionRecorder } from './proxy/connection-record.js';
import { handleInbound } from './proxy/inbound.js';
import { createPlaintextInboundServer } from './proxy/inbound-plaintext.js';
import { recheckLive } from './proxy/inbound-policy.js';
import { OriginalDestinations, registerListener } from './proxy/original-destination.js';
import { createOutboundServer } from './proxy/outbound.js';
import type { ProxyConfig } from './proxy-config.js';

const DRAIN_MS = 5000;
const STREAM_BUFFER = 1024 * 1024;

/** The listening socket's fd: Node keeps it on the server's handle. */
function listenerFd(server: Server): number {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('cannot get the outbound listener fd');
  return fd;
}

async function waitForFile(path: string, log: Logger, signal: AbortSignal): Promise<string> {
  while (!signal.aborted) {
    if (existsSync(path)) {
      const text = readFileSync(path, 'utf8');
      if (text.trim() !== '') return text;
    }
    log.info({ path }, 'waiting for the file');
    await sleep(500);
  }
  return '';
}

/**
 * Composition root of the node proxy: config and certificates from the control plane, the HBONE
 * server (15008), the outbound listener (15001), telemetry and health. Ready, and accepting
 * redirected connections, only after its first config.
 */
export async function runProxy(cfg: ProxyConfig, log: Logger, signal: AbortSignal): Promise<void> {
  // Every byte passes through stream buffers twice per hop; Node's 16 KiB default makes a pipe pause
  // and resume every few reads.
  setDefaultHighWaterMark(false, STREAM_BUFFER);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const configVersion = new Gauge({
    name: 'ambit_proxy_config_version',
    help: 'Version of the config in force',
    registers: [registry],
  });
  const configConnected = new Gauge({
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
  const handshakeRefused = new Counter({
    name: 'ambit_hbone_refused_total',
    help: 'HBONE connections refused before a stream, by reason',
    labelNames: ['response_flags'],
    registers: [registry],
  });
  const recorder = new ConnectionRecorder(new IstioTcpMetrics(registry), log.child({ component: 'access' }));
  let config: PushedConfig | undefined;
  let mesh: MeshIndex | undefined;
  let policies: ActivePolicies = EMPTY_POLICIES;
  let ready = false;

  const bundleText = await waitForFile(cfg.caBundle, log, signal);
  let bundle = splitPem(bundleText);
  const token = (): string => readFileSync(cfg.tokenFile, 'utf8').trim();
  const cpIdentity = controlPlaneIdentity(cfg.trustDomain);
  const ca = new GrpcCaClient(cfg.controlPlane, token, bundle, cpIdentity);
  const certs = new WorkloadCertificates(ca, {
    ttlSeconds: cfg.certTtlSeconds,
    clock: systemClock,
    log: log.child({ component: 'certificates' }),
    bundle: () => bundle,
    onIssued: (c) => certExpiry.set({ identity: c.identity }, c.notAfter.getTime() / 1000),
  });
  const pool = new HbonePool({ cert: (id) => certs.get(id), log: log.child({ component: 'hbone-client' }) });
  // Server names of the workloads this node serves, for the HBONE server's certificate choice.
  let localBySni = new Map<string, string>();

  const health = endpointServer({
    '/healthz/ready': (_req, res) => {
      res
        .writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' })
        .end(ready ? 'ready\n' : 'not ready: no config yet\n');
    },
  });
  await listen(health, cfg.readinessPort, '::');
  const metricsServer = endpointServer({
    '/metrics': metricsHandler(registry),
    '/stats/prometheus': metricsHandler(registry),
  });
  await listen(metricsServer, cfg.metricsPort, '::');
  const admin = endpointServer({
    '/config_dump': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify(
          {
            node: cfg.node,
            version: config?.view.revision ?? null,
            view: mesh?.view ?? null,
            rejections: config?.rejections ?? [],
            policies,
            certificates: certs.list(),
            trustBundle: bundle.length,
            tunnels: pool.stats(),
            memory: process.memoryUsage(),
          },
          null,
          2,
        ),
      );
    },
    '/healthz/ready': (_req, res) => {
      res
        .writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' })
        .end(ready ? 'ready\n' : 'not ready: no config yet\n');
    },
    // GET shows the level; POST ?level=debug changes it at run time (as Envoy's and ztunnel's /logging).
    '/logging': (req, res) => {
      const level = new URL(req.url ?? '/', 'http://admin').searchParams.get('level');
      if (req.method === 'POST' && level !== null) {
        if (!(LOG_LEVELS as readonly string[]).includes(level)) {
          res
            .writeHead(400, { 'content-type': 'text/plain' })
            .end(`unknown level ${level}; use one of ${LOG_LEVELS.join(', ')}\n`);
          return;
        }
        log.level = level;
        log.info({ level }, 'log level changed');
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ level: log.level }));
    },
    '/connections': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify(
          [...recorder.live.values()].map((r) => r.summary()),
          null,
          2,
        ),
      );
    },
  });
  await listen(admin, cfg.adminPort, '127.0.0.1');

  const hbone = createHboneServer({
    trustDomain: cfg.trustDomain,
    bundle: () => bundle,
    serverFor: (sni) => {
      const identity = sni === undefined ? undefined : localBySni.get(sni);
      if (identity === undefined) return undefined;
      const c = certs.current(identity);
      if (c === undefined) {
        certs.get(identity).catch(() => undefined);
        return undefined;
      }
      return { context: c.context, identity };
    },
    onRequest: (req, stream) =>
      handleInbound({ node: cfg.node, mesh: () => mesh, policies: () => policies, recorder }, req, stream),
    onRefused: (flag) => handshakeRefused.inc({ response_flags: flag }),
    log: log.child({ component: 'hbone-server' }),
  });
  for (const ip of cfg.hboneIps) {
    await new Promise<void>((resolve, reject) => {
      hbone.once('error', reject);
      hbone.listen({ port: cfg.hbonePort, host: ip, ipv6Only: false }, () => {
        hbone.off('error', reject);
        resolve();
      });
    });
  }

  const bpf = new Libbpf();
  let origDst: OriginalDestinations | undefined;
  while (origDst === undefined && !signal.aborted) {
    try {
      origDst = OriginalDestinations.open(bpf, cfg.bpfDir);
    } catch (err) {
      log.info({ reason: describeError(err) }, 'waiting for the node agent to pin the redirection maps');
      await sleep(500);
    }
  }
  if (origDst === undefined) return;

  const apply = (next: PushedConfig, version: string): void => {
    if (next.trustBundle.length > 0 && next.trustBundle.join('') !== bundle.join('')) {
      bundle = [...next.trustBundle];
      ca.setBundle(bundle);
      certs.bundleChanged();
      hbone.setSecureContext({ ...TLS_OPTIONS, ca: bundle.join('') });
      log.info({ roots: bundle.length }, 'trust bundle updated');
    }
    config = next;
    mesh = new MeshIndex(next.view);
    const problems: string[] = [];
    const nextPolicies = decodePolicies(next.policies, problems);
    for (const p of problems) log.warn({ version }, p);
    const policiesChanged = JSON.stringify(nextPolicies) !== JSON.stringify(policies);
    policies = nextPolicies;
    if (policiesChanged) {
      const { closed } = recheckLive(recorder, policies);
      log.info(
        {
          version,
          authorization: policies.authz.length,
          peerAuthentication: policies.peerAuth.length,
          closed,
        },
        'policies applied',
      );
    }
    const local = mesh.workloadsOnNode(cfg.node).filter((w) => w.captured);
    localBySni = new Map(local.map((w) => [sniFor(w.identity), w.identity]));
    certs.setWanted(new Set(local.map((w) => w.identity)));
    configVersion.set(Number(version));
    log.info(
      {
        version,
        workloads: next.view.workloads.length,
        services: next.view.services.length,
        local: local.length,
      },
      'mesh config applied',
    );
  };
  const firstConfig = new Promise<void>((resolve) => {
    void followConfig(
      {
        address: cfg.controlPlane,
        node: cfg.node,
        token,
        bundle: () => bundle,
        cpIdentity,
        log: log.child({ component: 'config' }),
        onConfig: (next, version) => {
          apply(next, version);
          resolve();
        },
        onConnection: (up) => configConnected.set(up ? 1 : 0),
      },
      signal,
    );
  });
  await firstConfig;

  const origDstMap = origDst;
  const listeners: Server[] = [];
  for (const ip of cfg.outboundIps) {
    const server = createOutboundServer({
      node: cfg.node,
      mesh: () => mesh,
      origDst: origDstMap,
      recorder,
      hbone: pool,
      log,
    });
    await listen(server, cfg.outboundPort, ip);
    registerListener(bpf, cfg.bpfDir, isIP(ip) === 6 ? 6 : 4, listenerFd(server));
    listeners.push(server);
  }
  // Plaintext from outside the mesh to enrolled pods, captured by the node's TPROXY rules.
  for (const family of [4, 6] as const) {
    const server = createPlaintextInboundServer({
      node: cfg.node,
      mesh: () => mesh,
      policies: () => policies,
      recorder,
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd: transparentListener(family, cfg.inboundPort) }, () => resolve());
    });
    listeners.push(server);
  }
  ready = true;
  log.info({ outbound: cfg.outboundIps, hbone: cfg.hbonePort, inbound: cfg.inboundPort }, 'node proxy ready');

  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
  // Drain: stop accepting, let open connections finish until the deadline, then close.
  ready = false;
  for (const s of listeners) s.close();
  hbone.close();
  const deadline = Date.now() + DRAIN_MS;
  while (recorder.live.size > 0 && Date.now() < deadline) await sleep(50);
  pool.close();
  certs.close();
  ca.close();
  health.close();
  metricsServer.close();
  admin.close();
  origDst.close();
}
