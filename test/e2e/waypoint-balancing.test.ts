import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ambit, waitFor } from './helpers.js';
import {
  clientPod,
  deployment,
  documents,
  echoCommand,
  meshNamespace,
  type Sample,
  service,
  serviceAccount,
  sumSamples,
  WaypointCluster,
} from './waypoint-helpers.js';

/*
 * BackendTrafficPolicy loadBalancer and healthCheck.passive at a waypoint, in a local cluster, with
 * real clients (curl, hey) and three echo-server pods behind one Service. A pod is made unhealthy or
 * slow by a file the test creates (--fail-file, --slow-file); each answer names its pod (x-served-by).
 */

const CLUSTER = 'e2e-lb';
const NS = 'lb';
const cluster = new WaypointCluster({ name: CLUSTER, namespace: NS, nodes: 2 });
const SHARED = cluster.shared;
const MEMBERS = ['pool-a', 'pool-b', 'pool-c'] as const;
const POOL = 'pool.lb.svc.cluster.local';

const member = (name: string): string =>
  deployment({
    name,
    namespace: NS,
    command: echoCommand(
      cluster.fix,
      name,
      `--log ${SHARED}/${name}.log --fail-file ${SHARED}/${name}.fail --slow-file ${SHARED}/${name}.slow`,
    ),
    labels: { app: 'pool', member: name },
    serviceAccount: 'backend',
  });

const MANIFESTS = documents(
  meshNamespace(NS),
  serviceAccount('backend', NS),
  ...MEMBERS.map(member),
  service({ name: 'pool', namespace: NS }),
  clientPod({ namespace: NS, node: 'node-1' }),
);

const policy = (spec: string): string => `apiVersion: traffic.ambit.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: { name: pool-balancing, namespace: ${NS} }
spec:
  targetRefs: [{ group: "", kind: Service, name: pool }]
${spec}`;

function inClient(cmd: readonly string[]) {
  return cluster.exec('client', cmd);
}

const apply = (yaml: string): Promise<void> => cluster.apply('policy', yaml);

const waypointMetrics = (): Promise<Sample[]> => cluster.waypointMetrics();

/** `n` requests one after another over one connection: each answer's status and the pod that sent it. */
async function stream(n: number, extra: readonly string[] = []): Promise<{ code: string; by: string }[]> {
  const r = await inClient([
    'curl',
    '-s',
    '--max-time',
    '120',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code} %header{x-served-by}\\n',
    ...extra,
    `http://pool/n/[1-${n}]`,
  ]);
  const lines = r.stdout.trim().split('\n');
  expect(lines.length, `${r.stdout}\n${r.stderr}`).toBe(n);
  return lines.map((l) => {
    const [code, by] = l.split(' ');
    return { code: code!, by: by ?? '' };
  });
}

const logLines = (name: string): number => {
  try {
    return readFileSync(`${SHARED}/${name}.log`, 'utf8')
      .split('\n')
      .filter((l) => l !== '').length;
  } catch {
    return 0;
  }
};

/** The share of `hey`'s requests (n at concurrency c) that `name` served, from the pods' own logs. */
async function shareUnderLoad(name: string, n: number, c: number): Promise<number> {
  const before = MEMBERS.map(logLines);
  const r = await inClient(['hey', '-n', String(n), '-c', String(c), '-t', '30', 'http://pool/load']);
  expect(r.code, r.stderr).toBe(0);
  const served = MEMBERS.map((m, i) => logLines(m) - before[i]!);
  const total = served.reduce((a, b) => a + b, 0);
  expect(total, r.stdout).toBe(n);
  return served[MEMBERS.indexOf(name as (typeof MEMBERS)[number])]! / total;
}

/** `ambit proxy-config clusters` for the waypoint: what it holds of each Service's policy. */
const clusters = () => ambit(['proxy-config', 'clusters', '--name', CLUSTER, '--waypoint', `${NS}/waypoint`]);

/** Waits until `proxy-config clusters` shows what `shown` matches (a policy in force). */
const untilClusters = (what: string, shown: RegExp): Promise<unknown> =>
  waitFor(what, async () => shown.test((await clusters()).stdout), 30_000);

