import type { Server } from 'node:http';
import type { Registry } from 'prom-client';
import { LOG_LEVELS } from '../config/log-level.js';
import { listen } from '../net/listen.js';
import { endpointServer, type Handler, metricsHandler } from '../telemetry/http-endpoints.js';
import type { Logger } from '../telemetry/logger.js';

/**
 * The three HTTP endpoints every proxy daemon serves, on their own ports as Istio's do: readiness
 * (15021, `/healthz/ready`), Prometheus metrics (15020), and the admin endpoint (15000, localhost
 * only) with the daemon's own routes plus `/healthz/ready` and a run-time `/logging` level.
 */
export interface EndpointOptions {
  readonly log: Logger;
  readonly registry: Registry;
  readonly readinessPort: number;
  readonly metricsPort: number;
  readonly adminPort: number;
  /** Where readiness and metrics listen (all addresses by default); admin is always loopback. */
  readonly host?: string;
  readonly adminHost?: string;
  /** Why the proxy is not ready, or undefined when it is. */
  readonly notReady: () => string | undefined;
  readonly admin: Readonly<Record<string, Handler>>;
}

export interface Endpoints {
  readonly ports: { readonly readiness: number; readonly metrics: number; readonly admin: number };
  close(): void;
}

export async function startEndpoints(o: EndpointOptions): Promise<Endpoints> {
  const ready: Handler = (_req, res) => {
    const why = o.notReady();
    res
      .writeHead(why === undefined ? 200 : 503, { 'content-type': 'text/plain' })
      .end(why === undefined ? 'ready\n' : `not ready: ${why}\n`);
  };
  // GET shows the level; POST ?level=debug changes it at run time (as Envoy's and ztunnel's /logging).
  const logging: Handler = (req, res) => {
    const level = new URL(req.url ?? '/', 'http://admin').searchParams.get('level');
    if (req.method === 'POST' && level !== null) {
      if (!(LOG_LEVELS as readonly string[]).includes(level)) {
        res
          .writeHead(400, { 'content-type': 'text/plain' })
          .end(`unknown level ${level}; use one of ${LOG_LEVELS.join(', ')}\n`);
        return;
      }
      o.log.level = level;
      o.log.info({ level }, 'log level changed');
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ level: o.log.level }));
  };
  const host = o.host ?? '::';
  const servers: Server[] = [];
  const start = async (routes: Record<string, Handler>, port: number, at: string): Promise<number> => {
    const s = endpointServer(routes);
    servers.push(s);
    return listen(s, port, at);
  };
  const readiness = await start({ '/healthz/ready': ready }, o.readinessPort, host);
  const metrics = await start(
    { '/metrics': metricsHandler(o.registry), '/stats/prometheus': metricsHandler(o.registry) },
    o.metricsPort,
    host,
  );
  const admin = await start(
    { ...o.admin, '/healthz/ready': ready, '/logging': logging },
    o.adminPort,
    o.adminHost ?? '127.0.0.1',
  );
  return {
    ports: { readiness, metrics, admin },
    close: () => {
      for (const s of servers) s.close();
    },
  };
}

/** Drain: stop accepting, let open connections finish until the deadline, then return (ztunnel's drain). */
export async function drain(
  listeners: readonly { close(): unknown }[],
  open: () => number,
  deadlineMs: number,
): Promise<void> {
  for (const l of listeners) l.close();
  const deadline = Date.now() + deadlineMs;
  while (open() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}
