import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ambit, runCmd, status, waitFor } from './helpers.js';
import {
  clientPod,
  deployment,
  documents,
  echoCommand,
  fixtureCommand,
  meshNamespace,
  PY,
  type Sample,
  service,
  serviceAccount,
  sumSamples,
  WaypointCluster,
} from './waypoint-helpers.js';

/*
 * L7 through a waypoint, in a local cluster, with clients this project did not write: curl, wrk,
 * python3-grpcio and python3-websockets in a client pod; backends are Python servers in pods; traces
 * go to an OTLP receiver pod. Every request: client pod -> node proxy -> HBONE -> waypoint pod ->
 * HBONE -> node proxy -> backend pod.
 */

const CLUSTER = 'e2e-l7';
const NS = 'l7';
const cluster = new WaypointCluster({ name: CLUSTER, namespace: NS, nodes: 2 });
const SHARED = cluster.shared;
const FIX = cluster.fix;

/** A backend Deployment running a fixture server named after it. */
const server = (name: string, labels: Record<string, string>, script: string, port = 8080): string =>
  deployment({
    name,
    namespace: NS,
    labels,
    command: fixtureCommand(FIX, script, `--name ${name} --port ${port}`),
    serviceAccount: 'backend',
    port,
  });

const echo = (name: string, labels: Record<string, string>, flags = ''): string =>
  deployment({
    name,
    namespace: NS,
    labels,
    command: echoCommand(FIX, name, flags),
    serviceAccount: 'backend',
  });

const http = (name: string, selector: Record<string, string>, appProtocol = 'http'): string =>
  service({ name, namespace: NS, selector, appProtocol });

const grpc = (name: string, selector: Record<string, string>): string =>
  service({
    name,
    namespace: NS,
    selector,
    port: 9090,
    targetPort: 9090,
    appProtocol: 'grpc',
    portName: 'grpc',
  });

const backendRef = (name: string, weight?: number): string =>
  `{ name: ${name}, port: 80${weight === undefined ? '' : `, weight: ${weight}`} }`;

