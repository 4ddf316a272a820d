import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ambit, waitFor } from './helpers.js';
import {
  app,
  clientPod,
  documents,
  echoCommand,
  meshNamespace,
  type Sample,
  serviceAccount,
  WaypointCluster,
} from './waypoint-helpers.js';

/*
 * L7 AuthorizationPolicy at a waypoint, in a local cluster, with curl as the client: policies with
 * targetRefs (a Service, the waypoint's Gateway) decide per request on method, path and headers; a
 * denial is 403 "RBAC: access denied", flagged RBAC in istio_requests_total and in the access log with
 * the policy's name, and `ambit explain` says the same. Every request: client pod -> node proxy ->
 * HBONE -> waypoint pod -> HBONE -> node proxy -> backend pod.
 */

const CLUSTER = 'e2e-authz';
const NS = 'authz';
const cluster = new WaypointCluster({ name: CLUSTER, namespace: NS, nodes: 2 });

const echo = (name: string): string =>
  app({
    name,
    namespace: NS,
    command: echoCommand(cluster.fix, name),
    serviceAccount: 'backend',
    node: 'node-2',
  });

const DENY_MALLORY = `apiVersion: security.ambit.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: deny-mallory, namespace: ${NS} }
spec:
  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }]
  action: DENY
  rules:
    - when: [{ key: "request.headers[x-user]", values: [mallory] }]
`;

const MANIFESTS: Record<string, string> = {
  'namespace.yaml': meshNamespace(NS),
  'apps.yaml': documents(
    serviceAccount('backend', NS),
    echo('web'),
    echo('open'),
    clientPod({ namespace: NS, node: 'node-1' }),
  ),
  'policies.yaml': `apiVersion: security.ambit.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: api-read-only, namespace: ${NS} }
spec:
  targetRefs: [{ kind: Service, group: "", name: web }]
  action: ALLOW
  rules:
    - to: [{ operation: { methods: [GET, HEAD], paths: ["/api/*"] } }]
    - to: [{ operation: { paths: ["*.js"] } }]
---
apiVersion: security.ambit.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: audit-writes, namespace: ${NS} }
spec:
  targetRefs: [{ kind: Service, name: web }]
  action: AUDIT
  rules:
    - to: [{ operation: { notMethods: [GET, HEAD] } }]
---
${DENY_MALLORY}`,
};

/** curl in the client pod: the status code, then the body. */
async function request(url: string, extra: readonly string[] = []): Promise<{ code: string; body: string }> {
  const r = await cluster.exec('client', [
    'curl',
    '-sS',
    '--max-time',
    '10',
    '-w',
    '\n%{http_code}',
    ...extra,
    url,
  ]);
  const i = r.stdout.lastIndexOf('\n');
  return { code: r.stdout.slice(i + 1), body: r.stdout.slice(0, i) };
}

const waypointMetrics = (): Promise<Sample[]> => cluster.waypointMetrics();

const requests = (s: readonly Sample[], match: Record<string, string>): number =>
  s
    .filter(
      (x) =>
        x.name === 'istio_requests_total' &&
        x.labels.reporter === 'waypoint' &&
        Object.entries(match).every(([k, v]) => x.labels[k] === v),
    )
    .reduce((n, x) => n + x.value, 0);

const logOf = (path: string): Promise<Record<string, unknown>> => cluster.accessLogOf(path);

