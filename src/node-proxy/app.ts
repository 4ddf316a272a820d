import type { Server } from 'node:net';
import { isIP } from 'node:net';
import { setDefaultHighWaterMark } from 'node:stream';
import { Counter, collectDefaultMetrics, Registry } from 'prom-client';
import type { PushedConfig } from '../api/config-codec.js';
import { workloadId } from '../bpf/redirect-maps.js';
import type { Clock } from '../clock.js';
import { drain, startEndpoints } from '../dataplane/endpoints.js';
import { startDataplane } from '../dataplane/runtime.js';
import { HbonePool } from '../hbone/pool.js';
import { sniFor } from '../hbone/protocol.js';
import { createHboneServer } from '../hbone/server.js';
import { TLS_OPTIONS } from '../identity/workload-certs.js';
import { MeshIndex } from '../mesh/mesh-index.js';
import type { Workload } from '../mesh/view.js';
import { listen } from '../net/listen.js';
import { agentReadiness } from '../node/agent-ready.js';
import { type ActivePolicies, EMPTY_POLICIES } from '../policy/active.js';
import type { AuthorizationPolicy, PeerAuthentication } from '../policy/types.js';
import { ConnectionRecorder } from '../telemetry/connection-record.js';
import { IstioTcpMetrics } from '../telemetry/istio-tcp-metrics.js';
import type { Logger } from '../telemetry/logger.js';
import { outcomeInfo } from '../telemetry/outcomes.js';
import type { NodeProxyConfig } from './config.js';
import { handleInbound } from './inbound-hbone.js';
import { createPlaintextInboundServer } from './inbound-plaintext.js';
import { createOutboundServer, type LocalWorkloads } from './outbound.js';
import type { Redirection } from './redirection.js';

const DRAIN_MS = 5000;
const STREAM_BUFFER = 1024 * 1024;

export interface NodeProxyDeps {
  /** eBPF redirection on a node (redirection-ebpf.ts); a fake in an in-process test. */
  readonly redirection: Redirection;
  readonly clock?: Clock;
}

export interface NodeProxy {
  /** Bound ports (they differ from the configured ones when those were 0). */
  readonly ports: {
    readonly outbound: readonly number[];
    readonly hbone: number;
    readonly admin: number;
    readonly metrics: number;
    readonly readiness: number;
  };
  readonly registry: Registry;
  /** Stops accepting, drains open connections up to a deadline, and closes everything. */
  stop(): Promise<void>;
}

function policiesOf(config: PushedConfig): ActivePolicies {
  const authz: AuthorizationPolicy[] = [];
  const peerAuth: PeerAuthentication[] = [];
  for (const p of config.policies.values()) {
    if (p.kind === 'AuthorizationPolicy') authz.push(p);
    else if (p.kind === 'PeerAuthentication') peerAuth.push(p);
    // RequestAuthentication is a waypoint's: node proxies see no HTTP.
  }
  return { authz, peerAuth };
}

/**
 * Composition root of the node proxy: config and certificates from the control plane (the shared
 * data-plane runtime), the HBONE server (15008), the outbound listener (15001), the inbound
 * plaintext listener (15006), telemetry and health. Ready, and accepting redirected connections,
 * only after its first config. Returns undefined when stopped before it got that far.
 */
