import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ambit, status, waitFor } from './helpers.js';
import {
  app,
  clientPod,
  documents,
  echoCommand,
  heyCodes,
  meshNamespace,
  type Sample,
  serviceAccount,
  sumSamples,
  WaypointCluster,
} from './waypoint-helpers.js';

/*
 * BackendTrafficPolicy at a waypoint, in a local cluster, with clients this project did not write
 * (hey, curl): circuit breaking under load and fault injection. Policies come and go with kubectl.
 */

const CLUSTER = 'e2e-btp';
const NS = 'res';
const cluster = new WaypointCluster({ name: CLUSTER, namespace: NS, nodes: 2 });
const SHARED = cluster.shared;

const echo = (name: string, flags = ''): string =>
  app({ name, namespace: NS, command: echoCommand(cluster.fix, name, flags), serviceAccount: 'backend' });

const MANIFESTS = documents(
  meshNamespace(NS),
  serviceAccount('backend', NS),
  echo('slow'),
  echo('faulty', `--log ${SHARED}/faulty.log`),
  `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: faulty, namespace: ${NS} }
spec:
  parentRefs: [{ group: "", kind: Service, name: faulty, port: 80 }]
  rules:
    - backendRefs: [{ name: faulty, port: 80 }]
      retry: { codes: [503], attempts: 3 }
`,
  clientPod({ namespace: NS, node: 'node-1' }),
);

const CIRCUIT = `apiVersion: traffic.ambit.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: { name: slow-limits, namespace: ${NS} }
spec:
  targetRefs: [{ group: "", kind: Service, name: slow }]
  circuitBreaker: { maxParallelRequests: 10 }
`;

const faults = (spec: string): string => `apiVersion: traffic.ambit.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: { name: faulty-faults, namespace: ${NS} }
spec:
  targetRefs: [{ group: "", kind: Service, name: faulty }]
  faultInjection:
${spec}`;

function inClient(cmd: readonly string[]) {
  return cluster.exec('client', cmd);
}

const kubectl = (...args: string[]) => cluster.kubectl(...args);
const apply = (name: string, yaml: string): Promise<void> => cluster.apply(name, yaml);
const waypointMetrics = (): Promise<Sample[]> => cluster.waypointMetrics();

const sum = sumSamples;

/** curl's status and total time for one request. */
async function timed(url: string, extra: readonly string[] = []): Promise<{ code: number; seconds: number }> {
  const r = await inClient([
    'curl',
    '-sS',
    '--max-time',
    '10',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code} %{time_total}',
    ...extra,
    url,
  ]);
  const [code, seconds] = r.stdout.trim().split(' ');
  return { code: Number(code), seconds: Number(seconds) };
}

/** The status of each request of a curl URL range (`http://x/[1-100]`), in order, on one connection. */
async function codesOf(urls: string): Promise<string[]> {
  const r = await inClient([
    'curl',
    '-s',
    '--max-time',
    '120',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}\\n',
    urls,
  ]);
  return r.stdout.trim().split('\n');
}

const SLOW = 'slow.res.svc.cluster.local';
const FAULTY = 'faulty.res.svc.cluster.local';