const MANIFESTS: Record<string, string> = {
  'namespace.yaml': documents(
    meshNamespace(NS, {
      gatewayAnnotations: {
        'ambit.dev/otlp-endpoint': 'http://otel.observe.svc.cluster.local:4318/v1/traces',
        'ambit.dev/trace-sampling': '1',
      },
    }),
    `apiVersion: v1
kind: Namespace
metadata: { name: observe }
---
apiVersion: v1
kind: Namespace
metadata:
  name: consumer
  labels: { ambit.dev/dataplane-mode: ambient }
`,
  ),
  'apps.yaml': documents(
    serviceAccount('backend', NS),
    echo('web-v1', { app: 'web', version: 'v1' }),
    echo('web-v2', { app: 'web', version: 'v2' }),
    echo('shadow', { app: 'shadow' }, `--log ${SHARED}/shadow.log`),
    echo('flaky', { app: 'flaky' }, '--fail-rate 0.2'),
    server('h2', { app: 'h2' }, 'h2c-server.py'),
    server('ws', { app: 'ws' }, 'ws-server.py'),
    server('grpc-v1', { app: 'grpc', version: 'v1' }, 'grpc-server.py', 9090),
    server('grpc-v2', { app: 'grpc', version: 'v2' }, 'grpc-server.py', 9090),
    http('web', { app: 'web' }),
    http('web-v1', { app: 'web', version: 'v1' }),
    http('web-v2', { app: 'web', version: 'v2' }),
    http('shadow', { app: 'shadow' }),
    http('flaky', { app: 'flaky' }),
    http('h2', { app: 'h2' }, 'kubernetes.io/h2c'),
    http('ws', { app: 'ws' }),
    grpc('grpc', { app: 'grpc' }),
    grpc('grpc-v1', { app: 'grpc', version: 'v1' }),
    grpc('grpc-v2', { app: 'grpc', version: 'v2' }),
    clientPod({ namespace: NS, node: 'node-1' }),
    `apiVersion: v1
kind: Service
metadata: { name: ports, namespace: ${NS} }
spec:
  selector: { app: web, version: v2 }
  ports:
    - { name: http, port: 80, targetPort: 8080, appProtocol: http }
    - { name: http-alt, port: 8080, targetPort: 8080, appProtocol: http }
`,
    clientPod({ namespace: 'consumer', node: 'node-2' }),
    `apiVersion: v1
kind: Pod
metadata: { name: otel, namespace: observe, labels: { app: otel } }
spec:
  nodeName: node-2
  containers:
    - name: receiver
      command: ["${PY}", "-u", "${FIX}/otlp-receiver.py", "--out", "${SHARED}/spans.jsonl", "--port", "4318"]
      readinessProbe: { tcpSocket: { port: 4318 }, periodSeconds: 1 }
---
apiVersion: v1
kind: Service
metadata: { name: otel, namespace: observe }
spec:
  selector: { app: otel }
  ports: [{ name: http, port: 4318, targetPort: 4318 }]
`,
  ),
  'routes.yaml': `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: web, namespace: ${NS} }
spec:
  parentRefs: [{ group: "", kind: Service, name: web, port: 80 }]
  rules:
    - matches: [{ path: { type: Exact, value: /exact } }]
      backendRefs: [${backendRef('web-v2')}]
    - matches: [{ path: { type: PathPrefix, value: /prefix } }]
      backendRefs: [${backendRef('web-v2')}]
    - matches: [{ path: { type: PathPrefix, value: /split }, headers: [{ name: x-user, value: a }] }]
      backendRefs: [${backendRef('web-v2')}]
    - matches: [{ path: { type: PathPrefix, value: /app }, queryParams: [{ name: version, value: "2" }] }]
      backendRefs: [${backendRef('web-v2')}]
    - matches: [{ path: { type: PathPrefix, value: /app }, method: DELETE }]
      backendRefs: [${backendRef('web-v2')}]
    - matches: [{ path: { type: PathPrefix, value: /split } }]
      backendRefs: [${backendRef('web-v1', 90)}, ${backendRef('web-v2', 10)}]
    - matches: [{ path: { type: PathPrefix, value: /old } }]
      filters:
        - type: RequestRedirect
          requestRedirect: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /new }, statusCode: 301 }
    - matches: [{ path: { type: PathPrefix, value: /rewrite } }]
      filters:
        - type: URLRewrite
          urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /rewritten } }
      backendRefs: [${backendRef('web-v1')}]
    - matches: [{ path: { type: PathPrefix, value: /headers } }]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{ name: x-set, value: by-route }]
            add: [{ name: x-added, value: "yes" }]
            remove: [x-remove-me]
        - type: ResponseHeaderModifier
          responseHeaderModifier: { set: [{ name: x-response, value: from-route }] }
      backendRefs: [${backendRef('web-v1')}]
    - matches: [{ path: { type: PathPrefix, value: /mirror } }]
      filters:
        - type: RequestMirror
          requestMirror: { backendRef: { name: shadow, port: 80 } }
      backendRefs: [${backendRef('web-v1')}]
    - matches: [{ path: { type: PathPrefix, value: /slow } }]
      timeouts: { request: 500ms }
      backendRefs: [${backendRef('web-v1')}]
    - matches: [{ path: { type: PathPrefix, value: /app } }, { path: { type: PathPrefix, value: /status } }]
      backendRefs: [${backendRef('web-v1')}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: flaky, namespace: ${NS} }
spec:
  parentRefs: [{ group: "", kind: Service, name: flaky, port: 80 }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /retry } }]
      retry: { attempts: 3, codes: [503], backoff: 5ms }
      backendRefs: [${backendRef('flaky')}]
    - matches: [{ path: { type: PathPrefix, value: /noretry } }]
      backendRefs: [${backendRef('flaky')}]
---
# A consumer route (GEP-1294, conformance MeshConsumerRoute): in the client's namespace, attached to
# the producer's Service; it applies to the consumer namespace's clients only.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: consumer-view, namespace: consumer }
spec:
  parentRefs: [{ group: "", kind: Service, name: web-v1, namespace: ${NS} }]
  rules:
    - filters:
        - type: ResponseHeaderModifier
          responseHeaderModifier: { set: [{ name: x-consumer, value: "yes" }] }
      backendRefs: [{ name: web-v1, namespace: ${NS}, port: 80 }]
---
# A route scoped to one port of a Service (conformance MeshPorts): the other port is not routed by it.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ports, namespace: ${NS} }
spec:
  parentRefs: [{ group: "", kind: Service, name: ports, port: 8080 }]
  rules:
    - filters:
        - type: ResponseHeaderModifier
          responseHeaderModifier: { set: [{ name: x-port, value: "8080" }] }
      backendRefs: [{ name: ports, port: 8080 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: grpc, namespace: ${NS} }
spec:
  parentRefs: [{ group: "", kind: Service, name: grpc, port: 9090 }]
  rules:
    - matches: [{ method: { service: ambit.test.Echo, method: Stream } }]
      backendRefs: [{ name: grpc-v2, port: 9090 }]
    - backendRefs: [{ name: grpc-v1, port: 9090, weight: 80 }, { name: grpc-v2, port: 9090, weight: 20 }]
`,
};

