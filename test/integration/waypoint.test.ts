import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { createServer as createH2Server, type Http2Server, connect as h2connect } from 'node:http2';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from 'vitest';
import { type OriginalDestination, workloadId } from '../../src/bpf/redirect-maps.js';
import type { ClusterConfigObject, ClusterResource } from '../../src/cluster/resources.js';
import { MemoryClusterSource } from '../../src/cluster/source-memory.js';
import { Fields } from '../../src/config/field-reader.js';
import { type ControlPlane, startControlPlane } from '../../src/control-plane/app.js';
import type { HttpRoute, HttpRouteRule } from '../../src/gateway-api/types.js';
import { TRUST_BUNDLE } from '../../src/identity/ca.js';
import { issueServiceAccountToken } from '../../src/identity/service-account-token.js';
import { startWaypoint, type Waypoint } from '../../src/l7-waypoint/app.js';
import { type NodeProxy, startNodeProxy } from '../../src/node-proxy/app.js';
import type { Redirection } from '../../src/node-proxy/redirection.js';
import { createRootLogger } from '../../src/telemetry/logger.js';
import { parseBackendTrafficPolicy } from '../../src/traffic-policy/parse-backend-traffic-policy.js';
import {
  AMBIENT_NS,
  slicesOf,
  snapEndpoint,
  snapGateway,
  snapPod,
  snapService,
} from '../unit/cluster-fixtures.js';
import { NODE_SA, reviewerFor, signingKey, writeNodeTokens } from './node-credentials.js';

/*
 * A waypoint in-process, unprivileged, with every hop real: a client's connection to a Service VIP
 * goes from node-a's proxy over HBONE to the waypoint (127.0.0.3:15008, its own identity), which
 * routes each request and sends it over HBONE to node-b's proxy, which hands it to the backend.
 * Only eBPF is a stand-in (a table of original destinations).
 */

const log = createRootLogger({
  name: 'waypoint-it',
  level: (process.env.IT_LOG as 'debug' | undefined) ?? 'fatal',
});
const TD = 'cluster.local';
const CLIENT_IP = '127.0.0.11';
const WAYPOINT_IP = '127.0.0.3';
const V1_IP = '127.0.0.21';
const V2_IP = '127.0.0.22';
const H2_IP = '127.0.0.23';
const VIP = '10.96.0.50';
const H2_VIP = '10.96.0.51';

class FakeRedirection implements Redirection {
  dst: OriginalDestination | undefined;
  async open() {
    return { take: () => this.dst, close: () => undefined };
  }
  registerOutbound(): void {}
  inboundListen(_family: 4 | 6, _port: number) {
    return { host: '127.0.0.1', port: 0 };
  }
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, host, () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** A BackendTrafficPolicy in shop from its spec (as the cluster source parses it); throws on an error. */
function trafficPolicy(name: string, spec: Record<string, unknown>): ClusterConfigObject {
  const errors: string[] = [];
  const fields = Fields.of(spec, ['spec'], {
    error: (path, m) => errors.push(`${path.join('.')}: ${m}`),
    warn: () => undefined,
  });
  const value = fields && parseBackendTrafficPolicy(fields, { namespace: 'shop', name });
  if (value === undefined) throw new Error(`BackendTrafficPolicy ${name}: ${errors.join('; ')}`);
  return {
    kind: 'BackendTrafficPolicy',
    namespace: 'shop',
    name,
    parsed: { kind: 'BackendTrafficPolicy', value },
    issues: [],
  };
}

interface Seen {
  name: string;
  method: string;
  path: string;
  headers: Record<string, unknown>;
}

/** An HTTP/1.1 backend that says who it is and what it got; `/fail-every-2nd` fails every other request. */
function backend(name: string, seen: Seen[]): Server {
  let n = 0;
  return createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      seen.push({ name, method: req.method ?? '', path: req.url ?? '', headers: req.headers });
      if (req.url?.startsWith('/v2-fails') && name === 'v2') {
        res.writeHead(500).end('broken');
        return;
      }
      if (req.url?.startsWith('/fail-every-2nd') && n++ % 2 === 0) {
        res.writeHead(503).end('try again');
        return;
      }
      if (req.url?.startsWith('/slow')) {
        setTimeout(() => res.writeHead(200).end('late'), 1500);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': name });
      res.end(JSON.stringify({ name, path: req.url, body, traceparent: req.headers.traceparent ?? null }));
    });
  }).on('upgrade', (req, socket) => {
    // `/never`: no answer; `/refuse-then-reset`: a 403 of unknown length, then the connection breaks.
    if (req.url === '/never') return;
    if (req.url === '/refuse-then-reset') {
      socket.write('HTTP/1.1 403 Forbidden\r\n\r\npartial body');
      setTimeout(() => (socket as Socket).resetAndDestroy(), 50);
      return;
    }
    const switched = () => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n');
      socket.pipe(socket);
    };
    if (req.url === '/slow-ws') setTimeout(switched, 300);
    else switched();
  });
}

