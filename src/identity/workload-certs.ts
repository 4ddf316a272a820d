import { createSecureContext, type SecureContext } from 'node:tls';
import type { Clock, Timer } from '../clock.js';
import { describeError } from '../errors.js';
import { backoffDelay, RENEWAL_BACKOFF } from '../net/backoff.js';
import type { Logger } from '../telemetry/logger.js';
import type { CaClient } from './ca-client.js';
import { certInfo, createCsr, generateKey } from './x509.js';

/** TLS 1.3 with AES-GCM only, as ztunnel. */
export const TLS_OPTIONS = {
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  ciphers: 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256',
} as const;

export interface IssuedCert {
  readonly identity: string;
  readonly keyPem: string;
  readonly chain: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** One TLS context per identity and certificate, shared by every connection that uses it. */
  readonly context: SecureContext;
  /** Increases with each renewal: pooled connections made with an older one are retired. */
  readonly generation: number;
}

export interface WorkloadCertOptions {
  readonly ttlSeconds: number;
  readonly clock: Clock;
  readonly log: Logger;
  readonly bundle: () => readonly string[];
  /** Called after each issue or renewal (for metrics and pool retirement). */
  readonly onIssued?: (cert: IssuedCert) => void;
}

/**
 * When to renew: halfway between receiving the certificate and its expiry. Not from `notBefore`: CAs
 * backdate it for clock skew (Ambit's by a minute), and a lifetime counted from there would put the
 * renewal of a short-lived certificate in the past, renewing it again at once, forever.
 */
export function refreshAt(received: Date, notAfter: Date): Date {
  return new Date(received.getTime() + Math.max(0, notAfter.getTime() - received.getTime()) / 2);
}

/**
 * The certificates of the workloads a node proxy serves. Keys are generated here and never leave the
 * process; a CSR goes to the CA, the chain comes back. Certificates are fetched as soon as a workload
 * appears (so the first connection does not wait), renewed at half their lifetime (retrying with
 * back-off while the old one is still valid), and dropped when the workload leaves.
 */
export class WorkloadCertificates {
  private readonly certs = new Map<string, IssuedCert>();
  private readonly inflight = new Map<string, Promise<IssuedCert>>();
  private readonly timers = new Map<string, Timer>();
  private wanted = new Set<string>();
  private generation = 0;

  constructor(
    private readonly ca: CaClient,
    private readonly opts: WorkloadCertOptions,
  ) {}

  /** The identities to hold certificates for; new ones are fetched now, others dropped. */
  setWanted(identities: Iterable<string>): void {
    this.wanted = new Set(identities);
    for (const id of this.wanted) {
      if (!this.certs.has(id) && !this.inflight.has(id)) {
        this.get(id).catch((err: unknown) =>
          this.opts.log.warn(
            { identity: id, err: describeError(err) },
            'certificate fetch failed; will retry',
          ),
        );
      }
    }
    for (const id of [...this.certs.keys()]) {
      if (this.wanted.has(id)) continue;
      this.certs.delete(id);
      this.timers.get(id)?.cancel();
      this.timers.delete(id);
      this.opts.log.info({ identity: id }, 'certificate dropped: no workload uses it any more');
    }
  }

  /** The current certificate, if one is held. */
  current(identity: string): IssuedCert | undefined {
    const c = this.certs.get(identity);
    return c !== undefined && c.notAfter > this.opts.clock.now() ? c : undefined;
  }

  /** The current certificate, fetching one first if needed. */
  get(identity: string): Promise<IssuedCert> {
    const have = this.current(identity);
    if (have !== undefined) return Promise.resolve(have);
    return this.fetch(identity);
  }

  private fetch(identity: string): Promise<IssuedCert> {
    const pending = this.inflight.get(identity);
    if (pending !== undefined) return pending;
    const p = this.issue(identity).finally(() => this.inflight.delete(identity));
    this.inflight.set(identity, p);
    return p;
  }

  private async issue(identity: string): Promise<IssuedCert> {
    const key = await generateKey();
    const chain = await this.ca.sign(await createCsr(key, identity), identity, this.opts.ttlSeconds);
    const info = certInfo(chain[0] ?? '');
    if (!info.uris.includes(identity)) {
      throw new Error(`the CA returned a certificate for ${info.uris.join(', ')}, not ${identity}`);
    }
    const cert: IssuedCert = {
      identity,
      keyPem: key.keyPem,
      chain,
      notBefore: info.notBefore,
      notAfter: info.notAfter,
      context: this.context(key.keyPem, chain),
      generation: ++this.generation,
    };
    this.certs.set(identity, cert);
    this.schedule(identity, refreshAt(this.opts.clock.now(), info.notAfter), 0);
    this.opts.log.info({ identity, notAfter: info.notAfter.toISOString() }, 'workload certificate issued');
    this.opts.onIssued?.(cert);
    return cert;
  }

  private context(keyPem: string, chain: readonly string[]): SecureContext {
    return createSecureContext({
      key: keyPem,
      cert: chain.join(''),
      ca: this.opts.bundle().join(''),
      ...TLS_OPTIONS,
    });
  }

  /** Renews at `at` (the clock's time); a failed renewal retries with back-off while the cert is valid. */
  private schedule(identity: string, at: Date, attempt: number): void {
    this.timers.get(identity)?.cancel();
    const delay = Math.max(0, at.getTime() - this.opts.clock.now().getTime());
    const timer = this.opts.clock.setTimer(() => {
      if (!this.wanted.has(identity)) return;
      this.fetch(identity).catch((err: unknown) => {
        const retry = backoffDelay(attempt, RENEWAL_BACKOFF);
        this.opts.log.warn(
          { identity, err: describeError(err), retryInMs: retry },
          'certificate renewal failed; the current one stays in use',
        );
        this.schedule(identity, new Date(this.opts.clock.now().getTime() + retry), attempt + 1);
      });
    }, delay);
    this.timers.set(identity, timer);
  }

  /** A new trust bundle: rebuild every context so that new connections trust exactly it. */
  bundleChanged(): void {
    for (const [id, c] of this.certs) this.certs.set(id, { ...c, context: this.context(c.keyPem, c.chain) });
  }

  /** Each certificate held, with the serial of the root its chain ends in. */
  list(): { identity: string; notBefore: Date; notAfter: Date; serial: string; root: string }[] {
    return [...this.certs.values()].map((c) => ({
      identity: c.identity,
      notBefore: c.notBefore,
      notAfter: c.notAfter,
      serial: certInfo(c.chain[0]!).serial,
      root: certInfo(c.chain.at(-1)!).serial,
    }));
  }

  close(): void {
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
  }
}