async function explain(url: string, extra: readonly string[] = []): Promise<string> {
  const r = await ambit(['explain', '--name', CLUSTER, '-n', NS, 'client', url, ...extra]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

describe('L7 AuthorizationPolicy at a waypoint (local mode, curl)', () => {
  beforeAll(async () => {
    await cluster.up(MANIFESTS);
    // The waypoint serves web with its policies before the first case.
    await waitFor(
      'the waypoint to enforce the policies',
      async () => (await request('http://web/ready/x', ['-X', 'POST'])).code === '403',
      60_000,
    );
  }, 240_000);

  afterAll(() => cluster.down());

  test('GET on the path is allowed, POST on it is 403 RBAC: access denied; metrics, access log and explain agree', async () => {
    const m0 = await waypointMetrics();
    const get = await request('http://web/api/items');
    expect(get.code).toBe('200');
    expect(JSON.parse(get.body)).toMatchObject({ name: 'web', method: 'GET', path: '/api/items' });
    const js = await request('http://web/static/app.js');
    expect(js.code).toBe('200');
    const post = await request('http://web/api/items-post', ['-X', 'POST', '-d', 'x=1']);
    expect(post).toEqual({ code: '403', body: 'RBAC: access denied\n' });
    const other = await request('http://web/admin');
    expect(other.code).toBe('403');

    const m1 = await waypointMetrics();
    const delta = (match: Record<string, string>) =>
      requests(m1, { destination_service_name: 'web', ...match }) -
      requests(m0, { destination_service_name: 'web', ...match });
    expect(delta({ response_code: '403', response_flags: 'RBAC' })).toBe(2);
    expect(delta({ response_code: '200', response_flags: '-' })).toBe(2);

    expect(await logOf('/api/items-post')).toMatchObject({
      method: 'POST',
      status: 403,
      flags: 'RBAC',
      authz_policy: 'authz/api-read-only',
      reason: 'denied: ALLOW policy authz/api-read-only applies and none of its rules matches',
      audited_by: ['authz/audit-writes'],
    });
    expect(await logOf('/api/items')).toMatchObject({
      status: 200,
      flags: '-',
      authz_policy: 'authz/api-read-only',
    });
    expect((await logOf('/api/items')).audited_by).toBeUndefined();

    const allowed = await explain('http://web/api/items');
    expect(allowed).toMatch(/: ALLOWED$/m);
    expect(allowed).toMatch(/authorization: allowed by ALLOW policy authz\/api-read-only \(rule 0\)/);
    const denied = await explain('http://web/api/items', ['-X', 'POST']);
    expect(denied).toMatch(/: DENIED$/m);
    expect(denied).toMatch(
      /authorization: denied: ALLOW policy authz\/api-read-only applies and none of its rules matches; audited by authz\/audit-writes/,
    );
    expect(denied).toMatch(/answered by the waypoint: 403 \(.*\(RBAC\)\)/);
  });

  test('a DENY on a header (targeting the waypoint Gateway) refuses that user on every Service; removing it live lets them through', async () => {
    const m0 = await waypointMetrics();
    const mallory = await request('http://web/api/mallory', ['-H', 'x-user: mallory']);
    expect(mallory).toEqual({ code: '403', body: 'RBAC: access denied\n' });
    const alice = await request('http://web/api/alice', ['-H', 'x-user: alice']);
    expect(alice.code).toBe('200');
    // open has no ALLOW policy: everything goes, but the Gateway's DENY still applies to it.
    expect((await request('http://open/anything', ['-X', 'DELETE'])).code).toBe('200');
    expect((await request('http://open/mallory', ['-H', 'x-user: mallory'])).code).toBe('403');
    const m1 = await waypointMetrics();
    for (const svc of ['web', 'open'])
      expect(
        requests(m1, { destination_service_name: svc, response_code: '403', response_flags: 'RBAC' }) -
          requests(m0, { destination_service_name: svc, response_code: '403', response_flags: 'RBAC' }),
        svc,
      ).toBe(1);
    expect(await logOf('/api/mallory')).toMatchObject({
      status: 403,
      flags: 'RBAC',
      authz_policy: 'authz/deny-mallory',
      reason: 'denied by DENY policy authz/deny-mallory (rule 0)',
    });
    expect(await explain('http://open/mallory', ['-H', 'x-user: mallory'])).toMatch(
      /authorization: denied by DENY policy authz\/deny-mallory \(rule 0\)/,
    );
    expect(await explain('http://open/anything', ['-X', 'DELETE'])).toMatch(
      /authorization: allowed: no DENY policy matches \(authz\/deny-mallory\) and no ALLOW policy applies/,
    );

    // The node proxy lists the waypoint policies with their targets.
    const pc = await ambit(['proxy-config', 'policies', '--name', CLUSTER, '--node', 'node-1']);
    expect(pc.code, pc.stderr).toBe(0);
    expect(pc.stdout).toMatch(
      /AuthorizationPolicy\s+authz\s+deny-mallory\s+DENY\s+\(waypoint\) Gateway\/waypoint\s+1/,
    );

    const del = await cluster.kubectl('delete', 'authorizationpolicies', '-n', NS, 'deny-mallory');
    expect(del.code, del.stderr).toBe(0);
    await waitFor(
      'mallory to be let through once the DENY is deleted',
      async () => (await request('http://open/mallory-after', ['-H', 'x-user: mallory'])).code === '200',
      30_000,
    );
    expect(await explain('http://open/mallory', ['-H', 'x-user: mallory'])).toMatch(
      /authorization: allowed: no waypoint policy applies/,
    );
    await cluster.apply('deny-mallory', DENY_MALLORY);
    await waitFor(
      'mallory to be refused again once the DENY is back',
      async () => (await request('http://open/mallory-again', ['-H', 'x-user: mallory'])).code === '403',
      30_000,
    );
  });
  test('an invalid waypoint DENY fails closed: the waypoint denies every request to its Service, the rejection says so, and fixing it live restores the intended behaviour', async () => {
    const bad = (paths: string) => `apiVersion: security.ambit.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: ${NS} }
spec:
  targetRefs: [{ kind: Service, name: open }]
  action: DENY
  rules:
    - to: [{ operation: { paths: [${JSON.stringify(paths)}] } }]
`;
    // A wildcard in the middle of a path is not an Istio path pattern: the policy is rejected. (The
    // local API refuses it as a validating webhook would; it reaches the mesh the way it would in a
    // cluster without one: written as it is, here into the manifest folder.)
    expect((await request('http://open/before')).code).toBe('200');
    writeFileSync(join(cluster.manifests, 'deny-admin.yaml'), bad('/admin*/x*'));
    await waitFor(
      'the waypoint to deny everything to open',
      async () => (await request('http://open/closed-probe')).code === '403',
      30_000,
    );
    const denied = await request('http://open/public/page');
    expect(denied).toEqual({ code: '403', body: 'RBAC: access denied\n' });
    // web is not its target: it keeps its own policies.
    expect((await request('http://web/api/still-fine')).code).toBe('200');
    const line = await logOf('/public/page');
    expect(line).toMatchObject({ status: 403, flags: 'RBAC', authz_policy: 'authz/deny-admin' });
    expect(String(line.reason)).toMatch(
      /^denied: AuthorizationPolicy authz\/deny-admin failed validation and may be a DENY, so the waypoint denies every request to what it targets until it is fixed \(spec\.rules\[0\]\.to\[0\]\.operation\.paths\[0\]: /,
    );
    const pc = await ambit(['proxy-config', 'policies', '--name', CLUSTER, '--node', 'node-1']);
    expect(pc.code, pc.stderr).toBe(0);
    expect(pc.stdout).toMatch(/AuthorizationPolicy\s+authz\s+deny-admin\s+DENY \(fail-closed\)/);
    expect(pc.stdout).toContain(
      'fails closed: it is (or may be) a DENY, so waypoints deny every request to Service authz/open until authz/deny-admin is fixed',
    );
    expect(await explain('http://open/public/page')).toMatch(
      /authorization: denied: AuthorizationPolicy authz\/deny-admin failed validation/,
    );

    // Fixed live: it denies only the paths it names.
    writeFileSync(join(cluster.manifests, 'deny-admin.yaml'), bad('/admin/*'));
    await waitFor(
      'open to be served again once the policy is fixed',
      async () => (await request('http://open/public/again')).code === '200',
      30_000,
    );
    expect((await request('http://open/admin/users')).code).toBe('403');
    expect((await logOf('/admin/users')).reason).toBe('denied by DENY policy authz/deny-admin (rule 0)');
    rmSync(join(cluster.manifests, 'deny-admin.yaml'));
  });
});
