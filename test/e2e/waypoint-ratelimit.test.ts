import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ambit, waitFor } from './helpers.js';
import {
  app,
  clientPod,
  documents,
  echoCommand,
  fixtureCommand,
  heyCodes,
  meshNamespace,
  PY,
  type Sample,
  serviceAccount,
  sumSamples,
  WaypointCluster,
} from './waypoint-helpers.js';

/*
 * BackendTrafficPolicy rateLimit at a waypoint, in a local cluster: two client pods with their own
 * ServiceAccounts (so their own SPIFFE identities) load one Service with hey at the same time, each
 * held to its own bucket; what curl and a gRPC client see when limited; the policy changed and removed
 * with kubectl while traffic flows.
 */

const CLUSTER = 'e2e-rl';
const NS = 'rl';
const cluster = new WaypointCluster({ name: CLUSTER, namespace: NS, nodes: 2 });
const FIX = cluster.fix;

const echo = (name: string): string =>
  app({ name, namespace: NS, command: echoCommand(FIX, name), serviceAccount: 'backend' }, { portName: 'p' });

const MANIFESTS = documents(
  meshNamespace(NS),
  serviceAccount('backend', NS),
  echo('limited'),
  echo('free'),
  app(
    {
      name: 'grpc',
      namespace: NS,
      command: fixtureCommand(FIX, 'grpc-server.py', '--name grpc --port 9090'),
      serviceAccount: 'backend',
      port: 9090,
    },
    { portName: 'p', port: 9090, appProtocol: 'grpc' },
  ),
  clientPod({ namespace: NS, node: 'node-1', name: 'alice' }),
  clientPod({ namespace: NS, node: 'node-2', name: 'bob' }),
);

/** `requests` per second for each client identity, on the limited and grpc Services. */
const policy = (requests: number): string => `apiVersion: traffic.ambit.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: { name: per-client, namespace: ${NS} }
spec:
  targetRefs:
    - { group: "", kind: Service, name: limited }
    - { group: "", kind: Service, name: grpc }
  rateLimit:
    type: Local
    local:
      rules:
        - clientSelectors: [{ sourceIdentity: { type: Distinct } }]
          limit: { requests: ${requests}, unit: Second }
`;

const LIMITED = 'limited.rl.svc.cluster.local';
const GRPC = 'grpc.rl.svc.cluster.local';
const POLICY = `${NS}/per-client`;
const ALICE = 'spiffe://cluster.local/ns/rl/sa/alice';
const BOB = 'spiffe://cluster.local/ns/rl/sa/bob';

const inPod = (pod: string, cmd: readonly string[]) => cluster.exec(pod, cmd);

const waypointMetrics = (): Promise<Sample[]> => cluster.waypointMetrics();

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string>;
}

