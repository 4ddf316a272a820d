import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CertificateAuthority, systemClock } from '../../src/identity/ca.js';
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

describe('WorkloadCertificates with a real CA', () => {
  let dir: string;
  let ca: CertificateAuthority;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ambit-wcerts-'));
    ca = (await CertificateAuthority.loadOrCreate(dir, 'test')).ca;
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Certificates of `ttlSeconds` from the real CA, and every one issued, in order. */
  function withCa(ttlSeconds: number): { certs: WorkloadCertificates; issued: IssuedCert[] } {
    const issued: IssuedCert[] = [];
    const certs = new WorkloadCertificates(
      { sign: (csr, id, ttl) => ca.sign(csr, SpiffeId.parse(id), ttl) },
      {
        ttlSeconds,
        clock: systemClock,
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
      await sleep(4500);
      // Issued at 0, renewed about every 2 s (half of what is left): 3 or 4 in 4.5 s, never hundreds.
      expect(issued.length).toBeGreaterThanOrEqual(2);
      expect(issued.length).toBeLessThanOrEqual(5);
      expect(certs.current(ID)).toBeDefined();
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
      await sleep(1500);
      expect(certs.current(ID)).toBeUndefined();
      expect(issued.length).toBe(n);
    } finally {
      certs.close();
    }
  });
});
