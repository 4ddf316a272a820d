import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** A small HTTP server for metrics, readiness and admin endpoints: exact path matches, 404 otherwise. */
export function endpointServer(routes: Readonly<Record<string, Handler>>): ReturnType<typeof createServer> {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const handler = routes[path];
    if (handler === undefined) {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end(`not found; try ${Object.keys(routes).join(', ')}\n`);
      return;
    }
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`${(err as Error).message}\n`);
    });
  });
}

/** The Prometheus scrape handler for one registry (never the global one). */
export function metricsHandler(registry: Registry): Handler {
  return async (_req, res) => {
    const body = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType }).end(body);
  };
}
