import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { LocalState } from '../../src/local/state.js';
import { ambit, CLI, copyManifests, curl, downCluster, podExec, runCmd, status, waitFor } from './helpers.js';

const CLUSTER = 'e2e-policy';
const WEB = 'web.shop:80';

type Outcome = 'allowed' | 'denied';

/** curl from a pod; `allowed` when the page came back, else `denied` (refused or reset). */
async function attempt(
  pod: string,
  ns: string,
  url = `http://${WEB}/`,
): Promise<{ outcome: Outcome; code: number }> {
  const r = await curl(CLUSTER, pod, url, [], ns);
  return { outcome: r.code === 0 && r.stdout.includes('web says hi') ? 'allowed' : 'denied', code: r.code };
}

async function explain(
  pod: string,
  ns: string,
  dest = WEB,
): Promise<{ verdict: string; endpoints: { reason: string }[] }> {
  const r = await ambit(['explain', '--name', CLUSTER, '-n', ns, pod, dest, '-o', 'json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { verdict: string; endpoints: { reason: string }[] };
}

/** Both the real outcome and `ambit explain` for one source. */
async function check(pod: string, ns: string, expected: Outcome): Promise<void> {
  const real = await attempt(pod, ns);
  expect(real.outcome, `${ns}/${pod}: curl exit ${real.code}`).toBe(expected);
  // A denied side sees its connection refused or reset: curl exits 7 (could not connect), 52 or 56.
  if (expected === 'denied') expect([7, 52, 56]).toContain(real.code);
  const e = await explain(pod, ns);
  expect(e.verdict === 'allowed' ? 'allowed' : 'denied').toBe(expected);
}

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** The node proxy's Prometheus metrics, parsed. */
async function metrics(node: string): Promise<Sample[]> {
  const r = await runCmd('ip', [
    'netns',
    'exec',
    `${CLUSTER}.${node}`,
    'curl',
    '-s',
    'http://127.0.0.1:15020/metrics',
  ]);
  const out: Sample[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^(\w+)\{(.*)\} ([0-9.e+-]+)$/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of m[2]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function sum(samples: readonly Sample[], name: string, match: Record<string, string>): number {
  return samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

function accessLines(node: string): Record<string, unknown>[] {
  return readFileSync(`/run/ambit/${CLUSTER}/nodes/${node}/node-proxy.log`, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"component":"access"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('L4 authorization, peer authentication and telemetry', () => {
  let dir: string;
  let state: LocalState;
  let webIp: string;

  /** Writes (or removes, with undefined) a policy file and waits until both proxies hold exactly `expect`. */
  async function policy(
    file: string,
    yaml: string | undefined,
    expectNames: readonly string[],
  ): Promise<void> {
    if (yaml === undefined) rmSync(join(dir, file), { force: true });
    else writeFileSync(join(dir, file), yaml);
    for (const node of ['node-1', 'node-2']) {
      await waitFor(
        `${node} to hold policies ${expectNames.join(', ') || '(none)'}`,
        async () => {
          const r = await ambit([
            'proxy-config',
            'policies',
            '--name',
            CLUSTER,
            '--node',
            node,
            '-o',
            'json',
          ]);
          if (r.code !== 0) return false;
          const p = JSON.parse(r.stdout) as { authz: { name: string }[]; peerAuth: { name: string }[] };
          const names = [...p.authz, ...p.peerAuth].map((x) => x.name).sort();
          return JSON.stringify(names) === JSON.stringify([...expectNames].sort());
        },
        30_000,
      );
    }
  }

  beforeAll(async () => {
    await ambit(['local', 'down', '--name', CLUSTER]);
    dir = copyManifests('test/fixtures/mesh-policy');
    const up = await ambit(['local', 'up', dir, '--name', CLUSTER]);
    expect(up.code, up.stderr).toBe(0);
    state = await status(CLUSTER);
    webIp = state.pods.find((p) => p.owner === 'Deployment/web')!.ip4;
  });

  afterAll(async () => {
    await downCluster(CLUSTER);
  });

  test('without policies every source gets through, meshed or not', async () => {
    for (const [pod, ns] of [
      ['client', 'shop'],
      ['intruder', 'shop'],
      ['visitor', 'other'],
      ['plain', 'outside'],
      ['plain-near', 'outside'],
    ] as const) {
      await check(pod, ns, 'allowed');
    }
  });

  test('a DENY by principal blocks exactly that identity', async () => {
    await policy(
      'deny-intruder.yaml',
      `apiVersion: security.ambit.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: deny-intruder, namespace: shop }
spec:
  selector: { matchLabels: { app: web } }
  action: DENY
  rules:
    - from:
        - source: { principals: ["cluster.local/ns/shop/sa/intruder"] }
`,
      ['deny-intruder'],
    );
    await check('intruder', 'shop', 'denied');
    await check('client', 'shop', 'allowed');
    await check('visitor', 'other', 'allowed');
    expect((await explain('intruder', 'shop')).endpoints[0]!.reason).toContain(
      'DENY policy shop/deny-intruder',
    );
    const denied = accessLines('node-2').filter(
      (l) =>
        l.response_flags === 'DENY' && l['src.identity'] === 'spiffe://cluster.local/ns/shop/sa/intruder',
    );
    expect(denied.length).toBeGreaterThan(0);
    await policy('deny-intruder.yaml', undefined, []);
  });

  test('an ALLOW for one namespace admits that namespace only', async () => {
    await policy(
      'allow-shop.yaml',
      `apiVersion: security.ambit.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: allow-shop, namespace: shop }
spec:
  action: ALLOW
  rules:
    - from:
        - source: { namespaces: ["shop"] }
`,
      ['allow-shop'],
    );
    await check('client', 'shop', 'allowed');
    await check('intruder', 'shop', 'allowed');
    await check('visitor', 'other', 'denied');
    // Plaintext has no identity, so no namespace: an ALLOW on namespaces does not admit it.
    await check('plain', 'outside', 'denied');
    await policy('allow-shop.yaml', undefined, []);
  });

  test('applying a DENY while a connection is open closes it', async () => {
    const script =
      'import socket\n' +
      's = socket.create_connection(("web.shop", 80)); print("connected", flush=True)\n' +
      'data = s.recv(100); print("closed" if data == b"" else "data", flush=True)\n';
    const held = spawn(process.execPath, [
      CLI,
      'local',
      'exec',
      '--name',
      CLUSTER,
      '-n',
      'shop',
      'client',
      '--',
      'python3',
      '-c',
      script,
    ]);
    let out = '';
    held.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    held.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitFor('the connection to be open', () => out.includes('connected'));
    await policy(
      'deny-client.yaml',
      `apiVersion: security.ambit.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: deny-client, namespace: shop }
spec:
  action: DENY
  rules:
    - from:
        - source: { principals: ["cluster.local/ns/shop/sa/client"] }
`,
      ['deny-client'],
    );
    await waitFor(
      'the open connection to be closed',
      () => out.includes('closed') || out.includes('Error'),
      30_000,
    );
    expect(out).toContain('closed');
    const closed = accessLines('node-2').filter((l) =>
      String(l.error ?? '').includes('now denied by DENY policy shop/deny-client'),
    );
    expect(closed).toHaveLength(1);
    await check('client', 'shop', 'denied');
    await policy('deny-client.yaml', undefined, []);
  });

  test('STRICT refuses plaintext from outside the mesh while the node health probe still passes; PERMISSIVE lets it in', async () => {
    const webPod = state.pods.find((p) => p.owner === 'Deployment/web')!;
    await policy(
      'strict.yaml',
      `apiVersion: security.ambit.dev/v1alpha1
kind: PeerAuthentication
metadata: { name: strict, namespace: shop }
spec:
  mtls: { mode: STRICT }
`,
      ['strict'],
    );
    await check('plain', 'outside', 'denied');
    await check('plain-near', 'outside', 'denied');
    await check('client', 'shop', 'allowed');
    const log = () => readFileSync(`/run/ambit/${CLUSTER}/pods/shop/${webPod.name}/http.log`, 'utf8');
    const probesBefore = (log().match(/"GET \/ HTTP\/1\.1" 200/g) ?? []).length;
    // The kubelet-style probe from the node keeps succeeding: more probe hits, and the pod stays ready.
    await waitFor(
      'more successful probes',
      () => (log().match(/"GET \/ HTTP\/1\.1" 200/g) ?? []).length >= probesBefore + 3,
      30_000,
    );
    const st = await status(CLUSTER);
    expect(st.pods.find((p) => p.name === webPod.name)!.ready).toBe(true);
    expect(st.services.find((s) => s.name === 'web')!.endpoints[0]!.ready).toBe(true);
    await policy(
      'strict.yaml',
      `apiVersion: security.ambit.dev/v1alpha1
kind: PeerAuthentication
metadata: { name: strict, namespace: shop }
spec:
  mtls: { mode: PERMISSIVE }
`,
      ['strict'],
    );
    await check('plain', 'outside', 'allowed');
    await check('plain-near', 'outside', 'allowed');
    await policy('strict.yaml', undefined, []);
  });

  test('after a scripted traffic mix, the metrics of both reporters equal what the clients did, one access line per connection', async () => {
    const before = { n1: await metrics('node-1'), n2: await metrics('node-2') };
    const linesBefore = { n1: accessLines('node-1').length, n2: accessLines('node-2').length };
    let up = 0;
    let down = 0;
    for (let i = 0; i < 3; i++) {
      const r = await podExec(
        CLUSTER,
        'client',
        [
          'curl',
          '-s',
          '-o',
          '/dev/null',
          '-w',
          '%{size_request} %{size_header} %{size_download}',
          `http://${WEB}/`,
        ],
        'shop',
      );
      const [req, hdr, body] = r.stdout.split(' ').map(Number);
      up += req!;
      down += hdr! + body!;
    }
    let plainUp = 0;
    let plainDown = 0;
    for (let i = 0; i < 2; i++) {
      const r = await podExec(
        CLUSTER,
        'plain',
        [
          'curl',
          '-s',
          '-o',
          '/dev/null',
          '-w',
          '%{size_request} %{size_header} %{size_download}',
          `http://${webIp}:8080/`,
        ],
        'outside',
      );
      const [req, hdr, body] = r.stdout.split(' ').map(Number);
      plainUp += req!;
      plainDown += hdr! + body!;
    }
    // A port nothing listens on: the destination cannot connect, the tunnel is refused with 503.
    const refused = await podExec(
      CLUSTER,
      'client',
      ['curl', '-s', '--max-time', '5', `http://${webIp}:9999/`],
      'shop',
    );
    expect(refused.code).not.toBe(0);
    await waitFor(
      'the access lines',
      () =>
        accessLines('node-2').length >= linesBefore.n2 + 6 &&
        accessLines('node-1').length >= linesBefore.n1 + 4,
    );
    const after = { n1: await metrics('node-1'), n2: await metrics('node-2') };
    const delta = (side: 'n1' | 'n2', name: string, match: Record<string, string>) =>
      sum(after[side], name, match) - sum(before[side], name, match);

    const viaSvc = {
      source_workload: 'client',
      source_workload_namespace: 'shop',
      source_principal: 'spiffe://cluster.local/ns/shop/sa/client',
      destination_workload: 'web',
      destination_workload_namespace: 'shop',
      destination_principal: 'spiffe://cluster.local/ns/shop/sa/web',
      destination_service: 'web.shop.svc.cluster.local',
      destination_service_name: 'web',
      request_protocol: 'tcp',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
    };
    for (const [side, reporter] of [
      ['n1', 'source'],
      ['n2', 'destination'],
    ] as const) {
      const m = { ...viaSvc, reporter };
      expect(delta(side, 'istio_tcp_connections_opened_total', m), `${reporter} opened`).toBe(3);
      expect(delta(side, 'istio_tcp_connections_closed_total', m), `${reporter} closed`).toBe(3);
      expect(delta(side, 'istio_tcp_received_bytes_total', m), `${reporter} received`).toBe(up);
      expect(delta(side, 'istio_tcp_sent_bytes_total', m), `${reporter} sent`).toBe(down);
    }
    const plain = {
      reporter: 'destination',
      source_workload: 'plain',
      source_principal: 'unknown',
      destination_workload: 'web',
      connection_security_policy: 'none',
    };
    expect(delta('n2', 'istio_tcp_connections_opened_total', plain)).toBe(2);
    expect(delta('n2', 'istio_tcp_connections_closed_total', plain)).toBe(2);
    expect(delta('n2', 'istio_tcp_received_bytes_total', plain)).toBe(plainUp);
    expect(delta('n2', 'istio_tcp_sent_bytes_total', plain)).toBe(plainDown);
    expect(
      delta('n1', 'istio_tcp_connections_failed_total', {
        reporter: 'source',
        source_workload: 'client',
        response_flags: 'UF',
      }),
    ).toBe(1);
    expect(
      delta('n2', 'istio_tcp_connections_failed_total', {
        reporter: 'destination',
        source_workload: 'client',
        response_flags: 'UF',
      }),
    ).toBe(1);

    const n1 = accessLines('node-1').slice(linesBefore.n1);
    const n2 = accessLines('node-2').slice(linesBefore.n2);
    expect(n1.filter((l) => l.direction === 'outbound' && l['src.workload'] === 'client')).toHaveLength(4);
    expect(n2.filter((l) => l.direction === 'inbound' && l['src.workload'] === 'client')).toHaveLength(4);
    expect(n2.filter((l) => l.direction === 'inbound' && l['src.workload'] === 'plain')).toHaveLength(2);
    // Every line carries the fields ztunnel's access log has.
    for (const l of [...n1, ...n2]) {
      for (const k of ['src.addr', 'dst.addr', 'direction', 'bytes_sent', 'bytes_recv', 'duration'])
        expect(l, k).toHaveProperty(k);
    }
  });

  test('invalid policies are rejected with file, path and reason while valid ones keep applying; an invalid DENY fails closed until fixed', async () => {
    writeFileSync(
      join(dir, 'bad.yaml'),
      `apiVersion: security.ambit.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: bad, namespace: shop }
spec:
  action: DENY
  rules:
    - from:
        - source: { ipBlocks: ["10.0.0.0/33"] }
`,
    );
    await policy(
      'deny-intruder.yaml',
      `apiVersion: security.ambit.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: deny-intruder, namespace: shop }
spec:
  action: DENY
  rules:
    - from:
        - source: { principals: ["cluster.local/ns/shop/sa/intruder"] }
`,
      // The invalid DENY is held as its fail-closed stand-in.
      ['bad', 'deny-intruder'],
    );
    const st = await waitFor('the rejection in status', async () => {
      const s = await status(CLUSTER);
      return s.issues.some((i) => i.file === 'bad.yaml') ? s : undefined;
    });
    const issue = st.issues.find((i) => i.file === 'bad.yaml')!;
    expect(`${issue.file}:${issue.line} ${issue.path}`).toBe(
      'bad.yaml:8 spec.rules[0].from[0].source.ipBlocks[0]',
    );
    expect(issue.message).toBe(
      '"10.0.0.0/33" is not an IP address or CIDR (203.0.113.4, 10.0.0.0/8, fd00::/64)',
    );
    // It may have been meant to deny anyone, and it selects the whole namespace: until it is fixed it
    // denies everything there, and says so.
    await check('intruder', 'shop', 'denied');
    await check('client', 'shop', 'denied');
    expect((await explain('client', 'shop')).endpoints[0]!.reason).toContain(
      'AuthorizationPolicy shop/bad failed validation and may be a DENY',
    );
    const table = await ambit(['proxy-config', 'policies', '--name', CLUSTER, '--node', 'node-2']);
    expect(table.stdout).toMatch(/AuthorizationPolicy\s+shop\s+bad\s+DENY \(fail-closed\)\s+\(namespace\)/);
    expect(table.stdout).toContain('"10.0.0.0/33" is not an IP address or CIDR');
    expect(table.stdout).toContain(
      'fails closed: it is (or may be) a DENY, so node proxies deny every connection to every workload in namespace shop until shop/bad is fixed',
    );
    // Fixed live: it denies only what it names, and the client is let in again.
    writeFileSync(
      join(dir, 'bad.yaml'),
      readFileSync(join(dir, 'bad.yaml'), 'utf8').replace('10.0.0.0/33', '192.0.2.1/32'),
    );
    for (const node of ['node-1', 'node-2'])
      await waitFor(`${node} to hold the fixed policy`, async () => {
        const r = await ambit(['proxy-config', 'policies', '--name', CLUSTER, '--node', node, '-o', 'json']);
        const p = JSON.parse(r.stdout) as { authz: { name: string; failClosed?: string }[] };
        return p.authz.some((x) => x.name === 'bad' && x.failClosed === undefined);
      });
    await check('intruder', 'shop', 'denied');
    await check('client', 'shop', 'allowed');
  });
});
