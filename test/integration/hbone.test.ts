import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as http2Connect } from 'node:http2';
import { type AddressInfo, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { HboneError, HbonePool } from '../../src/hbone/pool.js';
import { sniFor } from '../../src/hbone/protocol.js';
import { createHboneServer, type HboneRequest } from '../../src/hbone/server.js';
import { CertificateAuthority } from '../../src/identity/ca.js';
import { SpiffeId } from '../../src/identity/spiffe-id.js';
import { TLS_OPTIONS, WorkloadCertificates } from '../../src/identity/workload-certs.js';
import { createCsr, createRoot, generateKey, signWorkloadCert } from '../../src/identity/x509.js';
import { createRootLogger } from '../../src/telemetry/logger.js';
import { outcomeInfo } from '../../src/telemetry/outcomes.js';

/*
 * HBONE end to end in one process, with real TLS 1.3, HTTP/2 and certificates from the real CA, on
 * loopback: what a client must prove, what the server must prove, and what is refused.
 */

const TD = 'cluster.local';
const CLIENT = `spiffe://${TD}/ns/hello/sa/client`;
const SERVER = `spiffe://${TD}/ns/hello/sa/backend`;
const log = createRootLogger({ name: 'hbone-test', level: 'fatal' });

describe('HBONE over real TLS and HTTP/2', () => {
  let dir: string;
  let ca: CertificateAuthority;
  let certs: WorkloadCertificates;
  let server: ReturnType<typeof createHboneServer>;
  let port: number;
  let presentAs = SERVER;
  const seen: HboneRequest[] = [];
  const refused: string[] = [];
  const refusedPeers: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ambit-ca-'));
    ca = (await CertificateAuthority.loadOrCreate(dir, 'test')).ca;
    certs = new WorkloadCertificates(
      { sign: (csr, id, ttl) => ca.sign(csr, SpiffeId.parse(id), ttl) },
      { ttlSeconds: 3600, clock: systemClock, log, bundle: () => ca.trustBundle() },
    );
    await certs.get(CLIENT);
    await certs.get(SERVER);
    server = createHboneServer({
      trustDomain: TD,
      bundle: () => ca.trustBundle(),
      // Presents `presentAs` for any server name, so that a test can make it present the wrong identity.
      serverFor: () => {
        const c = certs.current(presentAs);
        return c === undefined ? undefined : { context: c.context, identity: presentAs };
      },
      onRequest: (req, stream) => {
        seen.push(req);
        stream.respond({ ':status': req.target?.port === 9999 ? 503 : 200 });
        stream.on('data', (d: Buffer) => stream.write(d));
        stream.on('end', () => stream.end());
      },
      onRefused: (outcome, peer, reason) => {
        refused.push(`${outcomeInfo(outcome).flag}: ${reason}`);
        refusedPeers.push(peer);
      },
      handshakeTimeoutMs: 1000,
      log,
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(() => {
    server.close();
    certs.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a CONNECT carries bytes both ways, and the server learns the client identity and original source', async () => {
    const pool = new HbonePool({ cert: (id) => certs.get(id), log });
    const stream = await pool.open(
      { ip: '127.0.0.1', port, srcIdentity: CLIENT, dstIdentity: SERVER },
      '10.244.2.5:8080',
      {
        forwarded: 'for="10.244.1.2:40000"',
      },
    );
    stream.end('ping');
    const echoed = await new Promise<string>((resolve) => {
      let out = '';
      stream.on('data', (d: Buffer) => {
        out += d.toString();
      });
      stream.on('end', () => resolve(out));
    });
    expect(echoed).toBe('ping');
    const req = seen.at(-1)!;
    expect(req.peer.toString()).toBe(CLIENT);
    expect(req.serverIdentity).toBe(SERVER);
    expect(req.target).toEqual({ ip: '10.244.2.5', port: 8080 });
    expect(req.forwardedFor).toEqual({ ip: '10.244.1.2', port: 40000 });
    pool.close();
  });

  test('many streams share one pooled connection', async () => {
    const pool = new HbonePool({ cert: (id) => certs.get(id), log });
    const dial = { ip: '127.0.0.1', port, srcIdentity: CLIENT, dstIdentity: SERVER };
    const streams = await Promise.all(
      Array.from({ length: 20 }, (_, i) => pool.open(dial, `10.0.0.${i + 1}:80`, {})),
    );
    expect(pool.stats()).toHaveLength(1);
    expect(pool.stats()[0]!.streams).toBe(20);
    for (const s of streams) s.end();
    pool.close();
  });

  test('a non-200 answer is an error with its status and flag', async () => {
    const pool = new HbonePool({ cert: (id) => certs.get(id), log });
    const err = await pool
      .open({ ip: '127.0.0.1', port, srcIdentity: CLIENT, dstIdentity: SERVER }, '10.0.0.1:9999', {})
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HboneError);
    expect((err as HboneError).status).toBe(503);
    expect((err as HboneError).flag).toBe('UF');
    pool.close();
  });

  test('the client refuses a server whose certificate is not the destination identity', async () => {
    presentAs = CLIENT;
    try {
      const pool = new HbonePool({ cert: (id) => certs.get(id), log });
      const err = await pool
        .open({ ip: '127.0.0.1', port, srcIdentity: CLIENT, dstIdentity: SERVER }, '10.0.0.1:80', {})
        .catch((e: unknown) => e);
      expect((err as HboneError).flag).toBe('IDENTITY_ERROR');
      expect((err as Error).message).toContain(`not the destination identity ${SERVER}`);
      pool.close();
    } finally {
      presentAs = SERVER;
    }
  });

  /** Opens a raw TLS connection to the HBONE port with the given client key and chain; resolves to how it ended. */
  async function handshake(keyPem: string, chain: string): Promise<string> {
    return new Promise((resolve) => {
      const s = tlsConnect({
        host: '127.0.0.1',
        port,
        servername: sniFor(SERVER),
        ALPNProtocols: ['h2'],
        secureContext: createSecureContext({
          key: keyPem,
          cert: chain,
          ca: ca.trustBundle().join(''),
          ...TLS_OPTIONS,
        }),
        checkServerIdentity: () => undefined,
      });
      s.once('secureConnect', () => {
        // TLS 1.3: the server checks the client certificate after the client finishes; a refusal shows
        // up as the connection closing (or an alert) right after.
        s.once('close', () => resolve('closed by server'));
        s.once('error', (e) => resolve(`refused: ${e.message}`));
        setTimeout(() => {
          s.destroy();
          resolve('accepted');
        }, 300);
      });
      s.once('error', (e) => resolve(`refused: ${e.message}`));
    });
  }

  async function foreignCert(opts: {
    identity: string;
    sameCa: boolean;
    notAfter?: Date;
  }): Promise<{ keyPem: string; chain: string }> {
    const key = await generateKey();
    let issuerPem: string;
    let issuerKey: Awaited<ReturnType<typeof generateKey>>;
    if (opts.sameCa) {
      const { readFileSync } = await import('node:fs');
      const { importKey } = await import('../../src/identity/x509.js');
      issuerPem = readFileSync(join(dir, 'root-cert.pem'), 'utf8');
      issuerKey = await importKey(readFileSync(join(dir, 'root-key.pem'), 'utf8'));
    } else {
      issuerKey = await generateKey();
      issuerPem = await createRoot(issuerKey, 'evil', 1);
    }
    const now = Date.now();
    const leaf = await signWorkloadCert({
      issuerPem,
      issuerKey,
      publicKey: key.keys.publicKey,
      identity: opts.identity,
      notBefore: new Date(now - 3_600_000),
      notAfter: opts.notAfter ?? new Date(now + 3_600_000),
    });
    return { keyPem: key.keyPem, chain: leaf + issuerPem };
  }

  test('a valid client certificate is accepted (control case)', async () => {
    const c = certs.current(CLIENT)!;
    expect(await handshake(c.keyPem, c.chain.join(''))).toBe('accepted');
  });

  test.each([
    [
      'a foreign CA',
      { identity: CLIENT, sameCa: false },
      /TLS_FAILURE: .*not issued by a CA in the trust bundle|TLS_FAILURE: .*trust bundle/,
    ],
    [
      'a foreign trust domain',
      { identity: 'spiffe://evil.example/ns/hello/sa/client', sameCa: true },
      /IDENTITY_ERROR: .*trust domain evil\.example/,
    ],
    [
      'a wrong SAN (not a workload identity)',
      { identity: 'spiffe://cluster.local/admin', sameCa: true },
      /IDENTITY_ERROR: .*not a workload identity/,
    ],
    [
      'an expired certificate',
      { identity: CLIENT, sameCa: true, notAfter: new Date(Date.now() - 60_000) },
      /TLS_FAILURE: .*expired/,
    ],
  ])('a client certificate from %s is refused', async (_name, opts, reason) => {
    const before = refused.length;
    const c = await foreignCert(opts);
    const outcome = await handshake(c.keyPem, c.chain);
    expect(outcome).not.toBe('accepted');
    expect(
      refused.slice(before).some((r) => reason.test(r)),
      `${outcome} | ${refused.slice(before).join('; ')}`,
    ).toBe(true);
  });

  /** Proves the server still serves: a pooled CONNECT round trip from a fresh pool. */
  async function echoThroughPool(): Promise<string> {
    const pool = new HbonePool({ cert: (id) => certs.get(id), log });
    try {
      const stream = await pool.open(
        { ip: '127.0.0.1', port, srcIdentity: CLIENT, dstIdentity: SERVER },
        '10.0.0.1:80',
        {},
      );
      stream.end('still serving');
      return await new Promise<string>((resolve) => {
        let out = '';
        stream.on('data', (d: Buffer) => {
          out += d.toString();
        });
        stream.on('end', () => resolve(out));
      });
    } finally {
      pool.close();
    }
  }

  /** A raw TCP client: sends `bytes` (if any) and resolves, with the local port, when the server closes it. */
  function rawClient(bytes: string | undefined): { localPort: Promise<number>; closed: Promise<void> } {
    const s = tcpConnect({ host: '127.0.0.1', port });
    const localPort = new Promise<number>((resolve) => s.once('connect', () => resolve(s.localPort!)));
    s.on('connect', () => {
      if (bytes !== undefined) s.write(bytes);
    });
    s.on('data', () => undefined);
    s.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    return { localPort, closed };
  }

  test('protocol garbage on the HBONE port is refused naming the peer, and the server keeps serving', async () => {
    const before = refused.length;
    const c = rawClient('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const localPort = await c.localPort;
    await c.closed;
    await expect.poll(() => refused.length).toBeGreaterThan(before);
    expect(refused.slice(before).join('; ')).toMatch(/TLS_FAILURE: /);
    expect(refusedPeers.slice(before)).toContain(`127.0.0.1:${localPort}`);
    expect(await echoThroughPool()).toBe('still serving');
  });

  test('a client that stays silent is dropped at the handshake timeout while others are served', async () => {
    const before = refused.length;
    const silent = rawClient(undefined);
    const localPort = await silent.localPort;
    // Served while the silent client holds its socket.
    expect(await echoThroughPool()).toBe('still serving');
    const t0 = Date.now();
    await silent.closed;
    expect(Date.now() - t0).toBeLessThan(5000);
    await expect.poll(() => refusedPeers.slice(before)).toContain(`127.0.0.1:${localPort}`);
    expect(refused.slice(before).join('; ')).toMatch(/TLS_FAILURE: .*timed out|TLS_FAILURE: .*timeout/i);
  });

  test('a CONNECT with oversized headers is refused before it reaches the proxy, and other connections keep working', async () => {
    const c = certs.current(CLIENT)!;
    const session = http2Connect(`https://127.0.0.1:${port}`, {
      servername: sniFor(SERVER),
      ALPNProtocols: ['h2'],
      key: c.keyPem,
      cert: c.chain.join(''),
      ca: ca.trustBundle().join(''),
      ...TLS_OPTIONS,
      checkServerIdentity: () => undefined,
      // Let the client send what a compliant peer would not, so that the server has to deal with it.
      maxSendHeaderBlockLength: 4 << 20,
    });
    session.on('error', () => undefined);
    const before = seen.length;
    try {
      const outcome = await new Promise<string>((resolve) => {
        const req = session.request({
          ':method': 'CONNECT',
          ':authority': '10.0.0.1:80',
          'x-padding': randomBytes(96 * 1024).toString('base64'),
        });
        req.on('response', (h) => resolve(`status ${h[':status']}`));
        req.on('error', (e: Error) => resolve(`error: ${e.message}`));
        req.on('close', () => resolve(`closed with code ${req.rstCode}`));
      });
      expect(outcome).not.toBe('status 200');
      expect(outcome).not.toBe('closed with code 0');
      expect(seen.length).toBe(before);
      expect(await echoThroughPool()).toBe('still serving');
    } finally {
      session.close();
    }
  });

  test('a CSR for another identity than the one asked is refused by the CA', async () => {
    const key = await generateKey();
    await expect(ca.sign(await createCsr(key, CLIENT), SpiffeId.parse(SERVER), 60)).rejects.toThrow(
      /not exactly/,
    );
  });
});
