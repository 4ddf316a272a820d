/**
 * Which key type for workload certificates: ECDSA P-256 (what ztunnel uses) or RSA-2048 (node-forge's
 * only option)? Measures, in one run: key generation, CSR creation, CA signing, and full TLS 1.3 mutual
 * handshakes per second between two Node processes' worth of contexts on loopback.
 *
 * Run: node_modules/.bin/vite-node bench/key-type.ts
 */
import { webcrypto } from 'node:crypto';
import { connect, createSecureContext, createServer } from 'node:tls';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type Alg = {
  name: string;
  gen: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams;
  sign: webcrypto.Algorithm | webcrypto.EcdsaParams;
};
const ALGS: Alg[] = [
  {
    name: 'ECDSA P-256',
    gen: { name: 'ECDSA', namedCurve: 'P-256' },
    sign: { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams,
  },
  {
    name: 'RSA-2048',
    gen: {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    },
    sign: { name: 'RSASSA-PKCS1-v1_5' },
  },
];

async function time<T>(n: number, fn: () => Promise<T>): Promise<{ perOpMs: number; last: T }> {
  const t = process.hrtime.bigint();
  let last!: T;
  for (let i = 0; i < n; i++) last = await fn();
  return { perOpMs: Number(process.hrtime.bigint() - t) / 1e6 / n, last };
}

async function pem(keys: webcrypto.CryptoKeyPair): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function main(): Promise<void> {
  const rows: string[] = [
    '| key type | keygen ms | CSR ms | CA sign ms | mTLS handshakes/s |',
    '|---|---|---|---|---|',
  ];
  for (const alg of ALGS) {
    const gen = () =>
      webcrypto.subtle.generateKey(alg.gen, true, ['sign', 'verify']) as Promise<webcrypto.CryptoKeyPair>;
    const keygen = await time(alg.name.startsWith('RSA') ? 10 : 200, gen);
    const caKeys = await gen();
    const ca = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'O=bench',
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3_600_000),
      keys: caKeys,
      signingAlgorithm: alg.sign,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    });
    const wkeys = await gen();
    const csr = await time(50, () =>
      x509.Pkcs10CertificateRequestGenerator.create({
        keys: wkeys,
        signingAlgorithm: alg.sign,
        extensions: [
          new x509.SubjectAlternativeNameExtension([
            { type: 'url', value: 'spiffe://cluster.local/ns/a/sa/b' },
          ]),
        ],
      }),
    );
    const sign = await time(50, () =>
      x509.X509CertificateGenerator.create({
        serialNumber: '02',
        subject: '',
        issuer: ca.subject,
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 3_600_000),
        publicKey: csr.last.publicKey,
        signingKey: caKeys.privateKey,
        signingAlgorithm: alg.sign,
        extensions: [
          new x509.SubjectAlternativeNameExtension(
            [{ type: 'url', value: 'spiffe://cluster.local/ns/a/sa/b' }],
            true,
          ),
        ],
      }),
    );
    const certPem = sign.last.toString('pem');
    const keyPem = await pem(wkeys);
    const ctx = createSecureContext({
      key: keyPem,
      cert: certPem,
      ca: ca.toString('pem'),
      minVersion: 'TLSv1.3',
    });
    // tls.createServer ignores `secureContext` (only clients and SNICallback use one): pass key and cert.
    const server = createServer(
      {
        key: keyPem,
        cert: certPem,
        ca: ca.toString('pem'),
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
      },
      (s) => s.end(),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const N = 400;
    const hs = await time(
      N,
      () =>
        new Promise<void>((resolve, reject) => {
          const c = connect(
            {
              port,
              host: '127.0.0.1',
              secureContext: ctx,
              checkServerIdentity: () => undefined,
              minVersion: 'TLSv1.3',
            },
            () => {
              c.destroy();
              resolve();
            },
          );
          c.once('error', reject);
        }),
    );
    server.close();
    rows.push(
      `| ${alg.name} | ${keygen.perOpMs.toFixed(2)} | ${csr.perOpMs.toFixed(2)} | ${sign.perOpMs.toFixed(2)} | ${(1000 / hs.perOpMs).toFixed(0)} |`,
    );
  }
  process.stdout.write(
    `${rows.join('\n')}\n(sequential handshakes, client and server in one Node process on loopback)\n`,
  );
}

await main();
