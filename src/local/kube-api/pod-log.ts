import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiStatusError, metaOf } from './api-status.js';
import type { Json } from './selectors.js';

/**
 * `GET .../pods/<name>/log` (kubectl logs): a container's output, from the file local mode keeps it in.
 * `container` (the only one when omitted; several without it is an error, as the API server says),
 * `tailLines`, and `follow` (the file is read on as it grows until the client leaves).
 */
export function servePodLog(
  pod: Json,
  q: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
  logFile: (namespace: string, pod: string, container: string) => string,
): void {
  const m = metaOf(pod);
  const containers = (((pod.spec as Json | undefined)?.containers ?? []) as { name?: string }[]).map((c) =>
    String(c.name),
  );
  const asked = q.get('container') ?? '';
  const container = asked !== '' ? asked : containers.length === 1 ? containers[0]! : undefined;
  if (container === undefined)
    throw new ApiStatusError(
      400,
      'BadRequest',
      `a container name must be specified for pod ${String(m.name)}, choose one of: [${containers.join(' ')}]`,
    );
  if (!containers.includes(container))
    throw new ApiStatusError(
      400,
      'BadRequest',
      `container ${container} is not valid for pod ${String(m.name)}`,
    );
  const file = logFile(String(m.namespace), String(m.name), container);
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    size = 0; // Not started yet: no output.
  }
  const read = (from: number, to: number): Buffer => {
    if (to <= from) return Buffer.alloc(0);
    const fd = openSync(file, 'r');
    try {
      const b = Buffer.alloc(to - from);
      readSync(fd, b, 0, b.length, from);
      return b;
    } finally {
      closeSync(fd);
    }
  };
  let text = read(0, size);
  const tailParam = q.get('tailLines');
  const tail = tailParam === null || tailParam === '' ? Number.NaN : Number(tailParam);
  if (Number.isInteger(tail) && tail >= 0) {
    const lines = text.toString('utf8').split('\n');
    const last = lines.at(-1) === '' ? lines.slice(0, -1) : lines;
    text = Buffer.from(tail === 0 ? '' : `${last.slice(-tail).join('\n')}\n`);
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
  res.write(text);
  if (q.get('follow') !== 'true') {
    res.end();
    return;
  }
  let at = size;
  const timer = setInterval(() => {
    let now: number;
    try {
      now = statSync(file).size;
    } catch {
      return;
    }
    if (now < at) at = 0; // Truncated (a restart rotated it): read from the start.
    if (now > at) {
      res.write(read(at, now));
      at = now;
    }
  }, 250);
  const stop = (): void => clearInterval(timer);
  req.once('close', stop);
  res.once('close', stop);
}