/** A command in the client pod. */
function inClient(cmd: readonly string[]) {
  return cluster.exec('client', cmd);
}

/** curl in the client pod: body and, with `-w`, a trailing status line. */
async function curl(
  url: string,
  extra: readonly string[] = [],
): Promise<{ code: number; body: string; stderr: string }> {
  const r = await inClient(['curl', '-sS', '--max-time', '10', ...extra, url]);
  return { code: r.code, body: r.stdout, stderr: r.stderr };
}

/** The JSON bodies of several echo answers concatenated (curl URL globbing prints them back to back). */
function bodies(text: string): { name: string; path: string; headers: Record<string, string> }[] {
  return text
    .split(/(?<=\})\s*(?=\{"name")/)
    .filter((t) => t.trim() !== '')
    .map((t) => JSON.parse(t) as { name: string; path: string; headers: Record<string, string> });
}

const waypointMetrics = (): Promise<Sample[]> => cluster.waypointMetrics();

const sum = sumSamples;

const accessLog = (): Record<string, unknown>[] => cluster.accessLog();

/** Binomial bounds: the count of successes in n trials with probability p falls here 99.9% of the time. */
function bounds(n: number, p: number): [number, number] {
  const sd = Math.sqrt(n * p * (1 - p));
  return [n * p - 3.29 * sd, n * p + 3.29 * sd];
}

/** What the waypoint test reads of an API object (or a list of them) with kubectl. */
interface ApiObject {
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly uid: string;
    readonly ownerReferences?: unknown[];
    readonly managedFields: { readonly manager: string; readonly operation: string }[];
  };
  readonly spec: {
    readonly replicas?: number;
    readonly template: { readonly spec: { readonly containers: { readonly env?: unknown[] }[] } };
  };
  readonly items: ApiObject[];
}

