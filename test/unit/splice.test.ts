import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { resetSocket, splice } from '../../src/net/splice.js';

/** A relay on loopback, as the proxy splices: downstream socket <-> upstream socket. */
async function relay(
  upstreamPort: number,
  onDone: (err?: string) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (down) => {
    const up = connect({ host: '127.0.0.1', port: upstreamPort, allowHalfOpen: true });
    splice(down, up, { down: resetSocket, up: resetSocket }, onDone);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function readAll(s: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });
}

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

describe('splice', () => {
  test('bulk data in mixed chunk sizes arrives intact both ways, and half-close keeps the other direction open', async () => {
    // Upstream echoes a digest of what it got only after the client's end, then sends 8 MB and ends.
    const download = randomBytes(8 << 20);
    const upstream = createServer({ allowHalfOpen: true }, (s) => {
      void readAll(s).then((got) => {
        s.write(`${sha(got)}\n`);
        // Small and large writes mixed, as request/response and bulk traffic mix on one connection.
        for (let off = 0, i = 0; off < download.length; i++) {
          const n = [1, 100, 16 << 10, 64 << 10, 3][i % 5]!;
          s.write(download.subarray(off, off + n));
          off += n;
        }
        s.end();
      });
    });
    servers.push(upstream);
    let result: string | undefined = 'not done';
    const r = await relay(await listen(upstream), (err) => {
      result = err;
    });
    servers.push(r.server);

    const upload = randomBytes(3 << 20);
    const client = connect({ host: '127.0.0.1', port: r.port, allowHalfOpen: true });
    const received = readAll(client);
    for (let off = 0; off < upload.length; off += 20_000) client.write(upload.subarray(off, off + 20_000));
    client.end();
    const got = await received;
    const nl = got.indexOf('\n');
    expect(got.subarray(0, nl).toString()).toBe(sha(upload));
    expect(sha(got.subarray(nl + 1))).toBe(sha(download));
    client.destroy();
    await expect.poll(() => result).toBeUndefined();
  });

  test('a reset upstream resets the client and reports why', async () => {
    const upstream = createServer((s) => {
      s.once('data', () => s.resetAndDestroy());
    });
    servers.push(upstream);
    let result: string | undefined = 'not done';
    const r = await relay(await listen(upstream), (err) => {
      result = err;
    });
    servers.push(r.server);
    const client = connect({ host: '127.0.0.1', port: r.port });
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
      client.once('error', resolve);
      client.write('hello');
    });
    expect(err.code).toBe('ECONNRESET');
    await expect.poll(() => result).toMatch(/^upstream: .*ECONNRESET/);
  });
});
