import type * as grpc from '@grpc/grpc-js';
import type { Clock, Timer } from '../clock.js';
import type { CertificateAuthority } from '../identity/ca.js';
import type { SpiffeId } from '../identity/spiffe-id.js';
import { certInfo, createCsr, generateKey } from '../identity/x509.js';
import type { Logger } from '../telemetry/logger.js';

type IdentityUpdate = grpc.experimental.IdentityCertificateUpdate;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;
type CaListener = grpc.experimental.CaCertificateUpdateListener;

/**
 * The control plane's own serving certificate, issued by its CA, renewed at half life and re-issued at
 * once when the CA root rotates, so that proxies that trust only the new root (after the old one is
 * dropped) can still reach the control plane. gRPC picks each new certificate up for new connections
 * through its certificate-provider interface.
 */
export class ServingCertificate implements grpc.experimental.CertificateProvider {
  private current: IdentityUpdate | undefined;
  private readonly listeners = new Set<IdentityListener>();
  private timer: Timer | undefined;

  constructor(
    private readonly ca: CertificateAuthority,
    private readonly identity: SpiffeId,
    private readonly ttlSeconds: number,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {}

  /** Issues a new certificate from the CA's current root and hands it to gRPC. */
  async issue(): Promise<void> {
    const key = await generateKey();
    const chain = await this.ca.sign(
      await createCsr(key, this.identity.toString()),
      this.identity,
      this.ttlSeconds,
    );
    this.current = { certificate: Buffer.from(chain.join('')), privateKey: Buffer.from(key.keyPem) };
    for (const l of this.listeners) l(this.current);
    const leaf = certInfo(chain[0]!);
    this.log.info(
      { identity: this.identity.toString(), serial: leaf.serial, notAfter: leaf.notAfter.toISOString() },
      'control plane serving certificate issued',
    );
    this.timer?.cancel();
    const halfLife = (leaf.notAfter.getTime() - this.clock.now().getTime()) / 2;
    this.timer = this.clock.setTimer(
      () =>
        void this.issue().catch((err: unknown) =>
          this.log.error({ err }, 'control plane serving certificate renewal failed; the current one stays'),
        ),
      Math.max(1000, halfLife),
    );
  }

  close(): void {
    this.timer?.cancel();
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.listeners.add(listener);
    // Later, not now: gRPC registers its own watcher only after this returns, and would miss the update.
    queueMicrotask(() => {
      if (this.current !== undefined && this.listeners.has(listener)) listener(this.current);
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.listeners.delete(listener);
  }

  // Clients are not asked for certificates (nodes authenticate with their token), so no CA updates.
  addCaCertificateListener(_listener: CaListener): void {}

  removeCaCertificateListener(_listener: CaListener): void {}
}
