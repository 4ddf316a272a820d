import { isIP, type Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { Libbpf } from '../bpf/libbpf.js';
import { describeError } from '../errors.js';
import { watchLocalApi } from '../kube/local-api.js';
import { MeshIndex } from '../mesh/mesh-index.js';
import { buildMeshView } from '../mesh/view.js';
import { endpointServer, listen, metricsHandler } from '../telemetry/http-endpoints.js';
import { IstioTcpMetrics } from '../telemetry/istio-tcp-metrics.js';
import type { Logger } from '../telemetry/logger.js';
import { ConnectionRecorder } from './proxy/connection-record.js';
import { OriginalDestinations, registerListener } from './proxy/original-destination.js';
import { createOutboundServer } from './proxy/outbound.js';
import type { ProxyConfig } from './proxy-config.js';

const DRAIN_MS = 5000;

/** The listening socket's fd: Node keeps it on the server's handle. */
function listenerFd(server: Server): number {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('cannot get the outbound listener fd');
  return fd;
}

/**
 * Composition root of the node proxy: the mesh view, the outbound listener, telemetry and health.
 * It becomes ready (and starts accepting redirected connections) only after its first config.
 */
export async function runProxy(cfg: ProxyConfig, log: Logger, signal: AbortSignal): Promise<void> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const configRevision = new Gauge({
    name: 'ambit_proxy_config_revision_timestamp_seconds',
    help: 'When the proxy last applied a new mesh configuration',
    registers: [registry],
  });
  const recorder = new ConnectionRecorder(new IstioTcpMetrics(registry), log.child({ component: 'access' }));
  let mesh: MeshIndex | undefined;
  let ready = false;

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
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ node: cfg.node, view: mesh?.view ?? null }, null, 2));
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

  const firstConfig = new Promise<void>((resolve) => {
    watchLocalApi(
      cfg.localState,
      log.child({ component: 'config' }),
      (snap) => {
        mesh = new MeshIndex(buildMeshView(snap, cfg.trustDomain));
        configRevision.setToCurrentTime();
        log.info(
          {
            revision: snap.revision,
            workloads: mesh.view.workloads.length,
            services: mesh.view.services.length,
          },
          'mesh config applied',
        );
        resolve();
      },
      signal,
    );
  });
  await firstConfig;

  const origDstMap = origDst;
  const listeners: Server[] = [];
  for (const ip of cfg.outboundIps) {
    const server = createOutboundServer({ mesh: () => mesh, origDst: origDstMap, recorder, log });
    await listen(server, cfg.outboundPort, ip);
    registerListener(bpf, cfg.bpfDir, isIP(ip) === 6 ? 6 : 4, listenerFd(server));
    listeners.push(server);
  }
  ready = true;
  log.info({ outbound: cfg.outboundIps.map((ip) => `${ip}:${cfg.outboundPort}`) }, 'node proxy ready');

  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
  // Drain: stop accepting, let open connections finish until the deadline, then close.
  ready = false;
  for (const s of listeners) s.close();
  const deadline = Date.now() + DRAIN_MS;
  while (recorder.live.size > 0 && Date.now() < deadline) await sleep(50);
  health.close();
  metricsServer.close();
  admin.close();
  origDst.close();
}