describe('BackendTrafficPolicy loadBalancer and passive health check at a waypoint (local mode, real clients)', () => {
  beforeAll(async () => {
    await cluster.up({ 'all.yaml': MANIFESTS });
    await waitFor(
      'the waypoint to reach all three pods',
      async () => new Set((await stream(30)).map((x) => x.by)).size === 3,
      60_000,
    );
  }, 240_000);

  afterAll(() => cluster.down());

  test('a pod answering 500 is ejected after 3 in a row, the others carry the stream, and it comes back after the ejection time once healthy', async () => {
    await apply(
      policy(`  loadBalancer: { type: RoundRobin }
  healthCheck:
    passive: { consecutive5XxErrors: 3, interval: 1s, baseEjectionTime: 8s, maxEjectionPercent: 50 }
`),
    );
    await untilClusters(
      'the policy to be in force',
      /loadBalancer RoundRobin; healthCheck\.passive consecutive5XxErrors=3/,
    );
    const before = await waypointMetrics();
    writeFileSync(`${SHARED}/pool-c.fail`, '');
    // Round robin sends every third request to pool-c: three 500s in a row from it eject it.
    const first = await stream(30);
    const failed = first.filter((x) => x.code === '500');
    expect(failed.length, JSON.stringify(first)).toBeGreaterThanOrEqual(3);
    expect(new Set(failed.map((x) => x.by))).toEqual(new Set(['pool-c']));
    const after = await waypointMetrics();
    expect(
      sumSamples(after, 'ambit_outlier_ejections_total', {
        destination_service: POOL,
        reason: 'consecutive_5xx',
      }) - sumSamples(before, 'ambit_outlier_ejections_total', { destination_service: POOL }),
    ).toBe(1);
    expect(sumSamples(after, 'ambit_outlier_ejected_endpoints', { destination_service: POOL })).toBe(1);
    const pc = await clusters();
    expect(pc.stdout).toMatch(/ejected now: \S+ until \S+ \(ejection 1 in a row\)/);
    expect(pc.stdout).toMatch(/pool-c\S*\s+\d+\s+\S+\s+ejected \(\d+s left\)/);

    // While it is out, the stream is served by the other two.
    const during = await stream(200);
    const ok = during.filter((x) => x.code === '200').length;
    expect(ok / during.length, JSON.stringify(during.filter((x) => x.code !== '200'))).toBeGreaterThan(0.99);
    expect(during.some((x) => x.by === 'pool-c')).toBe(false);

    // Healthy again: it gets requests once its 8 s are over (at the next 1 s sweep), and not before.
    rmSync(`${SHARED}/pool-c.fail`);
    await waitFor(
      'pool-c to serve again',
      async () => (await stream(9)).some((x) => x.by === 'pool-c' && x.code === '200'),
      30_000,
    );
    const back = await waypointMetrics();
    expect(sumSamples(back, 'ambit_outlier_ejected_endpoints', { destination_service: POOL })).toBe(0);
    const all = await stream(30);
    expect(all.every((x) => x.code === '200')).toBe(true);
    expect(new Set(all.map((x) => x.by)).size).toBe(3);
  }, 120_000);

  test('consistent hash on x-user keeps a user on one pod for 100 requests; different users spread over the pods', async () => {
    await apply(
      policy(`  loadBalancer:
    type: ConsistentHash
    consistentHash: { type: Header, header: { name: x-user } }
`),
    );
    await waitFor(
      'the hash to be in force',
      async () => new Set((await stream(20, ['-H', 'x-user: warm'])).map((x) => x.by)).size === 1,
      30_000,
    );
    const pods = new Set<string>();
    for (const user of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi']) {
      const seen = await stream(100, ['-H', `x-user: ${user}`]);
      const by = new Set(seen.map((x) => x.by));
      expect(by.size, `${user}: ${[...by].join(', ')}`).toBe(1);
      pods.add([...by][0]!);
    }
    expect(pods.size).toBeGreaterThanOrEqual(2);
    // Without the header there is no affinity: requests spread.
    expect(new Set((await stream(30)).map((x) => x.by)).size).toBeGreaterThanOrEqual(2);
  }, 120_000);

  test('consistent hash on a cookie: a client without one is given one (Max-Age from ttl) and sticks to one pod with it', async () => {
    await apply(
      policy(`  loadBalancer:
    type: ConsistentHash
    consistentHash: { type: Cookie, cookie: { name: session, ttl: 10m, attributes: { SameSite: Lax } } }
`),
    );
    await waitFor(
      'the cookie hash to be in force',
      async () => {
        const r = await inClient(['curl', '-s', '-o', '/dev/null', '-D', '-', 'http://pool/c']);
        return /set-cookie: session=\w+; Max-Age=600; HttpOnly; SameSite=Lax/i.test(r.stdout);
      },
      30_000,
    );
    const pods = new Set<string>();
    for (let client = 0; client < 8; client++) {
      // One curl per client, its cookie jar shared by its 50 requests: the first gets the cookie.
      const jar = `${SHARED}/jar-${client}`;
      const seen = await stream(50, ['-c', jar, '-b', jar]);
      const by = new Set(seen.map((x) => x.by));
      expect(by.size, `client ${client}: ${[...by].join(', ')}`).toBe(1);
      pods.add([...by][0]!);
    }
    expect(pods.size).toBeGreaterThanOrEqual(2);
  }, 120_000);

  test('with one pod 300 ms slow, least request sends it a clearly smaller share than round robin does', async () => {
    writeFileSync(`${SHARED}/pool-b.slow`, '300');
    try {
      await apply(policy('  loadBalancer: { type: RoundRobin }\n'));
      await untilClusters('round robin to be in force', /pool-balancing: loadBalancer RoundRobin \(/);
      const rr = await shareUnderLoad('pool-b', 150, 10);
      await apply(policy('  loadBalancer: { type: LeastRequest }\n'));
      await untilClusters('least request to be in force', /pool-balancing: loadBalancer LeastRequest \(/);
      const lr = await shareUnderLoad('pool-b', 150, 10);
      // Round robin gives every pod a third whatever its speed; least request steers around the slow one.
      expect(rr).toBeGreaterThan(0.3);
      expect(rr).toBeLessThan(0.37);
      expect(lr, `least request ${lr}, round robin ${rr}`).toBeLessThan(rr / 2);
    } finally {
      rmSync(`${SHARED}/pool-b.slow`, { force: true });
    }
  }, 150_000);
});