describe('BackendTrafficPolicy at a waypoint (local mode, real clients)', () => {
  beforeAll(async () => {
    await cluster.up({ 'all.yaml': MANIFESTS });
    await waitFor(
      'the waypoint to serve the faulty route',
      async () => (await timed('http://faulty/x')).code === 200,
      60_000,
    );
  }, 240_000);

  afterAll(() => cluster.down());

  test('maxParallelRequests 10: a slow backend under hey gets 503 UO for the excess at once, the admitted succeed; without the policy all pass', async () => {
    await apply('circuit', CIRCUIT);
    // 40 concurrent requests of 1 s each: 10 admitted at a time.
    await waitFor(
      'the circuit breaker to be in force',
      async () => {
        const r = await inClient(['hey', '-n', '20', '-c', '20', 'http://slow/delay/1000']);
        return (heyCodes(r.stdout)['503'] ?? 0) > 0;
      },
      30_000,
    );
    const before = await waypointMetrics();
    const r = await inClient(['hey', '-n', '40', '-c', '40', '-t', '20', 'http://slow/delay/1000']);
    expect(r.code, r.stderr).toBe(0);
    const codes = heyCodes(r.stdout);
    const ok = codes['200'] ?? 0;
    const refused = codes['503'] ?? 0;
    expect(ok + refused, r.stdout).toBe(40);
    expect(ok, r.stdout).toBeGreaterThanOrEqual(10);
    expect(refused, r.stdout).toBeGreaterThanOrEqual(1);
    const after = await waypointMetrics();
    const d = (name: string, match: Record<string, string>) =>
      sum(after, name, match) - sum(before, name, match);
    expect(
      d('istio_requests_total', { destination_service: SLOW, response_code: '503', response_flags: 'UO' }),
    ).toBe(refused);
    expect(d('istio_requests_total', { destination_service: SLOW, response_code: '200' })).toBe(ok);
    expect(
      d('ambit_waypoint_circuit_breaker_overflows_total', {
        destination_service: SLOW,
        reason: 'maxParallelRequests',
      }),
    ).toBe(refused);
    // The refusals are at once: not one waited for the backend's second.
    const quick = await inClient([
      'sh',
      '-c',
      "for i in $(seq 12); do curl -s -o /dev/null -w '%{http_code} %{time_total}\\n' --max-time 10 http://slow/delay/3000 & done; wait",
    ]);
    const lines = quick.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' '));
    const refusedLines = lines.filter(([c]) => c === '503');
    expect(refusedLines.length, quick.stdout).toBeGreaterThanOrEqual(1);
    for (const [, t] of refusedLines) expect(Number(t)).toBeLessThan(3);

    // proxy-config for the waypoint and explain show the policy in force.
    const pc = await ambit(['proxy-config', 'clusters', '--name', CLUSTER, '--waypoint', `${NS}/waypoint`]);
    expect(pc.code, pc.stderr).toBe(0);
    expect(pc.stdout).toMatch(
      /res\/slow: BackendTrafficPolicy res\/slow-limits: circuitBreaker maxConnections=1024 maxPendingRequests=1024 maxParallelRequests=10 maxParallelRetries=1024 \(over a limit: 503, flag UO\) \(in flight: \d+ requests/,
    );
    const ex = await ambit(['explain', '--name', CLUSTER, '-n', NS, 'client', 'http://slow/delay/1']);
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stdout).toMatch(
      /traffic policy: res\/slow: BackendTrafficPolicy res\/slow-limits: circuitBreaker .*maxParallelRequests=10/,
    );
    const del = await kubectl('delete', 'backendtrafficpolicy', 'slow-limits', '-n', NS);
    expect(del.code, del.stderr).toBe(0);
    await waitFor(
      'the circuit breaker to be gone',
      async () => {
        const x = await inClient(['hey', '-n', '20', '-c', '20', 'http://slow/delay/500']);
        return heyCodes(x.stdout)['200'] === 20;
      },
      30_000,
    );
    const all = await inClient(['hey', '-n', '40', '-c', '40', '-t', '20', 'http://slow/delay/1000']);
    expect(heyCodes(all.stdout), all.stdout).toEqual({ '200': 40 });
  }, 120_000);

  test('maxConnections 2 with maxPendingRequests 3: two run, three wait for a connection, the rest get 503 UO at once', async () => {
    await apply(
      'pending',
      `apiVersion: traffic.ambit.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: { name: slow-connections, namespace: ${NS} }
spec:
  targetRefs: [{ group: "", kind: Service, name: slow }]
  circuitBreaker: { maxConnections: 2, maxPendingRequests: 3 }
`,
    );
    await waitFor(
      'the connection limit to be in force',
      async () =>
        (heyCodes((await inClient(['hey', '-n', '10', '-c', '10', 'http://slow/delay/500'])).stdout)['503'] ??
          0) > 0,
      30_000,
    );
    const before = await waypointMetrics();
    const r = await inClient(['hey', '-n', '10', '-c', '10', '-t', '20', 'http://slow/delay/1000']);
    const codes = heyCodes(r.stdout);
    const ok = codes['200'] ?? 0;
    const refused = codes['503'] ?? 0;
    expect(ok + refused, r.stdout).toBe(10);
    // The two running and the three waiting all succeed (the waiting ones after a second).
    expect(ok, r.stdout).toBeGreaterThanOrEqual(5);
    expect(refused, r.stdout).toBeGreaterThanOrEqual(1);
    const after = await waypointMetrics();
    const d = (name: string, match: Record<string, string>) =>
      sum(after, name, match) - sum(before, name, match);
    expect(
      d('istio_requests_total', { destination_service: SLOW, response_code: '503', response_flags: 'UO' }),
    ).toBe(refused);
    expect(
      d('ambit_waypoint_circuit_breaker_overflows_total', {
        destination_service: SLOW,
        reason: 'maxPendingRequests',
      }),
    ).toBe(refused);
    const del = await kubectl('delete', 'backendtrafficpolicy', 'slow-connections', '-n', NS);
    expect(del.code, del.stderr).toBe(0);
    await waitFor(
      'the connection limit to be gone',
      async () =>
        heyCodes((await inClient(['hey', '-n', '10', '-c', '10', 'http://slow/delay/200'])).stdout)['200'] ===
        10,
      30_000,
    );
  }, 90_000);

  test('a 50% abort with 503 over 1,000 requests is within binomial bounds, flagged FI, and not retried by the route', async () => {
    await apply('faults', faults('    abort: { httpStatus: 503, percentage: 50 }\n'));
    await waitFor(
      'the abort to be in force',
      async () => {
        const r = await inClient([
          'sh',
          '-c',
          "curl -s -o /dev/null -w '%{http_code}\\n' 'http://faulty/warm/[1-20]'",
        ]);
        return r.stdout.includes('503');
      },
      30_000,
    );
    const before = await waypointMetrics();
    const logBefore = readFileSync(`${SHARED}/faulty.log`, 'utf8')
      .split('\n')
      .filter((l) => l !== '').length;
    const codes = await codesOf('http://faulty/n/[1-1000]');
    expect(codes.length).toBe(1000);
    const aborted = codes.filter((c) => c === '503').length;
    const ok = codes.filter((c) => c === '200').length;
    expect(aborted + ok).toBe(1000);
    // 4.5 sigma around 500 (sigma = sqrt(1000 * 0.25) = 15.8).
    expect(aborted).toBeGreaterThanOrEqual(429);
    expect(aborted).toBeLessThanOrEqual(571);
    const after = await waypointMetrics();
    const d = (name: string, match: Record<string, string>) =>
      sum(after, name, match) - sum(before, name, match);
    expect(
      d('istio_requests_total', { destination_service: FAULTY, response_code: '503', response_flags: 'FI' }),
    ).toBe(aborted);
    expect(d('ambit_waypoint_faults_injected_total', { destination_service: FAULTY, fault: 'abort' })).toBe(
      aborted,
    );
    // The route retries 503s, but an injected abort never reaches the backend: it saw only the others.
    expect(d('ambit_waypoint_retries_total', { destination_service: FAULTY })).toBe(0);
    const logAfter = readFileSync(`${SHARED}/faulty.log`, 'utf8')
      .split('\n')
      .filter((l) => l !== '').length;
    expect(logAfter - logBefore).toBe(ok);
  }, 180_000);

  test('a 1 s delay only for requests with x-fault: on, flagged DI', async () => {
    await apply(
      'faults',
      faults('    delay: { fixedDelay: 1s }\n    headers: [{ name: x-fault, value: "on" }]\n'),
    );
    await waitFor(
      'the delay to be in force',
      async () => (await timed('http://faulty/d', ['-H', 'x-fault: on'])).seconds >= 1,
      30_000,
    );
    const explain = async (...h: string[]) => {
      const r = await ambit(['explain', '--name', CLUSTER, '-n', NS, 'client', 'http://faulty/d', ...h]);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    expect(await explain('-H', 'x-fault: on')).toMatch(
      /traffic policy: res\/faulty: BackendTrafficPolicy res\/faulty-faults: faultInjection delay 1s for 100% \(flag DI\) of requests with x-fault = "on"; its faults apply to this request/,
    );
    expect(await explain()).toMatch(/its faults do not apply to this request/);
    const before = await waypointMetrics();
    for (let i = 0; i < 5; i++) {
      const delayed = await timed('http://faulty/d', ['-H', 'x-fault: on']);
      expect(delayed.code).toBe(200);
      expect(delayed.seconds).toBeGreaterThanOrEqual(1);
      const plain = await timed('http://faulty/d');
      expect(plain.code).toBe(200);
      expect(plain.seconds).toBeLessThan(0.9);
      const other = await timed('http://faulty/d', ['-H', 'x-fault: off']);
      expect(other.seconds).toBeLessThan(0.9);
    }
    const after = await waypointMetrics();
    const d = (name: string, match: Record<string, string>) =>
      sum(after, name, match) - sum(before, name, match);
    expect(
      d('istio_requests_total', { destination_service: FAULTY, response_code: '200', response_flags: 'DI' }),
    ).toBe(5);
    expect(d('ambit_waypoint_faults_injected_total', { destination_service: FAULTY, fault: 'delay' })).toBe(
      5,
    );
    expect(
      d('istio_requests_total', { destination_service: FAULTY, response_code: '200', response_flags: '-' }),
    ).toBe(10);
  }, 90_000);

  test('a policy that fails validation is refused with its path and reason (kubectl and a manifest file) while the rest applies', async () => {
    const bad = `apiVersion: traffic.ambit.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: { name: bad, namespace: ${NS} }
spec:
  targetRefs: [{ group: "", kind: Service, name: slow }]
  faultInjection: { abort: { httpStatus: 503, percentage: 150 } }
`;
    const r = await cluster.kubectlApply('bad', bad);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/spec\.faultInjection\.abort\.percentage: 150 is not a number from 0 to 100/);
    // In a manifest file, it is rejected alone: file, line, path and reason.
    writeFileSync(join(cluster.manifests, 'bad.yaml'), bad);
    const st = await waitFor(
      'the rejection in status',
      async () => {
        const s = await status(CLUSTER);
        return s.issues.some((i) => i.file === 'bad.yaml') ? s : undefined;
      },
      30_000,
    );
    const issue = st.issues.find((i) => i.file === 'bad.yaml')!;
    expect(`${issue.file}:${issue.line} ${issue.path}: ${issue.message}`).toBe(
      'bad.yaml:6 spec.faultInjection.abort.percentage: 150 is not a number from 0 to 100',
    );
    // The rest applies: the faulty Service keeps its delay, slow has no policy in force.
    expect((await timed('http://faulty/d', ['-H', 'x-fault: on'])).seconds).toBeGreaterThanOrEqual(1);
    const all = await inClient(['hey', '-n', '20', '-c', '20', 'http://slow/delay/100']);
    expect(heyCodes(all.stdout)).toEqual({ '200': 20 });
  }, 60_000);
  test('a retry budget: every answer a 503 and a route retrying 503s twice, yet retries stay within 20% of the requests', async () => {
    await apply(
      'faults',
      `apiVersion: traffic.ambit.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: { name: faulty-faults, namespace: ${NS} }
spec:
  targetRefs: [{ group: "", kind: Service, name: faulty }]
  retryConstraint:
    budget: { percent: 20, interval: 1m }
    minRetryRate: { count: 1, interval: 10s }
`,
    );
    await waitFor(
      'the budget to be in force',
      async () => {
        const r = await ambit(['explain', '--name', CLUSTER, '-n', NS, 'client', 'http://faulty/b']);
        return r.stdout.includes('retryConstraint budget 20% of requests over 60s, at least 1 per 10s');
      },
      30_000,
    );
    const lines = () =>
      readFileSync(`${SHARED}/faulty.log`, 'utf8')
        .split('\n')
        .filter((l) => l.includes('/status/503?n=')).length;
    const before = await waypointMetrics();
    const codes = await codesOf('http://faulty/status/503?n=[1-200]');
    // The backend's answer stands: the client sees 503, as it would with retries spent.
    expect(codes.length).toBe(200);
    expect(new Set(codes)).toEqual(new Set(['503']));
    const after = await waypointMetrics();
    const d = (name: string, match: Record<string, string>) =>
      sum(after, name, match) - sum(before, name, match);
    // Without the budget the backend would see 600 (3 attempts each); under it at most 20% more
    // than the 200 requests, and the minimum rate (1 per 10 s) a few more.
    const received = await waitFor('the backend log', async () => {
      const n = lines();
      return n >= 200 ? n : undefined;
    });
    expect(received).toBeLessThanOrEqual(200 + 40 + 3);
    const retried = d('ambit_waypoint_retries_total', { destination_service: FAULTY });
    expect(retried).toBe(received - 200);
    expect(retried).toBeGreaterThanOrEqual(30);
    // A request whose retry is refused makes no further one: one overflow for each request that did
    // not get both of its retries.
    const refused = d('ambit_waypoint_circuit_breaker_overflows_total', {
      destination_service: FAULTY,
      reason: 'retryConstraint',
    });
    expect(refused).toBeGreaterThanOrEqual(200 - retried / 2);
    expect(refused).toBeLessThanOrEqual(200);
    // proxy-config shows the budget and what its window holds.
    const pc = await ambit(['proxy-config', 'clusters', '--name', CLUSTER, '--waypoint', `${NS}/waypoint`]);
    expect(pc.code, pc.stderr).toBe(0);
    expect(pc.stdout).toMatch(
      new RegExp(
        `${FAULTY}: retryConstraint budget 20% of requests over 60s, at least 1 per 10s .*; in its window now: \\d+ requests, ${retried} retries`,
      ),
    );
  }, 180_000);
});
