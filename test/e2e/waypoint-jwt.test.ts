import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ambit, waitFor } from './helpers.js';
import {
  app,
  clientPod,
  deployment,
  documents,
  echoCommand,
  meshNamespace,
  PY,
  type Sample,
  sumSamples,
  WaypointCluster,
} from './waypoint-helpers.js';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

/*
 * RequestAuthentication at a waypoint, in a local cluster, with curl as the client and a JWKS served
 * over HTTP by python3's http.server in a pod of a namespace outside the mesh: the waypoint fetches
 * the keys itself. Tokens are signed here with jose. A valid token carries its claims into the
 * AuthorizationPolicy (request.auth.claims, requestPrincipals); an invalid one is refused 401 by the
 * waypoint; no token passes authentication and is then denied by the ALLOW policy; a key rotation
 * in the JWKS is picked up without restarting anything.
 */

const CLUSTER = 'e2e-jwt';
const NS = 'jwt';
const ISSUER = 'https://idp.example';
const cluster = new WaypointCluster({ name: CLUSTER, namespace: NS, nodes: 2 });
const KEYS = join(cluster.shared, 'keys');
mkdirSync(KEYS);

const MANIFESTS: Record<string, string> = {
  'namespace.yaml': documents(
    meshNamespace(NS),
    `apiVersion: v1
kind: Namespace
metadata: { name: idp }
`,
  ),
  'apps.yaml': documents(
    app({ name: 'web', namespace: NS, command: echoCommand(cluster.fix, 'web'), node: 'node-2' }),
    clientPod({ namespace: NS, node: 'node-1' }),
    deployment({
      name: 'jwks',
      namespace: 'idp',
      command: `${PY} -m http.server 8080 --bind 0.0.0.0 --directory ${KEYS}`,
      node: 'node-2',
    }),
    `apiVersion: v1
kind: Service
metadata: { name: jwks, namespace: idp }
spec:
  selector: { app: jwks }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
`,
  ),
  'policies.yaml': `apiVersion: security.ambit.dev/v1alpha1
kind: RequestAuthentication
metadata: { name: idp, namespace: ${NS} }
spec:
  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }]
  jwtRules:
    - issuer: ${ISSUER}
      audiences: [web]
      jwksUri: http://jwks.idp/jwks.json
      outputClaimToHeaders: [{ header: x-jwt-group, claim: group }]
---
apiVersion: security.ambit.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: engineers, namespace: ${NS} }
spec:
  targetRefs: [{ kind: Service, name: web }]
  action: ALLOW
  rules:
    - from: [{ source: { requestPrincipals: ["${ISSUER}/*"] } }]
      when: [{ key: "request.auth.claims[group]", values: [eng] }]
`,
};

type Key = { kid: string; privateKey: PrivateKey; jwk: Record<string, unknown> };

async function newKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

function serveKeys(keys: readonly Key[]): void {
  writeFileSync(join(KEYS, 'jwks.json.tmp'), JSON.stringify({ keys: keys.map((k) => k.jwk) }));
  // A rename, so that the server never serves half a file.
  renameSync(join(KEYS, 'jwks.json.tmp'), join(KEYS, 'jwks.json'));
}

function sign(key: Key, claims: Record<string, unknown>, expiresIn = '1h'): Promise<string> {
  return new SignJWT({ sub: 'alice', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid })
    .setIssuer(ISSUER)
    .setAudience('web')
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(key.privateKey);
}

let keyA: Key;

async function request(
  path: string,
  token?: string,
): Promise<{ code: string; body: string; headers: string }> {
  const r = await cluster.exec('client', [
    'curl',
    '-sS',
    '--max-time',
    '10',
    '-i',
    '-w',
    '\n%{http_code}',
    ...(token === undefined ? [] : ['-H', `authorization: Bearer ${token}`]),
    `http://web${path}`,
  ]);
  const i = r.stdout.lastIndexOf('\n');
  const all = r.stdout.slice(0, i);
  const h = all.indexOf('\r\n\r\n');
  if (i === -1 || h === -1) throw new Error(`curl: ${r.stderr}`);
  return { code: r.stdout.slice(i + 1), body: all.slice(h + 4), headers: all.slice(0, h) };
}

const metrics = (): Promise<Sample[]> => cluster.waypointMetrics();

const logOf = (path: string): Promise<Record<string, unknown>> => cluster.accessLogOf(path);