describe('the waypoint, in-process, with a real control plane, node proxies and HBONE', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-waypoint-'));
  const stop = new AbortController();
  const seen: Seen[] = [];
  const servers: (Server | Http2Server)[] = [];
  const redirect = { a: new FakeRedirection(), b: new FakeRedirection() };
  const proxies: NodeProxy[] = [];
  let cp: ControlPlane;
  let source: MemoryClusterSource;
  let waypoint: Waypoint | undefined;
  let base: ClusterResource[];
  let port = 0;

  const route = (
    name: string,
    rules: HttpRouteRule[],
    extra: Partial<HttpRoute> = {},
  ): ClusterConfigObject => ({
    kind: 'HTTPRoute',
    namespace: 'shop',
    name,
    parsed: {
      kind: 'HTTPRoute',
      value: {
        namespace: 'shop',
        name,
        labels: {},
        parentRefs: [{ group: '', kind: 'Service', name: 'web', port: 80 }],
        hostnames: [],
        rules,
        ...extra,
      },
    },
    issues: [],
  });
  const to = (name: string, weight = 1) => ({
    group: '',
    kind: 'Service',
    name,
    port: 80,
    weight,
    filters: [],
  });
  const prefix = (value: string) => ({
    path: { type: 'PathPrefix' as const, value },
    headers: [],
    queryParams: [],
  });

  beforeAll(async () => {
    const v1 = backend('v1', seen);
    const v2 = backend('v2', seen);
    await new Promise<void>((r) => v1.listen(0, V1_IP, r));
    port = (v1.address() as AddressInfo).port;
    await new Promise<void>((r) => v2.listen(port, V2_IP, r));
    const h2 = createH2Server();
    h2.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'ok' }));
      stream.end(`h2 ${headers[':path']}`);
    });
    await new Promise<void>((r) => h2.listen(port, H2_IP, r));
    servers.push(v1, v2, h2);
    const svc = (name: string, vip: string, eps: { pod: string; ip: string }[], appProtocol?: string) =>
      snapService(name, {
        vips: [vip],
        labels: {},
        ports: [
          {
            name: 'http',
            port: 80,
            targetPort: port,
            protocol: 'TCP',
            ...(appProtocol === undefined ? {} : { appProtocol }),
          },
        ],
        endpoints: eps.map((e) =>
          snapEndpoint(e.pod, { node: 'node-b', ips: [e.ip], ports: { http: port } }),
        ),
      });
    const services = [
      svc('web', VIP, [
        { pod: 'web-v1', ip: V1_IP },
        { pod: 'web-v2', ip: V2_IP },
      ]),
      svc('web-v1', '10.96.0.61', [{ pod: 'web-v1', ip: V1_IP }]),
      svc('web-v2', '10.96.0.62', [{ pod: 'web-v2', ip: V2_IP }]),
      svc('grpc', H2_VIP, [{ pod: 'grpc', ip: H2_IP }], 'grpc'),
      snapService('waypoint', {
        vips: ['10.96.0.100'],
        ports: [{ name: 'mesh', port: 15008, targetPort: 15008, protocol: 'TCP' }],
        endpoints: [
          snapEndpoint('waypoint-0', { node: 'node-a', ips: [WAYPOINT_IP], ports: { mesh: 15008 } }),
        ],
      }),
    ];
    base = [
      { kind: 'Namespace', name: 'shop', labels: { ...AMBIENT_NS, 'ambit.dev/use-waypoint': 'waypoint' } },
      { kind: 'Node', name: 'node-a', addresses: ['127.0.0.1'] },
      { kind: 'Node', name: 'node-b', addresses: ['127.0.0.2'] },
      snapPod('client', { node: 'node-a', ips: [CLIENT_IP], serviceAccount: 'client' }),
      snapPod('web-v1', {
        node: 'node-b',
        ips: [V1_IP],
        serviceAccount: 'web',
        labels: { app: 'web', version: 'v1' },
      }),
      snapPod('web-v2', {
        node: 'node-b',
        ips: [V2_IP],
        serviceAccount: 'web',
        labels: { app: 'web', version: 'v2' },
      }),
      snapPod('grpc', { node: 'node-b', ips: [H2_IP], serviceAccount: 'grpc' }),
      snapPod('waypoint-0', {
        node: 'node-a',
        ips: [WAYPOINT_IP],
        serviceAccount: 'waypoint',
        labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint', 'ambit.dev/dataplane-mode': 'none' },
      }),
      ...services.map(({ endpoints: _e, ...s }) => s),
      ...services.flatMap(slicesOf),
      {
        kind: 'Gateway',
        namespace: 'shop',
        name: 'waypoint',
        parsed: { kind: 'Gateway', value: snapGateway('waypoint') },
        issues: [],
      },
    ];
    source = new MemoryClusterSource(base);
    const key = signingKey();
    await writeNodeTokens(dir, key, ['a', 'b']);
    const token = await issueServiceAccountToken(
      key,
      {
        namespace: 'shop',
        serviceAccount: 'waypoint',
        pod: 'waypoint-0',
        podUid: 'uid-waypoint-0',
        node: 'node-a',
      },
      3600,
      Math.floor(Date.now() / 1000),
    );
    writeFileSync(join(dir, 'token-waypoint'), `${token}\n`);
    cp = await startControlPlane(
      {
        listenHost: '127.0.0.1',
        grpcPort: 0,
        monitoringPort: 0,
        adminPort: 0,
        trustDomain: TD,
        caDir: join(dir, 'ca'),
        nodeServiceAccount: NODE_SA,
        kube: { inCluster: {} },
        certTtlSeconds: 3600,
        maxCertTtlSeconds: 86_400,
        logLevel: 'fatal',
        waypoints: { image: 'ambit:test', controlPlane: '127.0.0.1:15012' },
      },
      source,
      reviewerFor(key),
      log,
    );
    const hbonePort = await freePort('127.0.0.1');
    for (const n of ['a', 'b'] as const) {
      const ip = n === 'a' ? '127.0.0.1' : '127.0.0.2';
      const p = await startNodeProxy(
        {
          node: `node-${n}`,
          trustDomain: TD,
          outboundIps: [ip],
          outboundPort: 0,
          metricsPort: 0,
          readinessPort: 0,
          adminPort: 0,
          bpfDir: '',
          controlPlane: `127.0.0.1:${cp.ports.grpc}`,
          caBundle: join(dir, 'ca', TRUST_BUNDLE),
          tokenFile: join(dir, `token-${n}`),
          hboneIps: [ip],
          hbonePort,
          inboundPort: 0,
          certTtlSeconds: 0,
          logLevel: 'fatal',
        },
        { redirection: redirect[n] },
        log,
        stop.signal,
      );
      proxies.push(p!);
    }
    waypoint = await startWaypoint(
      {
        gateway: 'waypoint',
        namespace: 'shop',
        pod: 'waypoint-0',
        node: 'node-a',
        podIp: WAYPOINT_IP,
        serviceAccount: 'waypoint',
        trustDomain: TD,
        controlPlane: `127.0.0.1:${cp.ports.grpc}`,
        caBundle: join(dir, 'ca', TRUST_BUNDLE),
        tokenFile: join(dir, 'token-waypoint'),
        hbonePort: 15008,
        nodeHbonePort: hbonePort,
        metricsPort: 0,
        readinessPort: 0,
        adminPort: 0,
        traceSampling: 1,
        certTtlSeconds: 0,
        logLevel: 'fatal',
      },
      {},
      log,
      stop.signal,
    );
  }, 30_000);

  afterAll(async () => {
    stop.abort();
    await waypoint?.stop();
    await Promise.all(proxies.map((p) => p.stop()));
    await cp?.stop();
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** An HTTP/1.1 request from the client pod to a VIP, through node-a's proxy (a new connection each time). */
  function get(
    path: string,
    headers: Record<string, string> = {},
    vip = VIP,
  ): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
    redirect.a.dst = { ip: vip, port: 80, family: 4, cgroupId: 1n, workloadId: workloadId('uid-client') };
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: proxies[0]!.ports.outbound[0]!,
          localAddress: CLIENT_IP,
          path,
          headers: { host: 'web.shop.svc.cluster.local', ...headers },
          agent: false,
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => {
            body += c.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  async function requests(labels: Record<string, string>): Promise<number> {
    const m = await waypoint!.registry.getSingleMetric('istio_requests_total')?.get();
    return (m?.values ?? [])
      .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
      .reduce((n, v) => n + v.value, 0);
  }

  const setRoutes = async (routes: ClusterConfigObject[], probe: () => Promise<boolean>) => {
    source.set([...base, ...routes]);
    await expect.poll(probe, { timeout: 10_000 }).toBe(true);
  };

  test('with no route, a request to the Service goes through the waypoint to one of its endpoints', async () => {
    await expect
      .poll(async () => (await get('/hello').catch(() => ({ status: 0 }))).status, { timeout: 15_000 })
      .toBe(200);
    const r = await get('/hello');
    expect(['v1', 'v2']).toContain(JSON.parse(r.body).name);
    expect(
      await requests({
        reporter: 'waypoint',
        source_principal: `spiffe://${TD}/ns/shop/sa/client`,
        destination_principal: `spiffe://${TD}/ns/shop/sa/web`,
        destination_service: 'web.shop.svc.cluster.local',
        response_code: '200',
        request_protocol: 'http',
      }),
    ).toBeGreaterThanOrEqual(2);
  });

  test('a header match sends that user to v2; everyone else to v1; an unmatched path gets 404', async () => {
    await setRoutes(
      [
        route('canary', [
          // The same path with a header match ranks first (the spec's precedence: path, method, headers).
          { matches: [prefix('/app')], filters: [], backendRefs: [to('web-v1')] },
          {
            matches: [
              { ...prefix('/app'), headers: [{ name: 'x-user', match: { type: 'Exact', value: 'a' } }] },
            ],
            filters: [],
            backendRefs: [to('web-v2')],
          },
        ]),
      ],
      async () => (await get('/nothing-here')).status === 404,
    );
    for (let i = 0; i < 5; i++) {
      expect(JSON.parse((await get('/app/x', { 'x-user': 'a' })).body).name).toBe('v2');
      expect(JSON.parse((await get('/app/x')).body).name).toBe('v1');
    }
    const miss = await get('/nothing-here');
    expect(miss.status).toBe(404);
    expect(await requests({ response_code: '404', response_flags: 'NR' })).toBeGreaterThan(0);
  });

  test('filters: request headers set, a rewritten prefix, a redirect', async () => {
    await setRoutes(
      [
        route('filters', [
          {
            matches: [prefix('/old')],
            filters: [
              {
                type: 'RequestRedirect',
                redirect: { path: { type: 'ReplacePrefixMatch', value: '/new' }, statusCode: 301 },
              },
            ],
            backendRefs: [],
          },
          {
            matches: [prefix('/api')],
            filters: [
              {
                type: 'RequestHeaderModifier',
                headers: { set: [{ name: 'x-added', value: 'yes' }], add: [], remove: [] },
              },
              { type: 'URLRewrite', rewrite: { path: { type: 'ReplacePrefixMatch', value: '/v2api' } } },
              {
                type: 'ResponseHeaderModifier',
                headers: { set: [{ name: 'x-route', value: 'filters' }], add: [], remove: [] },
              },
            ],
            backendRefs: [to('web-v1')],
          },
        ]),
      ],
      async () => (await get('/old/page')).status === 301,
    );
    const r = await get('/old/page?q=1');
    expect(r.status).toBe(301);
    expect(r.headers.location).toBe('http://web.shop.svc.cluster.local/new/page?q=1');
    seen.length = 0;
    const ok = await get('/api/items');
    expect(ok.status).toBe(200);
    expect(ok.headers['x-route']).toBe('filters');
    expect(seen.at(-1)).toMatchObject({ name: 'v1', path: '/v2api/items', headers: { 'x-added': 'yes' } });
  });

  test('retries hide a backend that fails every other request; a slow one gets 504 at the request timeout', async () => {
    await setRoutes(
      [
        route('resilience', [
          {
            matches: [prefix('/fail-every-2nd')],
            filters: [],
            backendRefs: [to('web-v1')],
            retry: { codes: [503], attempts: 2, backoffMs: 10 },
          },
          {
            matches: [prefix('/slow')],
            filters: [],
            backendRefs: [to('web-v1')],
            timeouts: { requestMs: 300 },
          },
        ]),
      ],
      async () => (await get('/fail-every-2nd')).status === 200,
    );
    for (let i = 0; i < 6; i++) expect((await get('/fail-every-2nd')).status).toBe(200);
    const started = Date.now();
    const slow = await get('/slow');
    expect(slow.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(1200);
    expect(await requests({ response_code: '504', response_flags: 'UT' })).toBe(1);
  });

  test('h2c and gRPC-shaped calls keep their trailers; traceparent is passed on with the same trace id', async () => {
    await setRoutes([], async () => (await get('/nothing-here')).status === 200);
    redirect.a.dst = { ip: H2_VIP, port: 80, family: 4, cgroupId: 1n, workloadId: workloadId('uid-client') };
    const session = h2connect(`http://127.0.0.1:${proxies[0]!.ports.outbound[0]}`, {
      createConnection: () =>
        connect({ host: '127.0.0.1', port: proxies[0]!.ports.outbound[0]!, localAddress: CLIENT_IP }),
    });
    const result = await new Promise<{ status: number; body: string; trailers: Record<string, unknown> }>(
      (resolve, reject) => {
        const s = session.request({
          ':method': 'POST',
          ':path': '/ambit.test.Echo/Unary',
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        let body = '';
        let status = 0;
        s.on('response', (h) => {
          status = Number(h[':status']);
        });
        s.on('data', (c: Buffer) => {
          body += c.toString();
        });
        s.on('trailers', (t) => resolve({ status, body, trailers: t }));
        s.on('error', reject);
        s.end('x');
      },
    );
    session.close();
    expect(result).toMatchObject({
      status: 200,
      body: 'h2 /ambit.test.Echo/Unary',
      trailers: { 'grpc-status': '0' },
    });
    expect(await requests({ request_protocol: 'grpc', grpc_response_status: '0' })).toBe(1);
    const traced = await get('/app/t', {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    expect(JSON.parse(traced.body).traceparent).toMatch(
      /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/,
    );
  });

  test('an Upgrade passes through, with the frames after it', async () => {
    redirect.a.dst = { ip: VIP, port: 80, family: 4, cgroupId: 1n, workloadId: workloadId('uid-client') };
    const got = await new Promise<string>((resolve) => {
      const c = connect({ host: '127.0.0.1', port: proxies[0]!.ports.outbound[0]!, localAddress: CLIENT_IP });
      let data = '';
      c.on('data', (d: Buffer) => {
        data += d.toString();
        if (data.includes('ping-after-upgrade')) {
          c.destroy();
          resolve(data);
        }
      });
      c.on('connect', () => {
        c.write('GET /app/ws HTTP/1.1\r\nhost: web\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n');
        setTimeout(() => c.write('ping-after-upgrade'), 200);
      });
    });
    expect(got).toMatch(/^HTTP\/1.1 101/);
  });

  /**
   * An HTTP/1.1 Upgrade from the client pod to the Service on a raw connection: resolves with what came
   * back once the connection closes or an answer head (a 101) has arrived; `close` ends it.
   */
  function upgrade(path: string, leaveAfterMs?: number): Promise<{ head: string; close: () => void }> {
    redirect.a.dst = { ip: VIP, port: 80, family: 4, cgroupId: 1n, workloadId: workloadId('uid-client') };
    return new Promise((resolve) => {
      const c = connect({ host: '127.0.0.1', port: proxies[0]!.ports.outbound[0]!, localAddress: CLIENT_IP });
      let data = '';
      const done = () => resolve({ head: data, close: () => c.destroy() });
      c.on('data', (d: Buffer) => {
        data += d.toString();
        if (data.startsWith('HTTP/1.1 101') && data.includes('\r\n\r\n')) done();
      });
      c.on('close', done);
      c.on('error', () => undefined);
      c.on('connect', () => {
        c.write(`GET ${path} HTTP/1.1\r\nhost: web\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n`);
        if (leaveAfterMs !== undefined) setTimeout(() => c.destroy(), leaveAfterMs);
      });
    });
  }

  test('a BackendTrafficPolicy holds for Upgrades as for plain requests: 429 RL at the rate limit, FI for an injected abort, the affinity cookie on the 101, UO while maxParallelRequests is held by an upgraded connection', async () => {
    onTestFinished(() => source.set(base));
    const target = { targetRefs: [{ group: '', kind: 'Service', name: 'web' }] };
    await setRoutes(
      [
        trafficPolicy('limits', {
          ...target,
          rateLimit: { type: 'Local', local: { rules: [{ limit: { requests: 2, unit: 'Hour' } }] } },
        }),
      ],
      async () => (await get('/probe')).status === 429,
    );
    const limited = await upgrade('/app/ws');
    expect(limited.head).toMatch(/^HTTP\/1.1 429 local_rate_limited\r\n/);
    expect(limited.head).toMatch(/\r\nx-ratelimit-limit: 2\r\n/i);
    expect(limited.head).toMatch(/\r\nx-envoy-ratelimited: true\r\n/i);
    expect(limited.head).not.toContain('101');
    // The probe's first 429 and the Upgrade's.
    expect(await requests({ response_code: '429', response_flags: 'RL' })).toBe(2);

    await setRoutes(
      [
        trafficPolicy('faults', {
          ...target,
          faultInjection: { abort: { httpStatus: 418, percentage: 100 } },
        }),
      ],
      async () => (await get('/probe')).status === 418,
    );
    expect((await upgrade('/app/ws')).head).toMatch(/^HTTP\/1.1 418 fault filter abort\r\n/);
    expect(await requests({ response_code: '418', response_flags: 'FI' })).toBe(2);

    // Sticky WebSockets: the 101 carries the affinity cookie a ConsistentHash on a cookie sets.
    await setRoutes(
      [
        trafficPolicy('sticky', {
          ...target,
          rateLimit: { type: 'Local', local: { rules: [{ limit: { requests: 1000, unit: 'Second' } }] } },
          loadBalancer: {
            type: 'ConsistentHash',
            consistentHash: { type: 'Cookie', cookie: { name: 'ep', ttl: '1h' } },
          },
        }),
      ],
      async () => 'set-cookie' in (await get('/probe')).headers,
    );
    const sticky = await upgrade('/app/ws');
    sticky.close();
    expect(sticky.head).toMatch(/^HTTP\/1.1 101/);
    expect(sticky.head).toMatch(/\r\nset-cookie: ep=[0-9a-f]+; Max-Age=3600/i);
    expect(sticky.head).toMatch(/\r\nx-ratelimit-limit: 1000\r\n/);

    await setRoutes(
      [trafficPolicy('breaker', { ...target, circuitBreaker: { maxParallelRequests: 1 } })],
      async () => (await get('/probe')).status === 200,
    );
    // An upgraded connection holds its request slot while it lasts: a request alongside overflows.
    let held = await upgrade('/app/ws');
    for (let i = 0; i < 50 && (await get('/hello')).status !== 503; i++) {
      held.close(); // opened before the policy was in force
      held = await upgrade('/app/ws');
    }
    expect(held.head).toMatch(/^HTTP\/1.1 101/);
    const second = await upgrade('/app/ws');
    expect(second.head).toMatch(/^HTTP\/1.1 503 upstream overflow/);
    expect(await requests({ response_code: '503', response_flags: 'UO' })).toBe(2);
    held.close();
    await expect.poll(async () => (await get('/hello')).status, { timeout: 5_000 }).toBe(200);
    const again = await upgrade('/app/ws');
    expect(again.head).toMatch(/^HTTP\/1.1 101/);
    again.close();
    await expect.poll(async () => (await get('/hello')).status, { timeout: 5_000 }).toBe(200);

    // Slots come back however an upgrade ends: the client leaving before the endpoint's 101, or the
    // endpoint refusing and then breaking the connection.
    const left = await upgrade('/slow-ws', 50);
    expect(left.head).toBe('');
    await new Promise((r) => setTimeout(r, 500));
    expect((await get('/hello')).status).toBe(200);
    const refused = await upgrade('/refuse-then-reset');
    expect(refused.head).toMatch(/^HTTP\/1.1 403 Forbidden\r\n/);
    await expect.poll(async () => (await get('/hello')).status, { timeout: 2_000 }).toBe(200);
  });

  test("mirrored requests feed the mirror Service's passive health check: its failing endpoint is ejected", async () => {
    onTestFinished(() => source.set(base));
    const ejections = async () => {
      const m = await waypoint!.registry.getSingleMetric('ambit_outlier_ejections_total')?.get();
      return (m?.values ?? [])
        .filter((v) => v.labels.destination_service === 'web-v2.shop.svc.cluster.local')
        .reduce((n, v) => n + v.value, 0);
    };
    const before = await ejections();
    await setRoutes(
      [
        route('mirrored', [
          {
            matches: [prefix('/v2-fails')],
            filters: [
              {
                type: 'RequestMirror',
                mirror: { backendRef: { group: '', kind: 'Service', name: 'web-v2', port: 80 }, fraction: 1 },
              },
            ],
            backendRefs: [to('web-v1')],
          },
        ]),
        trafficPolicy('v2-health', {
          targetRefs: [{ group: '', kind: 'Service', name: 'web-v2' }],
          healthCheck: {
            passive: { consecutive5XxErrors: 3, alwaysEjectOneEndpoint: true, baseEjectionTime: '30s' },
          },
        }),
      ],
      async () => (await get('/v2-fails/probe')).headers['x-served-by'] === 'v1',
    );
    // The client's answers come from v1; the mirror's 500s from v2 eject it.
    for (let i = 0; i < 5; i++) expect((await get('/v2-fails/x')).status).toBe(200);
    await expect.poll(ejections, { timeout: 5_000 }).toBeGreaterThan(before);
  });

  test("an Upgrade the endpoint never answers gets 504 UT at the route's timeout", async () => {
    onTestFinished(() => source.set(base));
    const timeouts = () => requests({ response_code: '504', response_flags: 'UT' });
    await setRoutes(
      [
        route('upgrade-timeout', [
          {
            matches: [prefix('/never')],
            filters: [],
            backendRefs: [to('web-v1')],
            timeouts: { requestMs: 300 },
          },
        ]),
      ],
      async () => (await get('/never')).status === 200,
    );
    const before = await timeouts();
    const started = Date.now();
    const r = await upgrade('/never');
    expect(r.head).toMatch(/^HTTP\/1.1 504 upstream request timeout\r\n/);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect((await timeouts()) - before).toBe(1);
  });

  test('a waypoint AuthorizationPolicy is enforced on plain requests and on Upgrades alike: 403 RBAC', async () => {
    const policy: ClusterConfigObject = {
      kind: 'AuthorizationPolicy',
      namespace: 'shop',
      name: 'no-ws',
      parsed: {
        kind: 'AuthorizationPolicy',
        value: {
          kind: 'AuthorizationPolicy',
          namespace: 'shop',
          name: 'no-ws',
          targetRefs: [{ kind: 'Service', name: 'web' }],
          action: 'DENY',
          rules: [{ to: [{ paths: ['/app/ws', '/denied'] }] }],
        },
      },
      issues: [],
    };
    await setRoutes([policy], async () => (await get('/denied')).status === 403);
    const denied = await get('/denied');
    expect(denied.body).toBe('RBAC: access denied\n');
    expect((await get('/hello')).status).toBe(200);
    redirect.a.dst = { ip: VIP, port: 80, family: 4, cgroupId: 1n, workloadId: workloadId('uid-client') };
    const got = await new Promise<string>((resolve) => {
      const c = connect({ host: '127.0.0.1', port: proxies[0]!.ports.outbound[0]!, localAddress: CLIENT_IP });
      let data = '';
      c.on('data', (d: Buffer) => {
        data += d.toString();
      });
      c.on('close', () => resolve(data));
      c.on('connect', () =>
        c.write('GET /app/ws HTTP/1.1\r\nhost: web\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n'),
      );
    });
    expect(got).toMatch(/^HTTP\/1.1 403 RBAC: access denied\r\n/);
    // The probe's first 403, the second /denied and the Upgrade.
    expect(await requests({ response_code: '403', response_flags: 'RBAC' })).toBe(3);
    source.set(base);
  });
});
