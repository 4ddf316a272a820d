import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type OriginalDestination, workloadId } from '../../src/bpf/redirect-maps.js';
import type { ClusterConfigObject, ClusterResource } from '../../src/cluster/resources.js';
import { MemoryClusterSource } from '../../src/cluster/source-memory.js';
import { type ControlPlane, startControlPlane } from '../../src/control-plane/app.js';
import { TRUST_BUNDLE } from '../../src/identity/ca.js';
import { withdrawAgentReady, writeAgentReady } from '../../src/node/agent-ready.js';
import { type NodeProxy, startNodeProxy } from '../../src/node-proxy/app.js';
import type { Redirection } from '../../src/node-proxy/redirection.js';
import { createRootLogger } from '../../src/telemetry/logger.js';
import { AMBIENT_NS, slicesOf, snapEndpoint, snapPod, snapService } from '../unit/cluster-fixtures.js';
import { NODE_SA, reviewerFor, signingKey, writeNodeTokens } from './node-credentials.js';

/*
 * The node proxy in-process, unprivileged: two node proxies (node-a on 127.0.0.1, node-b on 127.0.0.2)
 * with config and certificates from an in-process control plane over real gRPC and TLS, carrying a
 * connection over real HBONE (mutual TLS 1.3, HTTP/2 CONNECT) on loopback. Only the eBPF part is a
 * stand-in: a table that says where a client's connection was going, as the kernel's map would.
 */

const log = createRootLogger({ name: 'node-proxy-it', level: 'fatal' });
const TD = 'cluster.local';
const CLIENT_IP = '127.0.0.11';
const BACKEND_IP = '127.0.0.21';
const VIP = '10.96.0.50';

