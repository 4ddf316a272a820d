import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Clock, systemClock } from '../clock.js';
import { AmbitError, ErrorCode } from '../errors.js';
import type { SpiffeId } from './spiffe-id.js';
import {
  certInfo,
  createRoot,
  generateKey,
  importKey,
  type KeyMaterial,
  parseCsr,
  signWorkloadCert,
  splitPem,
} from './x509.js';

export const ROOT_CERT = 'root-cert.pem';
export const ROOT_KEY = 'root-key.pem';
export const TRUST_BUNDLE = 'trust-bundle.pem';

function writeSecret(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

function writePublic(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, path);
}

/**
 * The mesh CA: a root generated on first start (or supplied as root-cert.pem + root-key.pem in its
 * folder), its key stored 0600, and a trust bundle that can hold more than one root so that the root
 * can be rotated without breaking live workloads: rotate, let certificates renew, then drop the old one.
 */
export class CertificateAuthority {
  private constructor(
    private readonly dir: string,
    private rootPem: string,
    private rootKey: KeyMaterial,
    private trusted: string[],
    private readonly clock: Clock,
  ) {}

  static async loadOrCreate(
    dir: string,
    org: string,
    clock: Clock = systemClock,
  ): Promise<{ ca: CertificateAuthority; created: boolean }> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const certPath = join(dir, ROOT_CERT);
    const keyPath = join(dir, ROOT_KEY);
    const bundlePath = join(dir, TRUST_BUNDLE);
    if (existsSync(certPath) !== existsSync(keyPath)) {
      throw new AmbitError(
        ErrorCode.CERTIFICATE,
        `${dir}: ${ROOT_CERT} and ${ROOT_KEY} must be supplied together`,
      );
    }
    if (existsSync(certPath)) {
      const mode = statSync(keyPath).mode & 0o777;
      if ((mode & 0o077) !== 0) {
        throw new AmbitError(
          ErrorCode.CERTIFICATE,
          `${keyPath}: the CA key is readable by others (mode ${mode.toString(8)}); chmod 600 it`,
        );
      }
      const rootPem = readFileSync(certPath, 'utf8');
      let info: ReturnType<typeof certInfo>;
      try {
        info = certInfo(rootPem);
      } catch (err) {
        throw new AmbitError(ErrorCode.CERTIFICATE, `${certPath}: ${(err as Error).message}`, { cause: err });
      }
      if (info.notAfter < clock.now())
        throw new AmbitError(
          ErrorCode.CERTIFICATE,
          `${certPath}: the root expired on ${info.notAfter.toISOString()}`,
        );
      const key = await importKey(readFileSync(keyPath, 'utf8')).catch((err: unknown) => {
        throw new AmbitError(ErrorCode.CERTIFICATE, `${keyPath}: ${(err as Error).message}`, { cause: err });
      });
      const trusted = existsSync(bundlePath) ? splitPem(readFileSync(bundlePath, 'utf8')) : [rootPem];
      if (!trusted.includes(rootPem)) trusted.unshift(rootPem);
      const ca = new CertificateAuthority(dir, rootPem, key, trusted, clock);
      await ca.selfTest(certPath);
      ca.persistBundle();
      return { ca, created: false };
    }
    const key = await generateKey();
    const rootPem = await createRoot(key, org, 3650, clock.now());
    writeSecret(keyPath, key.keyPem);
    writePublic(certPath, rootPem);
    const ca = new CertificateAuthority(dir, rootPem, key, [rootPem], clock);
    ca.persistBundle();
    return { ca, created: true };
  }

  /** A supplied key that does not belong to the supplied certificate is caught here, not by the first peer. */
  private async selfTest(certPath: string): Promise<void> {
    const probe = await generateKey();
    const now = this.clock.now();
    const pem = await signWorkloadCert({
      issuerPem: this.rootPem,
      issuerKey: this.rootKey,
      publicKey: probe.keys.publicKey,
      identity: 'spiffe://self-test/ns/x/sa/y',
      notBefore: now,
      notAfter: new Date(now.getTime() + 60_000),
    });
    const { X509Certificate } = await import('@peculiar/x509');
    const ok = await new X509Certificate(pem).verify({
      publicKey: new X509Certificate(this.rootPem).publicKey,
      signatureOnly: true,
    });
    if (!ok)
      throw new AmbitError(
        ErrorCode.CERTIFICATE,
        `${certPath}: ${ROOT_KEY} is not the key of this certificate`,
      );
  }

  private persistBundle(): void {
    writePublic(join(this.dir, TRUST_BUNDLE), this.trusted.join(''));
  }

  /** Every root that peers must accept, the signing root first. */
  trustBundle(): readonly string[] {
    return this.trusted;
  }

  rootInfo(): ReturnType<typeof certInfo> {
    return certInfo(this.rootPem);
  }

  /**
   * Signs a CSR for `identity`. The CSR must be self-signed correctly and carry exactly that identity
   * as its only URI SAN. Returns the chain, leaf first.
   */
  async sign(csrPem: string, identity: SpiffeId, ttlSeconds: number): Promise<string[]> {
    const csr = await parseCsr(csrPem);
    const want = identity.toString();
    if (csr.uris.length !== 1 || csr.uris[0] !== want) {
      throw new AmbitError(
        ErrorCode.CA_DENIED,
        `the CSR names ${JSON.stringify(csr.uris)}, not exactly ${want}`,
      );
    }
    const now = this.clock.now();
    const rootEnd = this.rootInfo().notAfter;
    const notAfter = new Date(Math.min(now.getTime() + ttlSeconds * 1000, rootEnd.getTime()));
    const leaf = await signWorkloadCert({
      issuerPem: this.rootPem,
      issuerKey: this.rootKey,
      publicKey: await csr.publicKey.export(),
      identity: want,
      // A minute of slack for clocks that are slightly behind.
      notBefore: new Date(now.getTime() - 60_000),
      notAfter,
    });
    return [leaf, this.rootPem];
  }

  /** Starts signing with a new root; the old one stays trusted until `dropOldRoots`. */
  async rotate(org: string): Promise<void> {
    const key = await generateKey();
    const rootPem = await createRoot(key, org, 3650, this.clock.now());
    writeSecret(join(this.dir, ROOT_KEY), key.keyPem);
    writePublic(join(this.dir, ROOT_CERT), rootPem);
    this.rootPem = rootPem;
    this.rootKey = key;
    this.trusted = [rootPem, ...this.trusted.filter((p) => p !== rootPem)];
    this.persistBundle();
  }

  dropOldRoots(): void {
    this.trusted = [this.rootPem];
    this.persistBundle();
  }
}