export async function startNodeProxy(
  cfg: NodeProxyConfig,
  deps: NodeProxyDeps,
  log: Logger,
  signal: AbortSignal,
): Promise<NodeProxy | undefined> {
  // Every byte passes through stream buffers twice per hop; a small default makes a pipe pause and
  // resume every few reads.
  setDefaultHighWaterMark(false, STREAM_BUFFER);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const handshakeRefused = new Counter({
    name: 'ambit_hbone_refused_total',
    help: 'HBONE connections refused before a stream, by reason',
    labelNames: ['response_flags'],
    registers: [registry],
  });
  const recorder = new ConnectionRecorder(new IstioTcpMetrics(registry), log.child({ component: 'access' }));
  const dp = await startDataplane(
    {
      node: cfg.node,
      trustDomain: cfg.trustDomain,
      controlPlane: cfg.controlPlane,
      caBundlePath: cfg.caBundle,
      tokenPath: cfg.tokenFile,
      certTtlSeconds: cfg.certTtlSeconds,
      ...(deps.clock === undefined ? {} : { clock: deps.clock }),
    },
    log,
    registry,
    signal,
  );
  if (dp === undefined) return undefined;
  const pool = new HbonePool({
    cert: (id) => dp.certs.get(id),
    log: log.child({ component: 'hbone-client' }),
  });
  let mesh: MeshIndex | undefined;
  let policies: ActivePolicies = EMPTY_POLICIES;
  let ready = false;
  // This node's meshed pods: by server name (the HBONE server's certificate choice) and by cgroup id.
  let localBySni = new Map<string, string>();
  let localById = new Map<bigint, Workload>();
  // Connections of pods that the config does not name yet, waiting for the config that does.
  const waiting = new Map<bigint, Set<() => void>>();
  const local: LocalWorkloads = {
    byWorkloadId: (id) => localById.get(id),
    awaitWorkloadId: (id, timeoutMs) =>
      new Promise((resolve) => {
        if (localById.has(id)) return resolve(localById.get(id));
        const set = waiting.get(id) ?? new Set();
        waiting.set(id, set);
        const done = (): void => {
          clearTimeout(timer);
          set.delete(done);
          if (set.size === 0 && waiting.get(id) === set) waiting.delete(id);
          resolve(localById.get(id));
        };
        const timer = setTimeout(done, timeoutMs);
        set.add(done);
      }),
  };

  const endpoints = await startEndpoints({
    log,
    registry,
    readinessPort: cfg.readinessPort,
    metricsPort: cfg.metricsPort,
    adminPort: cfg.adminPort,
    // Ready when its listeners are up with a first config and, when the node agent's ready file is
    // named, the agent claims its links attached and its first cluster view reconciled.
    notReady: () =>
      !ready
        ? 'no config yet'
        : cfg.agentReadyFile === undefined
          ? undefined
          : agentReadiness(cfg.agentReadyFile, cfg.node),
    admin: {
      '/config_dump': (_req, res) => {
        const config = dp.config();
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify(
            {
              node: cfg.node,
              version: config?.view.revision ?? null,
              view: mesh?.view ?? null,
              rejections: config?.rejections ?? [],
              policies,
              certificates: dp.certs.list(),
              trustBundle: dp.bundle().length,
              tunnels: pool.stats(),
              memory: process.memoryUsage(),
            },
            null,
            2,
          ),
        );
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
    },
  });

  const hbone = createHboneServer({
    trustDomain: cfg.trustDomain,
    bundle: dp.bundle,
    // A certificate still being issued is waited for: the first connection to a new pod succeeds.
    serverFor: async (sni) => {
      const identity = sni === undefined ? undefined : localBySni.get(sni);
      if (identity === undefined) return undefined;
      const c = dp.certs.current(identity) ?? (await dp.certs.get(identity));
      return { context: c.context, identity };
    },
    onRequest: (req, stream) =>
      handleInbound({ node: cfg.node, mesh: () => mesh, policies: () => policies, recorder }, req, stream),
    onRefused: (outcome) => handshakeRefused.inc({ response_flags: outcomeInfo(outcome).flag }),
    log: log.child({ component: 'hbone-server' }),
  });
  dp.onBundle((bundle) => hbone.setSecureContext({ ...TLS_OPTIONS, ca: bundle.join('') }));
  let hbonePort = cfg.hbonePort;
  for (const ip of cfg.hboneIps) hbonePort = await listen(hbone, hbonePort, ip);

  const origDst = await deps.redirection.open(signal);
  if (origDst === undefined) {
    hbone.close();
    endpoints.close();
    dp.close();
    return undefined;
  }

  dp.onConfig((next, version) => {
    mesh = new MeshIndex(next.view);
    const nextPolicies = policiesOf(next);
    const policiesChanged = JSON.stringify(nextPolicies) !== JSON.stringify(policies);
    policies = nextPolicies;
    if (policiesChanged) {
      const { closed } = recorder.recheckLive();
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
    const mine = mesh.workloadsOnNode(cfg.node).filter((w) => w.captured);
    localBySni = new Map(mine.map((w) => [sniFor(w.identity), w.identity]));
    localById = new Map(mine.map((w) => [workloadId(w.uid), w]));
    for (const [id, set] of [...waiting]) if (localById.has(id)) for (const done of [...set]) done();
    dp.certs.setWanted(new Set(mine.map((w) => w.identity)));
    log.info(
      {
        version,
        workloads: next.view.workloads.length,
        services: next.view.services.length,
        local: mine.length,
      },
      'mesh config applied',
    );
  });
  if (!(await dp.firstConfig)) {
    origDst.close();
    hbone.close();
    endpoints.close();
    dp.close();
    return undefined;
  }

  const listeners: Server[] = [];
  const outboundPorts: number[] = [];
  for (const ip of cfg.outboundIps) {
    const server = createOutboundServer({
      node: cfg.node,
      mesh: () => mesh,
      local: () => local,
      origDst,
      recorder,
      hbone: pool,
      hbonePort,
    });
    outboundPorts.push(await listen(server, cfg.outboundPort, ip));
    deps.redirection.registerOutbound(server, isIP(ip) === 6 ? 6 : 4);
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
      server.listen(deps.redirection.inboundListen(family, cfg.inboundPort), () => {
        server.off('error', reject);
        resolve();
      });
    });
    listeners.push(server);
  }
  ready = true;
  log.info({ outbound: cfg.outboundIps, hbone: hbonePort, inbound: cfg.inboundPort }, 'node proxy ready');

  return {
    ports: { outbound: outboundPorts, hbone: hbonePort, ...endpoints.ports },
    registry,
    stop: async () => {
      ready = false;
      await drain([...listeners, hbone], () => recorder.live.size, DRAIN_MS);
      pool.close();
      dp.close();
      endpoints.close();
      origDst.close();
    },
  };
}