/** `n` requests back to back on one curl connection (fast enough to empty a 10-token bucket), with their heads. */
async function burst(pod: string, url: string, n = 30, curlArgs: readonly string[] = []): Promise<Reply[]> {
  const r = await inPod(pod, [
    'curl',
    '-s',
    '-i',
    '--max-time',
    '20',
    ...curlArgs,
    ...Array<string>(n).fill(url),
  ]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout
    .split(/^(?=HTTP\/[\d.]+ \d{3})/m)
    .filter((b) => b.startsWith('HTTP/'))
    .map((b) => {
      const lines = b.split(/\r?\n/);
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        if (l === '') break;
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      return { status: Number(lines[0]!.split(' ')[1]), headers };
    });
}

describe('BackendTrafficPolicy rateLimit at a waypoint (local mode, real clients)', () => {
  beforeAll(async () => {
    await cluster.up({ 'all.yaml': MANIFESTS });
    await waitFor(
      'the waypoint to serve both Services to both clients',
      async () => {
        for (const pod of ['alice', 'bob'])
          for (const url of ['http://limited/x', 'http://free/x']) {
            const [r] = await burst(pod, url, 1);
            if (r?.status !== 200) return false;
          }
        return true;
      },
      60_000,
    );
  }, 240_000);

  afterAll(() => cluster.down());

  test('10 req/s per client identity: two clients under hey at once are each held to their own bucket; the excess gets 429 RL with x-ratelimit-* headers; a Service without a policy is untouched', async () => {
    await cluster.apply('policy', policy(10));
    await waitFor(
      'the rate limit to be in force',
      async () => (await burst('alice', 'http://limited/x')).some((r) => r.status === 429),
      30_000,
    );

    const before = await waypointMetrics();
    const SECONDS = 4;
    const load = (pod: string) => inPod(pod, ['hey', '-z', `${SECONDS}s`, '-c', '4', 'http://limited/x']);
    const [a, b] = await Promise.all([load('alice'), load('bob')]);
    const codes = [heyCodes(a.stdout), heyCodes(b.stdout)];
    for (const [i, c] of codes.entries()) {
      const out = [a, b][i]!.stdout;
      expect(Object.keys(c).sort(), out).toEqual(['200', '429']);
      // The bucket holds 10 (the burst) and refills 10 a second; hey's window is SECONDS plus its
      // start and end, so one second of slack above. Below: a client sending faster than its limit
      // gets most of it (per identity, not shared: a shared bucket would give each about half).
      expect(c['200'], out).toBeLessThanOrEqual(10 + 10 * (SECONDS + 1));
      expect(c['200'], out).toBeGreaterThanOrEqual(0.6 * 10 * SECONDS);
    }
    // Two buckets: together they let through more than one bucket ever could in the window.
    expect(codes[0]!['200']! + codes[1]!['200']!, JSON.stringify(codes)).toBeGreaterThan(
      10 + 10 * (SECONDS + 1),
    );
    const limitedA = codes[0]!['429']!;
    const limitedB = codes[1]!['429']!;

    await waitFor(
      'the metrics to count every limited request, by client',
      async () => {
        const after = await waypointMetrics();
        const d = (name: string, match: Record<string, string>) =>
          sumSamples(after, name, match) - sumSamples(before, name, match);
        const rl = (principal: string) =>
          d('istio_requests_total', {
            destination_service: LIMITED,
            source_principal: principal,
            response_code: '429',
            response_flags: 'RL',
          });
        const counted = d('ambit_waypoint_rate_limited_requests_total', {
          destination_service: LIMITED,
          policy: POLICY,
        });
        return rl(ALICE) === limitedA && rl(BOB) === limitedB && counted === limitedA + limitedB;
      },
      10_000,
    );

    // What a client sees: admitted responses carry the bucket's state too, a refusal says when to come back.
    const replies = await burst('bob', 'http://limited/x');
    const refused = replies.filter((r) => r.status === 429);
    const admitted = replies.filter((r) => r.status === 200);
    expect(refused.length, JSON.stringify(replies)).toBeGreaterThan(0);
    expect(refused[0]!.headers).toMatchObject({
      'x-ratelimit-limit': '10',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': '1',
      'x-envoy-ratelimited': 'true',
    });
    for (const r of admitted) {
      expect(r.headers['x-ratelimit-limit']).toBe('10');
      expect(r.headers['x-envoy-ratelimited']).toBeUndefined();
    }

    // An HTTP/1.1 Upgrade (WebSocket) is counted in the same bucket: every answer says so (a new
    // connection each, so how many are refused depends on the runner's speed), and those over are 429.
    const upgrades = await burst('bob', 'http://limited/x', 30, [
      '-H',
      'Connection: Upgrade',
      '-H',
      'Upgrade: websocket',
    ]);
    expect(upgrades, JSON.stringify(upgrades)).toHaveLength(30);
    for (const r of upgrades) {
      expect([200, 429], JSON.stringify(r)).toContain(r.status);
      expect(r.headers['x-ratelimit-limit'], JSON.stringify(r)).toBe('10');
      if (r.status === 429) expect(r.headers['x-envoy-ratelimited']).toBe('true');
    }

    // Another Service in the same namespace, same waypoint, no policy: no limit, no headers.
    const free = await burst('alice', 'http://free/x');
    expect(free.map((r) => r.status)).toEqual(Array(30).fill(200));
    expect(free.some((r) => 'x-ratelimit-limit' in r.headers)).toBe(false);
    const heyFree = await inPod('alice', ['hey', '-z', '2s', '-c', '4', 'http://free/x']);
    expect(Object.keys(heyCodes(heyFree.stdout)), heyFree.stdout).toEqual(['200']);

    // proxy-config says what is in force.
    const pc = await ambit(['proxy-config', 'clusters', '--name', CLUSTER, '--waypoint', `${NS}/waypoint`]);
    expect(pc.code, pc.stderr).toBe(0);
    expect(pc.stdout).toContain(
      'rl/limited: BackendTrafficPolicy rl/per-client: rateLimit local (per replica): 10/Second for each source identity, per route (over: 429, flag RL)',
    );
  }, 120_000);

  test('a gRPC client over its limit gets grpc-status 14 UNAVAILABLE, as from Envoy', async () => {
    const r = await inPod('alice', [
      PY,
      `${FIX}/grpc-client.py`,
      '--target',
      `${GRPC}:9090`,
      '--count',
      '40',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { status: Record<string, number> };
    expect(Object.keys(out.status).sort(), r.stdout).toEqual(['OK', 'UNAVAILABLE']);
    expect(r.stderr).toContain('UNAVAILABLE: local_rate_limited');
  }, 60_000);

  test('changing the policy takes effect live, and removing it lifts the limit', async () => {
    await cluster.apply('policy', policy(1000));
    const raised = await waitFor(
      'the raised limit to be in force',
      async () => {
        const rs = await burst('alice', 'http://limited/x');
        return rs.every((r) => r.status === 200 && r.headers['x-ratelimit-limit'] === '1000') && rs;
      },
      30_000,
    );
    expect(raised).toHaveLength(30);

    const del = await cluster.kubectl('delete', 'backendtrafficpolicy', 'per-client', '-n', NS);
    expect(del.code, del.stderr).toBe(0);
    await waitFor(
      'the limit to be gone',
      async () =>
        (await burst('alice', 'http://limited/x')).every(
          (r) => r.status === 200 && !('x-ratelimit-limit' in r.headers),
        ),
      30_000,
    );
    const all = await inPod('bob', ['hey', '-z', '2s', '-c', '4', 'http://limited/x']);
    expect(Object.keys(heyCodes(all.stdout)), all.stdout).toEqual(['200']);
  }, 90_000);
});
