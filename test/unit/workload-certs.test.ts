import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { CertificateAuthority } from '../../src/identity/ca.js';
import { SpiffeId } from '../../src/identity/spiffe-id.js';
import { type IssuedCert, refreshAt, WorkloadCertificates } from '../../src/identity/workload-certs.js';
import { createRootLogger } from '../../src/telemetry/logger.js';

const log = createRootLogger({ name: 'workload-certs-test', level: 'fatal' });
const ID = 'spiffe://cluster.local/ns/hello/sa/client';

describe('refreshAt', () => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  const at = (s: number) => new Date(t0.getTime() + s * 1000);
  test.each([
    { what: 'a day-long certificate renews after half a day', notAfter: at(86_400), want: at(43_200) },
    { what: 'a 20 s certificate renews after 10 s', notAfter: at(20), want: at(10) },
    { what: 'an already expired certificate renews now', notAfter: at(-5), want: t0 },
  ])('$what', ({ notAfter, want }) => {
    expect(refreshAt(t0, notAfter)).toEqual(want);
  });
});

describe('WorkloadCertificates with a real CA, on a clock the test moves', () => {
  let dir: string;
  let ca: CertificateAuthority;
  const clock = new ManualClock();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ambit-wcerts-'));
    ca = (await CertificateAuthority.loadOrCreate(dir, 'test', clock)).ca;
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Certificates of `ttlSeconds` from the real CA, and every one issued, in order. */
  function withCa(ttlSeconds: number): { certs: WorkloadCertificates; issued: IssuedCert[] } {
    const issued: IssuedCert[] = [];
    const certs = new WorkloadCertificates(
      { sign: (csr, id, ttl) => ca.sign(csr, SpiffeId.parse(id), ttl) },
      {
        ttlSeconds,
        clock,
        log,
        bundle: () => ca.trustBundle(),
        onIssued: (c) => issued.push(c),
      },
    );
    return { certs, issued };
  }

  test('short-lived certificates renew at half life, not in a loop (the CA backdates notBefore)', async () => {
    const { certs, issued } = withCa(4);
    try {
      certs.setWanted([ID]);
      await certs.get(ID);
      expect(issued).toHaveLength(1);
      // Due halfway between receipt and expiry: 2 s from now, not at once (notBefore is a minute back).
      expect(clock.pending).toBe(1);
      clock.advance(1999);
      expect(issued).toHaveLength(1);
      clock.advance(1);
      await vi.waitFor(() => expect(issued).toHaveLength(2));
      // The renewed one is due 2 s after it arrived, again; nothing more happens without time passing.
      expect(clock.pending).toBe(1);
      clock.advance(2000);
      await vi.waitFor(() => expect(issued).toHaveLength(3));
      expect(issued.map((c) => c.generation)).toEqual([1, 2, 3]);
      expect(certs.current(ID)).toBe(issued[2]);
    } finally {
      certs.close();
    }
  });

  test('a workload that leaves has its certificate dropped and no longer renewed', async () => {
    const { certs, issued } = withCa(2);
    try {
      certs.setWanted([ID]);
      await certs.get(ID);
      certs.setWanted([]);
      const n = issued.length;
      expect(certs.current(ID)).toBeUndefined();
      expect(clock.pending).toBe(0);
      clock.advance(10_000);
      expect(issued.length).toBe(n);
    } finally {
      certs.close();
    }
  });

  test('a failed renewal retries with back-off while the current certificate stays in use', async () => {
    let failing = false;
    const issued: IssuedCert[] = [];
    const certs = new WorkloadCertificates(
      {
        sign: (csr, id, ttl) =>
          failing ? Promise.reject(new Error('CA unreachable')) : ca.sign(csr, SpiffeId.parse(id), ttl),
      },
      { ttlSeconds: 60, clock, log, bundle: () => ca.trustBundle(), onIssued: (c) => issued.push(c) },
    );
    try {
      certs.setWanted([ID]);
      const first = await certs.get(ID);
      failing = true;
      clock.advance(30_000);
      // The renewal failed: a retry is set 1 s later, and the first certificate still serves.
      await vi.waitFor(() => expect(clock.pending).toBe(1));
      expect(certs.current(ID)).toBe(first);
      failing = false;
      clock.advance(1000);
      await vi.waitFor(() => expect(issued).toHaveLength(2));
      expect(certs.current(ID)).toBe(issued[1]);
    } finally {
      certs.close();
    }
  });
});
