import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { LocalState } from '../../src/local/state.js';
import { ambit, downCluster, podExec, ROOT, runCmd, status, waitFor } from './helpers.js';

/*
 * A waypoint that cannot be bypassed (ambit.dev/waypoint-required), and an invalid DENY policy that
 * fails closed, in a local cluster with curl as the client and Python servers as backends.
 */

const CLUSTER = 'e2e-wpreq';
const NS = 'req';
const SHARED = mkdtempSync('/var/tmp/ambit-e2e-wpreq-');
const FIX = join(SHARED, 'fixtures');
cpSync(join(ROOT, 'test/e2e/fixtures'), FIX, { recursive: true });
const PY = '/usr/bin/python3';

function echo(ns: string, name: string, node: string): string {
  return `apiVersion: v1
kind: ServiceAccount
metadata: { name: ${name}, namespace: ${ns} }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, namespace: ${ns} }
spec:
  replicas: 1
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec:
      serviceAccountName: ${name}
      nodeName: ${node}
      containers:
        - name: app
          command: ["/bin/sh", "-c", "exec ${PY} -u ${FIX}/echo-server.py --name ${name} --port 8080"]
          readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 }
---
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${ns} }
spec:
  selector: { app: ${name} }
  ports: [{ name: http, port: 80, targetPort: 8080, appProtocol: http }]
`;
}

const MANIFESTS: Record<string, string> = {
  'namespaces.yaml': `apiVersion: v1
kind: Namespace
metadata:
  name: ${NS}
  labels:
    ambit.dev/dataplane-mode: ambient
    ambit.dev/use-waypoint: waypoint
    ambit.dev/waypoint-required: "true"
---
apiVersion: v1
kind: Namespace
metadata:
  name: plain
  labels: { ambit.dev/dataplane-mode: ambient }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: ${NS} }
spec:
  gatewayClassName: ambit-waypoint
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
`,
  'apps.yaml': [
    echo(NS, 'web', 'node-2'),
    echo('plain', 'db', 'node-2'),
    `apiVersion: v1
kind: ServiceAccount
metadata: { name: client, namespace: plain }
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: plain, labels: { app: client } }
spec:
  serviceAccountName: client
  nodeName: node-1
  terminationGracePeriodSeconds: 1
  containers: [{ name: c, command: ["sleep", "infinity"] }]
`,
  ].join('---\n'),
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

let manifests = '';
let state: LocalState;

async function curl(url: string): Promise<{ code: number; body: string }> {
  const r = await podExec(CLUSTER, 'client', ['curl', '-sS', '--max-time', '10', url], 'plain');
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
    manifests = mkdtempSync('/var/tmp/ambit-e2e-wpreq-manifests-');
    for (const [f, text] of Object.entries(MANIFESTS)) writeFileSync(join(manifests, f), text);
    await downCluster(CLUSTER).catch(() => undefined);
    const up = await ambit(['local', 'up', manifests, '--nodes', '2', '--name', CLUSTER, '--wait', '150s'], {
      timeoutMs: 170_000,
    });
    expect(up.code, `${up.stdout}\n${up.stderr}`).toBe(0);
    state = await status(CLUSTER);
    await waitFor(
      'the waypoint to serve web',
      async () => (await curl('http://web.req/')).body.includes('web'),
      60_000,
    );
  });

  afterAll(async () => {
    await downCluster(CLUSTER);
    rmSync(manifests, { recursive: true, force: true });
    rmSync(SHARED, { recursive: true, force: true });
  });

  test('the Service answers through the waypoint; the pod IP dialled directly is refused, naming the waypoint; probes keep the pod Ready', async () => {
    const via = await curl('http://web.req/');
    expect(via.code).toBe(0);
    expect(via.body).toMatch(/"name": ?"web"/);
    const webIp = state.pods.find((p) => p.namespace === NS && p.name.startsWith('web-'))!.ip4;
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
    writeFileSync(join(manifests, 'deny-db.yaml'), denyPolicy('cluster.local/ns/*/sa/*'));
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
    writeFileSync(join(manifests, 'deny-db.yaml'), denyPolicy('cluster.local/ns/plain/sa/intruder'));
    await waitFor('node-2 to hold the fixed policy', async () => {
      const p = await proxyPolicies('node-2');
      return p.authz.some((x) => x.name === 'deny-db' && x.failClosed === undefined);
    });
    await waitFor('db to answer again', async () => (await curl('http://db.plain/')).code === 0);
  });
});