/** Where each client address's next connection was going (what the eBPF map records per connection). */
class FakeRedirection implements Redirection {
  readonly next = new Map<string, OriginalDestination>();
  constructor(private readonly host: string) {}
  async open() {
    return { take: (peerIp: string) => this.next.get(peerIp), close: () => undefined };
  }
  registerOutbound(): void {}
  inboundListen(_family: 4 | 6, _port: number) {
    return { host: this.host, port: 0 };
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

/** Sends `text` through the proxy as the client pod; resolves with what came back, or how it ended. */
function exchange(proxyPort: number, text: string): Promise<{ data: string; error?: string }> {
  return new Promise((resolve) => {
    const c = connect({ host: '127.0.0.1', port: proxyPort, localAddress: CLIENT_IP });
    let data = '';
    let error: string | undefined;
    c.on('data', (d: Buffer) => {
      data += d.toString();
    });
    c.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    c.on('connect', () => c.end(text));
    c.on('close', () => resolve(error === undefined ? { data } : { data, error }));
  });
}

async function metric(p: NodeProxy, name: string, labels: Record<string, string>): Promise<number> {
  const m = await p.registry.getSingleMetric(name)?.get();
  return (m?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((n, v) => n + v.value, 0);
}

describe('the node proxy, in-process, with a real control plane and real HBONE', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-node-proxy-'));
  const agentReadyFile = join(dir, 'run', 'agent-ready.json');
  const stop = new AbortController();
  let backend: Server;
  let backendPort: number;
  let cp: ControlPlane;
  let source: MemoryClusterSource;
  let base: ClusterResource[];
  const redirect = { a: new FakeRedirection('127.0.0.1'), b: new FakeRedirection('127.0.0.2') };
  const proxies: Record<'a' | 'b', NodeProxy | undefined> = { a: undefined, b: undefined };

  beforeAll(async () => {
    backend = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => backend.listen(0, BACKEND_IP, r));
    backendPort = (backend.address() as AddressInfo).port;
    const svc = snapService('backend', {
      vips: [VIP],
      ports: [{ port: 80, targetPort: backendPort, protocol: 'TCP' }],
      endpoints: [snapEndpoint('backend', { node: 'node-b', ports: { '80': backendPort } })],
    });
    const { endpoints: _e, ...service } = svc;
    base = [
      { kind: 'Namespace', name: 'shop', labels: AMBIENT_NS },
      { kind: 'Node', name: 'node-a', addresses: ['127.0.0.1'] },
      { kind: 'Node', name: 'node-b', addresses: ['127.0.0.2'] },
      snapPod('client', { node: 'node-a', ips: [CLIENT_IP], serviceAccount: 'client' }),
      snapPod('backend', { node: 'node-b', ips: [BACKEND_IP], serviceAccount: 'backend' }),
      service,
      ...slicesOf(svc),
    ];
    source = new MemoryClusterSource(base);
    const nodeKey = signingKey();
    await writeNodeTokens(dir, nodeKey, ['a', 'b']);
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
      reviewerFor(nodeKey),
      log,
    );
    const hbonePort = await freePort('127.0.0.1');
    for (const n of ['a', 'b'] as const) {
      proxies[n] = await startNodeProxy(
        {
          node: `node-${n}`,
          trustDomain: TD,
          outboundIps: [n === 'a' ? '127.0.0.1' : '127.0.0.2'],
          outboundPort: 0,
          metricsPort: 0,
          readinessPort: 0,
          adminPort: 0,
          bpfDir: '',
          controlPlane: `127.0.0.1:${cp.ports.grpc}`,
          caBundle: join(dir, 'ca', TRUST_BUNDLE),
          tokenFile: join(dir, `token-${n}`),
          hboneIps: [n === 'a' ? '127.0.0.1' : '127.0.0.2'],
          hbonePort,
          inboundPort: 0,
          certTtlSeconds: 0,
          logLevel: 'fatal',
          // node-a waits for its node agent's claim, as in the DaemonSet; node-b runs without one.
          ...(n === 'a' ? { agentReadyFile } : {}),
        },
        { redirection: redirect[n] },
        log,
        stop.signal,
      );
    }
  });

  afterAll(async () => {
    stop.abort();
    await Promise.all([proxies.a?.stop(), proxies.b?.stop()]);
    await cp?.stop();
    backend?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const toVip = (): void => {
    redirect.a.next.set(CLIENT_IP, {
      ip: VIP,
      port: 80,
      family: 4,
      cgroupId: 1n,
      workloadId: workloadId('uid-client'),
    });
  };

  test('a connection to a Service VIP goes over HBONE to the other node and back, with both identities proven', async () => {
    toVip();
    expect(await exchange(proxies.a!.ports.outbound[0]!, 'ping')).toEqual({ data: 'ping' });
    const peers = {
      source_principal: `spiffe://${TD}/ns/shop/sa/client`,
      destination_principal: `spiffe://${TD}/ns/shop/sa/backend`,
      connection_security_policy: 'mutual_tls',
      destination_service: 'backend.shop.svc.cluster.local',
    };
    expect(
      await metric(proxies.a!, 'istio_tcp_connections_opened_total', { reporter: 'source', ...peers }),
    ).toBe(1);
    await expect
      .poll(() =>
        metric(proxies.b!, 'istio_tcp_connections_closed_total', { reporter: 'destination', ...peers }),
      )
      .toBe(1);
    expect(await metric(proxies.b!, 'istio_tcp_received_bytes_total', { reporter: 'destination' })).toBe(4);
  });

  test('a DENY pushed by the control plane is enforced at the destination for the next connection', async () => {
    const deny: ClusterConfigObject = {
      kind: 'AuthorizationPolicy',
      namespace: 'shop',
      name: 'deny-client',
      parsed: {
        kind: 'AuthorizationPolicy',
        value: {
          kind: 'AuthorizationPolicy',
          namespace: 'shop',
          name: 'deny-client',
          selector: { app: 'backend' },
          action: 'DENY',
          rules: [{ from: [{ principals: [`${TD}/ns/shop/sa/client`] }] }],
        },
      },
      issues: [],
    };
    source.set([
      ...base.map((r) =>
        r.kind === 'Pod' && r.name === 'backend' ? { ...r, labels: { app: 'backend' } } : r,
      ),
      deny,
    ]);
    await expect
      .poll(async () => {
        toVip();
        return (await exchange(proxies.a!.ports.outbound[0]!, 'again')).data;
      })
      .toBe('');
    expect(
      await metric(proxies.b!, 'istio_tcp_connections_failed_total', { response_flags: 'DENY' }),
    ).toBeGreaterThan(0);
    // The source side sees the tunnel refused with 401: a DENY, too.
    expect(
      await metric(proxies.a!, 'istio_tcp_connections_failed_total', {
        reporter: 'source',
        response_flags: 'DENY',
      }),
    ).toBeGreaterThan(0);
    source.set(base);
    await expect
      .poll(async () => {
        toVip();
        return (await exchange(proxies.a!.ports.outbound[0]!, 'back')).data;
      })
      .toBe('back');
  });

  test("readiness waits for the node agent's claim (links attached, first view reconciled), with the reason", async () => {
    const probe = async (p: NodeProxy): Promise<{ status: number; body: string }> => {
      const res = await fetch(`http://127.0.0.1:${p.ports.readiness}/healthz/ready`);
      return { status: res.status, body: await res.text() };
    };
    // Listening with config, but the agent has not claimed readiness: not ready, and why.
    expect(await probe(proxies.a!)).toEqual({
      status: 503,
      body: `not ready: node agent not ready: ${agentReadyFile} is missing (redirect links not attached or first cluster view not reconciled yet)\n`,
    });
    expect(await probe(proxies.b!)).toEqual({ status: 200, body: 'ready\n' });
    const claim = {
      node: 'node-a',
      podsCgroup: '/sys/fs/cgroup/kubepods.slice',
      links: { connect4: [7], connect6: [8] },
      cluster: { pods: 2, namespaces: 1, enrolled: 1 },
      readyAt: new Date().toISOString(),
      refreshedAt: new Date().toISOString(),
    };
    writeAgentReady(agentReadyFile, { ...claim, node: 'node-b' });
    expect(await probe(proxies.a!)).toMatchObject({
      status: 503,
      body: expect.stringMatching(/is for node "node-b"/),
    });
    // A claim nobody refreshes (a killed agent's, left on the host path): not ready, and why.
    writeAgentReady(agentReadyFile, {
      ...claim,
      refreshedAt: new Date(Date.now() - 3_600_000).toISOString(),
    });
    expect(await probe(proxies.a!)).toMatchObject({
      status: 503,
      body: expect.stringMatching(/was last refreshed at .* more than 15s .*is the node agent running\?/),
    });
    writeAgentReady(agentReadyFile, claim);
    expect(await probe(proxies.a!)).toEqual({ status: 200, body: 'ready\n' });
    // The agent stops (withdraws its claim): the node proxy is no longer ready.
    withdrawAgentReady(agentReadyFile);
    expect(await probe(proxies.a!)).toMatchObject({ status: 503, body: expect.stringMatching(/is missing/) });
  });

  test('a connection the eBPF programs did not redirect is refused (no loop): no original destination', async () => {
    redirect.a.next.clear();
    const r = await exchange(proxies.a!.ports.outbound[0]!, 'x');
    expect(r.data).toBe('');
    expect(
      await metric(proxies.a!, 'istio_tcp_connections_failed_total', { response_flags: 'NR' }),
    ).toBeGreaterThan(0);
  });
});
