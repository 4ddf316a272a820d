import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ambit, runCmd, status, waitFor } from './helpers.js';
import {
  app,
  clientPod,
  documents,
  echoCommand,
  meshNamespace,
  serviceAccount,
  WaypointCluster,
} from './waypoint-helpers.js';

/*
 * A waypoint that cannot be bypassed (ambit.dev/waypoint-required), and an invalid DENY policy that
 * fails closed, in a local cluster with curl as the client and Python servers as backends.
 */

const CLUSTER = 'e2e-wpreq';
const NS = 'req';
const cluster = new WaypointCluster({ name: CLUSTER, namespace: NS, nodes: 2 });

/** An echo server of its own ServiceAccount, and its Service. */
const echo = (ns: string, name: string, node: string): string =>
  documents(
    serviceAccount(name, ns),
    app({
      name,
      namespace: ns,
      command: echoCommand(cluster.fix, name),
      serviceAccount: name,
      node,
    }),
  );

const MANIFESTS: Record<string, string> = {
  'namespaces.yaml': documents(
    meshNamespace(NS, { labels: { 'ambit.dev/waypoint-required': 'true' } }),
    `apiVersion: v1
kind: Namespace
metadata:
  name: plain
  labels: { ambit.dev/dataplane-mode: ambient }
`,
  ),
  'apps.yaml': documents(
    echo(NS, 'web', 'node-2'),
    echo('plain', 'db', 'node-2'),
    clientPod({ namespace: 'plain', node: 'node-1' }),
  ),
};

/** An AuthorizationPolicy on db: `principals` decides whether it is valid. */
const denyPolicy = (principal: string): string => `apiVersion: security.ambit.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: deny-db, namespace: plain }
spec:
  selector: { matchLabels: { app: db } }
  action: DENY
  rules:
    - from:
        - source: { principals: [${JSON.stringify(principal)}] }
`;

async function curl(url: string): Promise<{ code: number; body: string }> {
  const r = await cluster.exec('client', ['curl', '-sS', '--max-time', '10', url], 'plain');
  return { code: r.code, body: r.stdout };
}

async function explain(
  dest: string,
): Promise<{ verdict: string; endpoints: { reason: string; steps: { step: string; detail: string }[] }[] }> {
  const r = await ambit(['explain', '--name', CLUSTER, '-n', 'plain', 'client', dest, '-o', 'json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

function accessLines(node: string): Record<string, unknown>[] {
  return readFileSync(`/run/ambit/${CLUSTER}/nodes/${node}/node-proxy.log`, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"component":"access"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** istio_tcp_connections_failed_total on a node proxy, summed over the series that match. */
async function failed(node: string, match: Record<string, string>): Promise<number> {
  const r = await runCmd('ip', [
    'netns',
    'exec',
    `${CLUSTER}.${node}`,
    'curl',
    '-s',
    'http://127.0.0.1:15020/metrics',
  ]);
  let n = 0;
  for (const line of r.stdout.split('\n')) {
    const m = /^istio_tcp_connections_failed_total\{(.*)\} ([0-9.e+-]+)$/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of m[1]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    if (Object.entries(match).every(([k, v]) => labels[k] === v)) n += Number(m[2]);
  }
  return n;
}

async function proxyPolicies(node: string): Promise<{
  authz: { name: string; action: string; failClosed?: string }[];
  rejected: { name: string; message: string }[];
}> {
  const r = await ambit(['proxy-config', 'policies', '--name', CLUSTER, '--node', node, '-o', 'json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe('required waypoints and fail-closed DENY policies (local mode, real clients)', () => {
  beforeAll(async () => {
    await cluster.up(MANIFESTS);
    await waitFor(
      'the waypoint to serve web',
      async () => (await curl('http://web.req/')).body.includes('web'),
      60_000,
    );
  });

  afterAll(() => cluster.down());

  test('the Service answers through the waypoint; the pod IP dialled directly is refused, naming the waypoint; probes keep the pod Ready', async () => {
    const via = await curl('http://web.req/');
    expect(via.code).toBe(0);
    expect(via.body).toMatch(/"name": ?"web"/);
    const webIp = cluster.state.pods.find((p) => p.namespace === NS && p.name.startsWith('web-'))!.ip4;
    const before = accessLines('node-2').length;
    const denied = { reporter: 'destination', destination_workload: 'web', response_flags: 'DENY' };
    const failedBefore = await failed('node-2', denied);
    const direct = await curl(`http://${webIp}:8080/`);
    expect([7, 52, 56]).toContain(direct.code);
    expect(direct.body).toBe('');
    // The destination's node proxy refused it, and its access log says why.
    const refused = await waitFor('the refusal in node-2 access log', async () =>
      accessLines('node-2')
        .slice(before)
        .find((l) => l.direction === 'inbound' && String(l.error ?? '').includes('waypoint req/waypoint')),
    );
    expect(refused.response_flags).toBe('DENY');
    expect(String(refused.error)).toContain('ambit.dev/waypoint-required');
    // And its metrics count it as denied.
    expect(await failed('node-2', denied)).toBe(failedBefore + 1);
    // explain agrees, in its own step.
    const e = await explain(`${webIp}:8080`);
    expect(e.verdict).toBe('denied');
    expect(e.endpoints[0]!.reason).toContain('waypoint req/waypoint');
    expect(e.endpoints[0]!.steps.map((s) => s.step)).toContain('waypoint-required');
    // The kubelet's probes still reach the pod: it is Ready now, after the refusals.
    const st = await status(CLUSTER);
    expect(st.pods.find((p) => p.namespace === NS && p.name.startsWith('web-'))!.ready).toBe(true);
  });

  test('an invalid DENY denies everything it selects, says so in proxy-config policies, and fixing it restores the intended behaviour live', async () => {
    expect((await curl('http://db.plain/')).code).toBe(0);
    writeFileSync(join(cluster.manifests, 'deny-db.yaml'), denyPolicy('cluster.local/ns/*/sa/*'));
    const held = await waitFor('node-2 to hold the fail-closed stand-in', async () => {
      const p = await proxyPolicies('node-2');
      return p.authz.some((x) => x.name === 'deny-db' && x.failClosed !== undefined) ? p : undefined;
    });
    const note = held.rejected.find((r) => r.name === 'deny-db' && r.message.startsWith('fails closed'));
    expect(note?.message).toContain('app=db');
    const table = await ambit(['proxy-config', 'policies', '--name', CLUSTER, '--node', 'node-2']);
    expect(table.stdout).toContain('DENY (fail-closed)');
    // It denies what it could have denied: the client, which no rule of it names.
    expect([7, 52, 56]).toContain((await curl('http://db.plain/')).code);
    expect((await explain('db.plain:80')).endpoints[0]!.reason).toContain(
      'failed validation and may be a DENY',
    );
    // Other workloads are untouched.
    expect((await curl('http://web.req/')).code).toBe(0);
    // Fixed: it denies only what it names, so the client gets through again.
    writeFileSync(join(cluster.manifests, 'deny-db.yaml'), denyPolicy('cluster.local/ns/plain/sa/intruder'));
    await waitFor('node-2 to hold the fixed policy', async () => {
      const p = await proxyPolicies('node-2');
      return p.authz.some((x) => x.name === 'deny-db' && x.failClosed === undefined);
    });
    await waitFor('db to answer again', async () => (await curl('http://db.plain/')).code === 0);
  });
});