describe('RequestAuthentication at a waypoint (local mode, curl, JWKS over HTTP)', () => {
  beforeAll(async () => {
    keyA = await newKey('key-a');
    serveKeys([keyA]);
    await cluster.up(MANIFESTS);
    const token = await sign(keyA, { group: 'eng' });
    await waitFor(
      'the waypoint to accept a valid token',
      async () => {
        const r = await request('/ready', token);
        if (r.code === '200') return true;
        // Said in the timeout's message: what the waypoint answered, and its last log lines.
        const log = cluster.waypointLog();
        throw new Error(`${r.code} ${r.body}\n${log.split('\n').slice(-8).join('\n')}`);
      },
      60_000,
    );
  }, 240_000);

  afterAll(() => cluster.down());

  test('the right claim is allowed, the wrong one 403, expired and badly signed 401, no token denied by the ALLOW policy', async () => {
    const m0 = await metrics();
    const good = await request('/good', await sign(keyA, { group: 'eng' }));
    expect(good.code).toBe('200');
    const seen = JSON.parse(good.body) as { headers: Record<string, string> };
    // The token is not forwarded (forwardOriginalToken: false); the claim is copied to a header.
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers['x-jwt-group']).toBe('eng');

    expect((await request('/wrong-claim', await sign(keyA, { group: 'sales' }))).code).toBe('403');

    const expired = await request('/expired', await sign(keyA, { group: 'eng' }, '-2h'));
    expect(expired.code).toBe('401');
    expect(expired.body).toBe('Jwt is expired');
    expect(expired.headers.toLowerCase()).toMatch(
      /www-authenticate: bearer realm="http:\/\/web\/expired", error="invalid_token"/,
    );

    const other = await newKey('key-a');
    const forged = await request('/forged', await sign(other, { group: 'eng' }));
    expect(forged).toMatchObject({ code: '401', body: 'Jwt verification fails' });

    const none = await request('/no-token');
    expect(none).toMatchObject({ code: '403', body: 'RBAC: access denied\n' });

    expect(await logOf('/good')).toMatchObject({ status: 200, request_principal: `${ISSUER}/alice` });
    expect(await logOf('/expired')).toMatchObject({
      status: 401,
      flags: '-',
      reason: expect.stringMatching(
        /^JWT in header authorization refused by RequestAuthentication jwt\/idp \(issuer https:\/\/idp.example\): Jwt is expired/,
      ),
    });
    expect(await logOf('/forged')).toMatchObject({
      status: 401,
      reason: expect.stringContaining('Jwt verification fails'),
    });
    expect(await logOf('/no-token')).toMatchObject({
      status: 403,
      flags: 'RBAC',
      authz_policy: 'jwt/engineers',
    });

    const explain = async (extra: readonly string[]): Promise<string> => {
      const r = await ambit(['explain', '--name', CLUSTER, '-n', NS, 'client', 'http://web/x', ...extra]);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    const withToken = await explain(['-H', `authorization: Bearer ${await sign(keyA, { group: 'eng' })}`]);
    expect(withToken).toMatch(
      /authentication: RequestAuthentication jwt\/idp: the token in header authorization is checked against issuer https:\/\/idp\.example .*principal https:\/\/idp\.example\/alice/,
    );
    expect(withToken).toMatch(/authorization: allowed by ALLOW policy jwt\/engineers \(rule 0\)/);
    const without = await explain([]);
    expect(without).toMatch(
      /authentication: RequestAuthentication jwt\/idp applies; no token: the request goes on unauthenticated/,
    );
    expect(without).toMatch(/: DENIED$/m);

    const m1 = await metrics();
    const delta = (result: string) =>
      sumSamples(m1, 'ambit_jwt_authn_total', { result }) -
      sumSamples(m0, 'ambit_jwt_authn_total', { result });
    expect({ allowed: delta('allowed'), denied: delta('denied'), missing: delta('missing') }).toEqual({
      allowed: 2,
      denied: 2,
      missing: 1,
    });
    expect(
      sumSamples(m1, 'ambit_jwt_authn_total', { destination_service: `web.${NS}.svc.cluster.local` }),
    ).toBeGreaterThan(0);
  });

  test('a rotated key (new kid, old one removed) is picked up without a restart; proxy-config shows the JWKS', async () => {
    const keyB = await newKey('key-b');
    serveKeys([keyB]);
    const tokenB = await sign(keyB, { group: 'eng' });
    // The unknown kid makes the waypoint fetch the JWKS again (at most every few seconds).
    await waitFor(
      'the new key to be accepted',
      async () => (await request('/rotated', tokenB)).code === '200',
      30_000,
    );
    const old = await request('/old-key', await sign(keyA, { group: 'eng' }));
    expect(old).toMatchObject({ code: '401', body: "Jwks doesn't have key to match kid or alg from Jwt" });

    const pc = await ambit(['proxy-config', 'authn', '--name', CLUSTER, '--waypoint', `${NS}/waypoint`]);
    expect(pc.code, pc.stderr).toBe(0);
    expect(pc.stdout).toMatch(
      /jwt\/idp\s+Gateway\/waypoint\s+https:\/\/idp\.example\s+web\s+http:\/\/jwks\.idp\/jwks\.json/,
    );
    expect(pc.stdout).toMatch(/http:\/\/jwks\.idp\/jwks\.json\s+key-b\s/);
    const fetched = await metrics();
    expect(sumSamples(fetched, 'ambit_jwks_fetch_total', { result: 'success' })).toBeGreaterThanOrEqual(2);
  });
});