describe('L7 through a waypoint (local mode, real clients)', () => {
  beforeAll(async () => {
    await cluster.up(MANIFESTS);
    // The waypoint is programmed and the routes are in it before the first request.
    await waitFor(
      'the waypoint to serve the routes',
      async () =>
        (await curl('http://web/exact')).body.includes('"name": "web-v2"') ||
        (await curl('http://web/exact')).body.includes('"name":"web-v2"'),
      60_000,
    );
  });

  afterAll(() => cluster.down());

  test('path, header, query and method matches route to the right backend; an unmatched request gets 404', async () => {
    const name = async (url: string, extra: string[] = []) => bodies((await curl(url, extra)).body)[0]?.name;
    expect(await name('http://web/exact')).toBe('web-v2');
    const code = async (url: string) => (await curl(url, ['-o', '/dev/null', '-w', '%{http_code}'])).body;
    expect(await code('http://web/exact/more')).toBe('404'); // Exact does not match a longer path
    expect(await name('http://web/prefix/a/b')).toBe('web-v2');
    expect(await code('http://web/prefixed')).toBe('404'); // a prefix matches whole segments
    expect(await name('http://web/split/x', ['-H', 'x-user: a'])).toBe('web-v2');
    expect(await name('http://web/app/x?version=2')).toBe('web-v2');
    expect(await name('http://web/app/x', ['-X', 'DELETE'])).toBe('web-v2');
    expect(await name('http://web/app/x')).toBe('web-v1');
    const miss = await curl('http://web/nothing', ['-o', '/dev/null', '-w', '%{http_code}']);
    expect(miss.body).toBe('404');
  });

  test('a 90/10 split over 2,000 requests lands within binomial 99.9% bounds; a header match sends only that user to v2', async () => {
    const split = bodies(
      (await inClient(['curl', '-sS', '--max-time', '120', 'http://web/split/[1-2000]'])).stdout,
    );
    expect(split).toHaveLength(2000);
    const v2 = split.filter((b) => b.name === 'web-v2').length;
    const [lo, hi] = bounds(2000, 0.1);
    expect(v2).toBeGreaterThanOrEqual(lo);
    expect(v2).toBeLessThanOrEqual(hi);
    // The same path with a header match ranks above the split (Gateway API precedence: path, then headers).
    const userA = bodies(
      (await inClient(['curl', '-sS', '-H', 'x-user: a', 'http://web/split/[1-200]'])).stdout,
    );
    expect(userA).toHaveLength(200);
    expect(new Set(userA.map((b) => b.name))).toEqual(new Set(['web-v2']));
  });

  test('redirect, rewrite, header modifiers and mirroring are what the client and the backends see', async () => {
    const redirect = await curl('http://web/old/page?q=1', [
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{redirect_url}',
    ]);
    expect(redirect.body).toBe('301 http://web/new/page?q=1');
    const rewritten = bodies((await curl('http://web/rewrite/a')).body)[0]!;
    expect(rewritten).toMatchObject({ name: 'web-v1', path: '/rewritten/a' });
    const h = await curl('http://web/headers', ['-i', '-H', 'x-remove-me: 1', '-H', 'x-set: by-client']);
    expect(h.body).toMatch(/^x-response: from-route\r$/m);
    const seen = bodies(h.body.slice(h.body.indexOf('{')))[0]!;
    expect(seen.headers['x-set']).toBe('by-route');
    expect(seen.headers['x-added']).toBe('yes');
    expect(seen.headers['x-remove-me']).toBeUndefined();
    const mirrored = await curl('http://web/mirror/one', ['-H', 'x-request-id: mirror-1']);
    expect(bodies(mirrored.body)[0]?.name).toBe('web-v1');
    const shadow = await waitFor('the mirror to reach the shadow backend', () => {
      try {
        return (
          readFileSync(join(SHARED, 'shadow.log'), 'utf8').includes('/mirror/one') &&
          readFileSync(join(SHARED, 'shadow.log'), 'utf8')
        );
      } catch {
        return false;
      }
    });
    expect(shadow).toContain('mirror-1');
  });

  test("a consumer route applies to its own namespace's clients only; a port-scoped route to its port only (Mesh conformance)", async () => {
    const fromConsumer = await cluster.exec(
      'client',
      ['curl', '-sS', '-i', 'http://web-v1.l7/app/c'],
      'consumer',
    );
    expect(fromConsumer.code, fromConsumer.stderr).toBe(0);
    expect(fromConsumer.stdout).toMatch(/^x-consumer: yes\r$/m);
    const fromProducer = await curl('http://web-v1.l7/app/c', ['-i']);
    expect(fromProducer.body).toMatch(/^HTTP\/1.1 200/);
    expect(fromProducer.body).not.toMatch(/x-consumer/i);
    const routed = await curl('http://ports:8080/p', ['-i']);
    expect(routed.body).toMatch(/^x-port: 8080\r$/m);
    const other = await curl('http://ports:80/p', ['-i']);
    expect(other.body).toMatch(/^HTTP\/1.1 200/);
    expect(other.body).not.toMatch(/x-port/i);
  });

  test('a backend slower than timeouts.request gets 504 at the timeout (UT)', async () => {
    const before = sum(await waypointMetrics(), 'istio_requests_total', {
      response_code: '504',
      response_flags: 'UT',
    });
    const r = await curl('http://web/slow?sleep_ms=3000', [
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{time_total}',
    ]);
    const [code, seconds] = r.body.split(' ');
    expect(code).toBe('504');
    expect(Number(seconds)).toBeGreaterThan(0.45);
    expect(Number(seconds)).toBeLessThan(1.5);
    await waitFor(
      'the 504 to be counted',
      async () =>
        sum(await waypointMetrics(), 'istio_requests_total', {
          response_code: '504',
          response_flags: 'UT',
        }) ===
        before + 1,
    );
  });

  test('a backend failing 20% with 503 stays above 99% with retry.attempts 3 (near 80% without), and the retries show', async () => {
    const codes = async (path: string) =>
      (
        await inClient([
          'curl',
          '-s',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}\\n',
          `http://flaky${path}/[1-500]`,
        ])
      ).stdout
        .trim()
        .split('\n');
    const m0 = await waypointMetrics();
    const retried = await codes('/retry');
    const plain = await codes('/noretry');
    expect(retried).toHaveLength(500);
    expect(retried.filter((c) => c === '200').length).toBeGreaterThanOrEqual(495);
    const ok = plain.filter((c) => c === '200').length;
    const [lo, hi] = bounds(500, 0.8);
    expect(ok).toBeGreaterThanOrEqual(lo);
    expect(ok).toBeLessThanOrEqual(hi);
    const m1 = await waypointMetrics();
    const retries =
      sum(m1, 'ambit_waypoint_retries_total', { reason: '503' }) -
      sum(m0, 'ambit_waypoint_retries_total', { reason: '503' });
    // About 20% of the first attempts (and some retries) failed and were retried.
    expect(retries).toBeGreaterThan(50);
    const lines = accessLog().filter((l) => String(l.path).startsWith('/retry/'));
    expect(lines.filter((l) => Number(l.retries) > 0).length).toBeGreaterThan(50);
    expect(
      lines.filter((l) => Number(l.retries) > 0).every((l) => Number(l.attempts) === Number(l.retries) + 1),
    ).toBe(true);
  });

  test('gRPC unary and server-streaming calls go through a GRPCRoute method match and a weighted split; grpc-status shows in metrics', async () => {
    const grpc = async (args: string[]) => {
      const r = await inClient([
        PY,
        `${FIX}/grpc-client.py`,
        '--target',
        'grpc.l7.svc.cluster.local:9090',
        ...args,
      ]);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as {
        calls: number;
        by_name: Record<string, number>;
        status: Record<string, number>;
        messages: number;
      };
    };
    const unary = await grpc(['--method', 'Unary', '--count', '400']);
    expect(unary.status.OK).toBe(400);
    const [lo, hi] = bounds(400, 0.2);
    expect(unary.by_name['grpc-v2'] ?? 0).toBeGreaterThanOrEqual(lo);
    expect(unary.by_name['grpc-v2'] ?? 0).toBeLessThanOrEqual(hi);
    const stream = await grpc(['--method', 'Stream', '--count', '10', '--messages', '5']);
    expect(stream).toMatchObject({ calls: 10, by_name: { 'grpc-v2': 10 }, status: { OK: 10 }, messages: 50 });
    const failing = await grpc(['--method', 'Unary', '--count', '3', '--metadata', 'x-fail=UNAVAILABLE']);
    expect(failing.status.UNAVAILABLE).toBe(3);
    const m = await waypointMetrics();
    expect(
      sum(m, 'istio_requests_total', { request_protocol: 'grpc', grpc_response_status: '0' }),
    ).toBeGreaterThanOrEqual(410);
    expect(sum(m, 'istio_requests_total', { request_protocol: 'grpc', grpc_response_status: '14' })).toBe(3);
  });

  test('HTTP/1.1 keep-alive, h2c and a WebSocket upgrade all work through the waypoint', async () => {
    const ka = await curl('http://web/app/1', ['-v', '-o', '/dev/null', 'http://web/app/2']);
    expect(ka.stderr).toMatch(/Re-using existing connection|Reusing existing connection/);
    const h2 = JSON.parse((await curl('http://h2/hello', ['--http2-prior-knowledge'])).body) as {
      protocol: string;
      name: string;
    };
    expect(h2).toMatchObject({ protocol: 'HTTP/2', name: 'h2' });
    const ws = await inClient([
      PY,
      `${FIX}/ws-client.py`,
      '--url',
      'ws://ws.l7.svc.cluster.local/chat',
      '--count',
      '5',
    ]);
    expect(JSON.parse(ws.stdout)).toMatchObject({ ok: true, echoes: 5, name: 'ws' });
  });

  test('wrk through the waypoint: every response 2xx', async () => {
    const r = await inClient(['wrk', '-t1', '-c8', '-d3s', 'http://web/app/wrk']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/Non-2xx|Socket errors/);
    expect(Number(/(\d+) requests in/.exec(r.stdout)?.[1])).toBeGreaterThan(100);
  });

  test('the waypoint sees every Service request of the namespace (its counters equal what the client sent); pod-IP traffic is not routed by Service routes', async () => {
    const before = sum(await waypointMetrics(), 'istio_requests_total', {
      reporter: 'waypoint',
      source_workload: 'client',
    });
    await inClient([
      'curl',
      '-sS',
      '-o',
      '/dev/null',
      'http://web/app/count/[1-40]',
      'http://web-v2/count/[1-10]',
    ]);
    await waitFor(
      'the requests to be counted',
      async () =>
        sum(await waypointMetrics(), 'istio_requests_total', {
          reporter: 'waypoint',
          source_workload: 'client',
        }) -
          before ===
        50,
    );
    // /exact goes to v2 by route; sent to v1's pod address it is v1's answer, and the waypoint sees none of it.
    const v1 = cluster.state.pods.find((p) => p.namespace === NS && p.name.startsWith('web-v1-'))!;
    const mid = sum(await waypointMetrics(), 'istio_requests_total', { reporter: 'waypoint' });
    const direct = bodies((await curl(`http://${v1.ip4}:8080/exact`)).body)[0];
    expect(direct?.name).toBe('web-v1');
    expect(sum(await waypointMetrics(), 'istio_requests_total', { reporter: 'waypoint' })).toBe(mid);
  });

  test('metrics and the access log match the requests, label by label; a traceparent keeps its trace id and the span reaches the OTLP receiver', async () => {
    const m0 = await waypointMetrics();
    const tag = `batch-${Date.now()}`;
    for (let i = 0; i < 4; i++)
      await curl('http://web/app/ok', ['-o', '/dev/null', '-H', `x-request-id: ${tag}-ok-${i}`]);
    for (let i = 0; i < 3; i++)
      await curl('http://web/nothing', ['-o', '/dev/null', '-H', `x-request-id: ${tag}-nr-${i}`]);
    for (let i = 0; i < 2; i++)
      await curl('http://web/status/418', ['-o', '/dev/null', '-H', `x-request-id: ${tag}-teapot-${i}`]);
    const lines = await waitFor('the access lines', () => {
      const l = accessLog().filter((x) => String(x.request_id).startsWith(tag));
      return l.length === 9 && l;
    });
    const m1 = await waypointMetrics();
    const delta = (match: Record<string, string>) =>
      sum(m1, 'istio_requests_total', { reporter: 'waypoint', source_workload: 'client', ...match }) -
      sum(m0, 'istio_requests_total', { reporter: 'waypoint', source_workload: 'client', ...match });
    const byLog = (status: number, flags: string) =>
      lines.filter((l) => l.status === status && l.flags === flags).length;
    expect({
      ok: delta({ response_code: '200', response_flags: '-', destination_service_name: 'web-v1' }),
      log: byLog(200, '-'),
    }).toEqual({ ok: 4, log: 4 });
    expect({ nr: delta({ response_code: '404', response_flags: 'NR' }), log: byLog(404, 'NR') }).toEqual({
      nr: 3,
      log: 3,
    });
    expect({
      teapot: delta({ response_code: '418', destination_version: 'v1' }),
      log: byLog(418, '-'),
    }).toEqual({ teapot: 2, log: 2 });
    for (const l of lines) {
      expect(l).toMatchObject({
        src_identity: 'spiffe://cluster.local/ns/l7/sa/client',
        src_workload: 'l7/client',
        method: 'GET',
      });
    }
    // Tracing: the client's trace id is kept, the waypoint's server span is the child of the client's span.
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parent = '00f067aa0ba902b7';
    const echoed = bodies(
      (await curl('http://web/app/traced', ['-H', `traceparent: 00-${trace}-${parent}-01`])).body,
    )[0]!;
    expect(echoed.headers.traceparent).toMatch(new RegExp(`^00-${trace}-[0-9a-f]{16}-01$`));
    const spans = await waitFor(
      'the spans at the OTLP receiver',
      () => {
        try {
          const s = readFileSync(join(SHARED, 'spans.jsonl'), 'utf8')
            .trim()
            .split('\n')
            .map(
              (l) =>
                JSON.parse(l) as {
                  traceId: string;
                  spanId: string;
                  parentSpanId: string;
                  name: string;
                  kind: number;
                },
            );
          const mine = s.filter((x) => x.traceId === trace);
          return mine.length >= 2 && mine;
        } catch {
          return false;
        }
      },
      20_000,
    );
    const server = spans.find((x) => x.parentSpanId === parent)!;
    expect(server).toBeDefined();
    expect(server.name).toBe('GET /app/traced');
    const attempt = spans.find((x) => x.parentSpanId === server.spanId)!;
    expect(attempt).toBeDefined();
    // The backend got the attempt's span as its parent.
    expect(echoed.headers.traceparent).toBe(`00-${trace}-${attempt.spanId}-01`);
  });

  test('an invalid HTTPRoute is rejected with file:line:path and a reason in its status, while the other routes keep serving', async () => {
    writeFileSync(
      join(cluster.manifests, 'broken.yaml'),
      `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: broken, namespace: ${NS} }
spec:
  parentRefs: [{ group: "", kind: Service, name: web-v2, port: 80 }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: no-slash } }]
      backendRefs: [${backendRef('web-v1')}]
`,
    );
    const st = await waitFor('the route to be rejected', async () => {
      const r = await ambit(['waypoint', 'status', '--name', CLUSTER, '-n', NS]);
      return r.stdout.includes('HTTPRoute/broken') && r.stdout;
    });
    expect(st).toMatch(
      /HTTPRoute\/broken .*Accepted=False \(UnsupportedValue: broken\.yaml:7 spec\.rules\[0\]\.matches\[0\]\.path\.value: .*"\/"/,
    );
    expect(st).toMatch(/HTTPRoute\/web .*Accepted=True/);
    expect(st).toMatch(/waypoint .*True .*True/);
    expect(bodies((await curl('http://web/exact')).body)[0]?.name).toBe('web-v2');
    // The control plane writes the status into the API (the status subresource): kubectl shows it.
    const kc = (await ambit(['local', 'kubeconfig', '--path', '--name', CLUSTER])).stdout.trim();
    const accepted = await waitFor('the route status in the API', async () => {
      const r = await runCmd('kubectl', [
        '--kubeconfig',
        kc,
        'get',
        'httproute',
        'web',
        '-n',
        NS,
        '-o',
        'jsonpath={.status.parents[0].controllerName} {.status.parents[0].conditions[?(@.type=="Accepted")].status}',
      ]);
      return r.stdout.endsWith('True') && r.stdout;
    });
    expect(accepted).toBe('ambit.dev/gateway-controller True');
    const gw = await runCmd('kubectl', ['--kubeconfig', kc, 'get', 'gateways', '-n', NS]);
    const vip = cluster.state.services.find((x) => x.name === 'waypoint')?.vips[0] ?? 'none';
    expect(gw.stdout).toMatch(
      new RegExp(`^waypoint\\s+ambit-waypoint\\s+${vip.replace(/\./g, '\\.')}\\s+True\\s+`, 'm'),
    );
  });

  test('ambit explain shows the route that matched, the backends with their shares, retry, timeouts and the hops', async () => {
    const r = await ambit(['explain', '--name', CLUSTER, '-n', NS, 'client', 'http://web/split/x']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/waypoint l7\/waypoint/);
    expect(r.stdout).toMatch(/route: HTTPRoute\/l7\/web rule 5/);
    expect(r.stdout).toMatch(/backend l7\/web-v1:80: 90%/);
    expect(r.stdout).toMatch(/backend l7\/web-v2:80: 10%/);
    const slow = await ambit([
      'explain',
      '--name',
      CLUSTER,
      '-n',
      NS,
      'client',
      'http://flaky/retry/1',
      '-o',
      'json',
    ]);
    const e = JSON.parse(slow.stdout) as { l7: { retry: string; timeouts: string; route: string } };
    expect(e.l7.route).toBe('HTTPRoute/l7/flaky rule 0');
    expect(e.l7.retry).toMatch(/up to 3 retries on 503/);
  });

  test('bad input: an oversized request head gets 431, protocol garbage 400, and the waypoint keeps serving', async () => {
    const big = await curl('http://web/app/big', [
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-H',
      `x-big: ${'a'.repeat(20_000)}`,
    ]);
    expect(big.body).toBe('431');
    const garbage = await inClient([
      'bash',
      '-c',
      "exec 3<>/dev/tcp/web/80; printf 'NOT HTTP AT ALL\\r\\n\\r\\n' >&3; timeout 5 head -c 100 <&3",
    ]);
    expect(garbage.stdout).toMatch(/^HTTP\/1.1 400/);
    expect(bodies((await curl('http://web/exact')).body)[0]?.name).toBe('web-v2');
    const log = cluster.waypointLog();
    // The log names the peer (its identity) and why.
    expect(log).toMatch(
      /"peer":"spiffe:\/\/cluster.local\/ns\/l7\/sa\/client".*"msg":"bad HTTP\/1.1 request"/,
    );
  });

  test('ambit waypoint apply --enroll-namespace makes a waypoint for another namespace; delete removes it', async () => {
    const apply = await ambit([
      'waypoint',
      'apply',
      '--name',
      CLUSTER,
      '-n',
      'consumer',
      '--enroll-namespace',
    ]);
    expect(apply.code, apply.stderr).toBe(0);
    expect(readFileSync(join(cluster.manifests, 'namespace.yaml'), 'utf8')).toMatch(
      /ambit.dev\/use-waypoint: waypoint/,
    );
    const listed = await waitFor(
      'the new waypoint to be programmed',
      async () => {
        const r = await ambit(['waypoint', 'list', '--name', CLUSTER, '-A', '-o', 'json']);
        const gws = JSON.parse(r.stdout) as {
          namespace: string;
          status: { conditions: { type: string; status: string }[] };
        }[];
        const c = gws.find((g) => g.namespace === 'consumer');
        return c?.status.conditions.find((x) => x.type === 'Programmed')?.status === 'True' && gws;
      },
      90_000,
    );
    expect(listed.map((g) => g.namespace).sort()).toEqual(['consumer', NS]);
    const del = await ambit(['waypoint', 'delete', 'waypoint', '--name', CLUSTER, '-n', 'consumer']);
    expect(del.code, del.stderr).toBe(0);
    expect(readFileSync(join(cluster.manifests, 'namespace.yaml'), 'utf8')).not.toMatch(
      /use-waypoint: waypoint\n.*name: consumer/,
    );
    await waitFor(
      'the waypoint to be gone',
      async () => {
        const r = await ambit(['waypoint', 'list', '--name', CLUSTER, '-A', '-o', 'json']);
        return !(JSON.parse(r.stdout) as { namespace: string }[]).some((g) => g.namespace === 'consumer');
      },
      60_000,
    );
  });

  test("the waypoint's objects are the control plane's: owned by the Gateway, re-applied when edited, gone with the Gateway", async () => {
    const kubectl = (...args: string[]) => cluster.kubectl(...args);
    const json = async (...args: string[]) => {
      const r = await kubectl('get', ...args, '-o', 'json', '--show-managed-fields');
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as ApiObject;
    };
    const gw = await json('gateway', 'waypoint', '-n', NS);
    const objects = await json(
      'deploy,svc,sa',
      '-n',
      NS,
      '-l',
      'gateway.networking.k8s.io/gateway-name=waypoint',
    );
    expect(objects.items.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'Deployment/waypoint',
      'Service/waypoint',
      'ServiceAccount/waypoint',
    ]);
    for (const o of objects.items) {
      expect(o.metadata.ownerReferences, o.kind).toEqual([
        {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'Gateway',
          name: 'waypoint',
          uid: gw.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
      expect(
        o.metadata.managedFields.map((m) => `${m.manager}/${m.operation}`),
        o.kind,
      ).toEqual(['ambit-control-plane/Apply']);
    }
    // None of it was written into the user's manifests.
    for (const f of readdirSync(cluster.manifests))
      expect(readFileSync(join(cluster.manifests, f), 'utf8'), f).not.toMatch(
        /ownerReferences|ambit-control-plane/,
      );

    // A hand edit: replicas (the control plane's field) is reverted; an added env var (not its) stays.
    expect((await kubectl('scale', 'deployment/waypoint', '-n', NS, '--replicas', '2')).code).toBe(0);
    expect((await kubectl('set', 'env', 'deployment/waypoint', '-n', NS, 'EXTRA=kept')).code).toBe(0);
    const edited = await waitFor(
      'the replicas to be re-applied',
      async () => {
        const d = await json('deployment', 'waypoint', '-n', NS);
        return d.spec.replicas === 1 && d;
      },
      30_000,
    );
    expect(edited.spec.template.spec.containers[0]?.env).toContainEqual({ name: 'EXTRA', value: 'kept' });
    // The pod runs what the API says: one waypoint pod, started with the extra variable.
    const pods = await waitFor(
      'one waypoint pod with EXTRA',
      async () => {
        const p = (await status(CLUSTER)).pods.filter(
          (x) => x.namespace === NS && x.name.startsWith('waypoint-'),
        );
        if (p.length !== 1 || !p[0]!.ready) return false;
        const environ = readFileSync(`/proc/${p[0]!.containers[0]!.pid}/environ`, 'utf8');
        return environ.split('\0').includes('EXTRA=kept') && p;
      },
      90_000,
    );
    expect(pods).toHaveLength(1);

    // Deleting the Gateway removes its objects, and the waypoint pods stop.
    expect((await kubectl('delete', 'gateway', 'waypoint', '-n', NS)).code).toBe(0);
    await waitFor(
      'the waypoint objects and pods to be gone',
      async () => {
        const left = await json(
          'deploy,svc,sa',
          '-n',
          NS,
          '-l',
          'gateway.networking.k8s.io/gateway-name=waypoint',
        );
        const running = (await status(CLUSTER)).pods.filter(
          (x) => x.namespace === NS && x.name.startsWith('waypoint-'),
        );
        return left.items.length === 0 && running.length === 0;
      },
      60_000,
    );
  });
});
