import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { AmbitError, ErrorCode } from '../errors.js';

/*
 * Certificates for workload identities, with ECDSA P-256 keys (what ztunnel uses). Measured here
 * (bench/key-type.ts): a P-256 key takes 0.3 ms to generate against 131 ms for RSA-2048, and mutual
 * TLS 1.3 handshakes run 18% faster. node-forge only does RSA, so keys come from Node's WebCrypto and
 * certificates, CSRs and parsing from @peculiar/x509.
 */
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKeyPair = webcrypto.CryptoKeyPair;
type CryptoKey = webcrypto.CryptoKey;

export const EC_KEY: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
export const EC_SIGN: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

/** PEM text ends with a newline, so that PEMs can be concatenated into bundles and chains. */
function nl(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

export interface KeyMaterial {
  readonly keys: CryptoKeyPair;
  /** PKCS#8 PEM, for Node's TLS. */
  readonly keyPem: string;
}

export async function generateKey(): Promise<KeyMaterial> {
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPair;
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { keys, keyPem: nl(x509.PemConverter.encode(der, 'PRIVATE KEY')) };
}

/** Imports a PKCS#8 PEM EC key (with its public half derived through a JWK round trip). */
export async function importKey(pem: string): Promise<KeyMaterial> {
  try {
    const der = x509.PemConverter.decode(pem)[0]!;
    const privateKey = await webcrypto.subtle.importKey('pkcs8', der, EC_KEY, true, ['sign']);
    const jwk = await webcrypto.subtle.exportKey('jwk', privateKey);
    delete jwk.d;
    jwk.key_ops = ['verify'];
    const publicKey = await webcrypto.subtle.importKey('jwk', jwk, EC_KEY, true, ['verify']);
    return { keys: { privateKey, publicKey }, keyPem: pem };
  } catch (err) {
    throw new AmbitError(ErrorCode.CERTIFICATE, 'the key is not a PKCS#8 PEM P-256 key', { cause: err });
  }
}

/** A CSR for one SPIFFE identity (URI SAN), signed by the workload's own key. */
export async function createCsr(key: KeyMaterial, identity: string): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: key.keys,
    signingAlgorithm: EC_SIGN,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identity }])],
  });
  return nl(csr.toString('pem'));
}

const SAN_OID = '2.5.29.17';

export interface ParsedCsr {
  readonly publicKey: x509.PublicKey;
  readonly uris: readonly string[];
}

/** Parses a PEM CSR and checks its self-signature; anything wrong is AMBIT_ERR_CERTIFICATE with the reason. */
export async function parseCsr(pem: string): Promise<ParsedCsr> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch (err) {
    throw new AmbitError(ErrorCode.CERTIFICATE, 'the CSR is not a PEM PKCS#10 request', { cause: err });
  }
  if (!(await csr.verify())) throw new AmbitError(ErrorCode.CERTIFICATE, 'the CSR signature does not verify');
  const raw = csr.getExtension(SAN_OID);
  const san = raw === null ? undefined : new x509.SubjectAlternativeNameExtension(raw.rawData);
  const uris = san?.names.items.filter((n) => n.type === 'url').map((n) => n.value) ?? [];
  return { publicKey: csr.publicKey, uris };
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive
  return b.toString('hex');
}

/** A self-signed root CA certificate. */
export async function createRoot(
  key: KeyMaterial,
  org: string,
  days: number,
  now = new Date(),
): Promise<string> {
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `O=${org}`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + days * 86_400_000),
    keys: key.keys,
    signingAlgorithm: EC_SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(key.keys.publicKey),
    ],
  });
  return nl(cert.toString('pem'));
}

/** Signs a workload certificate: the given public key, one URI SAN, usable for TLS client and server. */
export async function signWorkloadCert(opts: {
  readonly issuerPem: string;
  readonly issuerKey: KeyMaterial;
  readonly publicKey: x509.PublicKey | CryptoKey;
  readonly identity: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}): Promise<string> {
  const issuer = new x509.X509Certificate(opts.issuerPem);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: '',
    issuer: issuer.subject,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    publicKey: opts.publicKey,
    signingKey: opts.issuerKey.keys.privateKey,
    signingAlgorithm: EC_SIGN,
    extensions: [
      // The identity is the only name: an empty subject makes the SAN critical (RFC 5280).
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: opts.identity }], true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.BasicConstraintsExtension(false, undefined, true),
      await x509.AuthorityKeyIdentifierExtension.create(opts.issuerKey.keys.publicKey),
    ],
  });
  return nl(cert.toString('pem'));
}

/** Signs a TLS server certificate for DNS names and IP addresses (local mode's Kubernetes API server). */
export async function signServerCert(opts: {
  readonly issuerPem: string;
  readonly issuerKey: KeyMaterial;
  readonly publicKey: x509.PublicKey | CryptoKey;
  readonly dns: readonly string[];
  readonly ips: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
}): Promise<string> {
  const issuer = new x509.X509Certificate(opts.issuerPem);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${opts.dns[0] ?? opts.ips[0] ?? 'server'}`,
    issuer: issuer.subject,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    publicKey: opts.publicKey,
    signingKey: opts.issuerKey.keys.privateKey,
    signingAlgorithm: EC_SIGN,
    extensions: [
      new x509.SubjectAlternativeNameExtension([
        ...opts.dns.map((value) => ({ type: 'dns' as const, value })),
        ...opts.ips.map((value) => ({ type: 'ip' as const, value })),
      ]),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.BasicConstraintsExtension(false, undefined, true),
      await x509.AuthorityKeyIdentifierExtension.create(opts.issuerKey.keys.publicKey),
    ],
  });
  return nl(cert.toString('pem'));
}

/** A CA of its own and a TLS server certificate it signed: for an HTTPS server that is not a workload. */
export interface ServingCredentials {
  readonly caPem: string;
  readonly keyPem: string;
  readonly certPem: string;
}

export async function createServingCredentials(opts: {
  readonly org: string;
  readonly dns: readonly string[];
  readonly ips: readonly string[];
  readonly days: number;
  readonly now?: Date;
}): Promise<ServingCredentials> {
  const now = opts.now ?? new Date();
  const caKey = await generateKey();
  const caPem = await createRoot(caKey, opts.org, opts.days, now);
  const key = await generateKey();
  const certPem = await signServerCert({
    issuerPem: caPem,
    issuerKey: caKey,
    publicKey: key.keys.publicKey,
    dns: opts.dns,
    ips: opts.ips,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + opts.days * 86_400_000),
  });
  return { caPem, keyPem: key.keyPem, certPem };
}

export interface CertInfo {
  readonly uris: readonly string[];
  readonly serial: string;
  readonly issuer: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export function certInfo(pem: string): CertInfo {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(pem);
  } catch (err) {
    throw new AmbitError(ErrorCode.CERTIFICATE, 'not a PEM X.509 certificate', { cause: err });
  }
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return {
    uris: san?.names.items.filter((n) => n.type === 'url').map((n) => n.value) ?? [],
    serial: cert.serialNumber,
    issuer: cert.issuer,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

/** Splits a PEM bundle into its certificates. */
export function splitPem(bundle: string): string[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(nl);
}
