import { Writable } from 'node:stream';
import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { MeshIndex } from '../../src/mesh/mesh-index.js';

import { ConnectionRecorder, type Direction } from '../../src/telemetry/connection-record.js';
import { IstioTcpMetrics } from '../../src/telemetry/istio-tcp-metrics.js';
import { AMBIENT_NS, snapEndpoint, snapPod, snapService, snapshot, viewOf } from './cluster-fixtures.js';

const mesh = new MeshIndex(
  viewOf(
    snapshot({
      namespaces: [{ name: 'shop', labels: AMBIENT_NS }],
      pods: [
        snapPod('client-5d8f7c9b4-abcde', {
          serviceAccount: 'client-sa',
          labels: { 'pod-template-hash': '5d8f7c9b4', app: 'client' },
          ips: ['10.244.0.9', 'fd00:10:244::9'],
        }),
        snapPod('web-0', { serviceAccount: 'web-sa', labels: { app: 'web' }, ips: ['10.244.1.2'] }),
      ],
      services: [snapService('web', { endpoints: [snapEndpoint('web-0', { ports: { '80': 8080 } })] })],
    }),
    'cluster.local',
  ),
);
const client = mesh.workloadByIp('10.244.0.9')!;
const server = mesh.workloadByIp('10.244.1.2')!;
const webService = mesh.serviceByHost('web.shop.svc.cluster.local')!;

/** A recorder whose access log lines and metrics the test can read. */
function setup() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l !== '') lines.push(JSON.parse(l));
      cb();
    },
  });
  const registry = new Registry();
  const metrics = new IstioTcpMetrics(registry);
  const recorder = new ConnectionRecorder(metrics, pino({ base: undefined, timestamp: false }, stream));
  /** Every series of a metric: its labels and value. */
  const series = async (name: string) => {
    const m = registry.getSingleMetric(name);
    if (m === undefined) throw new Error(`no metric ${name}`);
    return (await m.get()).values.map((v) => ({ labels: v.labels, value: v.value }));
  };
  const total = async (name: string) => (await series(name)).reduce((sum, s) => sum + s.value, 0);
  return { lines, recorder, series, total };
}

const OPENED = 'istio_tcp_connections_opened_total';
const CLOSED = 'istio_tcp_connections_closed_total';
const FAILED = 'istio_tcp_connections_failed_total';
const SENT = 'istio_tcp_sent_bytes_total';
const RECEIVED = 'istio_tcp_received_bytes_total';

describe('ConnectionRecord', () => {
  test('an established outbound connection: one access line, opened/closed once, exact byte counts', async () => {
    const { lines, recorder, series, total } = setup();
    const rec = recorder.start('outbound', { ip: '10.244.0.9', port: 40000 });
    rec.originalDst = { ip: '10.96.0.10', port: 80 };
    rec.srcWorkload = client;
    rec.service = webService;
    rec.dstWorkload = server;
    rec.target = { ip: '10.244.1.2', port: 8080 };
    rec.established();
    expect(recorder.live.has(rec.id)).toBe(true);
    rec.finish({ received: 1234, sent: 56789 });
    expect(recorder.live.has(rec.id)).toBe(false);

    expect(lines).toHaveLength(1);
    expect(lines[0]).toEqual({
      level: 30,
      msg: 'connection complete',
      direction: 'outbound',
      'src.addr': '10.244.0.9:40000',
      'src.workload': 'client-5d8f7c9b4-abcde',
      'src.namespace': 'shop',
      'src.identity': 'spiffe://cluster.local/ns/shop/sa/client-sa',
      'dst.addr': '10.244.1.2:8080',
      'dst.service': 'web.shop.svc.cluster.local',
      'dst.workload': 'web-0',
      'dst.namespace': 'shop',
      'dst.identity': 'spiffe://cluster.local/ns/shop/sa/web-sa',
      original_dst: '10.96.0.10:80',
      bytes_sent: 56789,
      bytes_recv: 1234,
      duration: expect.stringMatching(/^\d+ms$/),
      response_flags: '-',
      connection_security_policy: 'none',
    });

    const labels = {
      reporter: 'source',
      source_workload: 'client',
      source_workload_namespace: 'shop',
      source_principal: 'spiffe://cluster.local/ns/shop/sa/client-sa',
      source_app: 'client',
      source_canonical_service: 'client',
      source_canonical_revision: 'latest',
      source_version: 'unknown',
      source_cluster: 'Kubernetes',
      destination_service: 'web.shop.svc.cluster.local',
      destination_service_name: 'web',
      destination_service_namespace: 'shop',
      destination_workload: 'web-0',
      destination_workload_namespace: 'shop',
      destination_principal: 'spiffe://cluster.local/ns/shop/sa/web-sa',
      destination_app: 'web',
      destination_canonical_service: 'web',
      destination_canonical_revision: 'latest',
      destination_version: 'unknown',
      destination_cluster: 'Kubernetes',
      request_protocol: 'tcp',
      response_flags: '-',
      connection_security_policy: 'none',
    };
    expect(await series(OPENED)).toEqual([{ labels, value: 1 }]);
    expect(await series(CLOSED)).toEqual([{ labels, value: 1 }]);
    expect(await series(RECEIVED)).toEqual([{ labels, value: 1234 }]);
    expect(await series(SENT)).toEqual([{ labels, value: 56789 }]);
    expect(await total(FAILED)).toBe(0);
  });

  test('a connection that never established counts as failed, not opened or closed', async () => {
    const { lines, recorder, series, total } = setup();
    const rec = recorder.start('outbound', { ip: '10.244.0.9', port: 40001 });
    rec.srcWorkload = client;
    rec.service = webService;
    rec.outcome = 'no-healthy-upstream';
    rec.reason = 'service web.shop.svc.cluster.local has no ready endpoint for port 80';
    rec.finish({ received: 0, sent: 0 });

    expect(await total(OPENED)).toBe(0);
    expect(await total(CLOSED)).toBe(0);
    expect(await total(SENT)).toBe(0);
    expect(await total(RECEIVED)).toBe(0);
    const failed = await series(FAILED);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      value: 1,
      labels: {
        response_flags: 'UH',
        destination_service: 'web.shop.svc.cluster.local',
        destination_workload: 'unknown',
      },
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 40,
      msg: 'connection failed',
      response_flags: 'UH',
      error: 'service web.shop.svc.cluster.local has no ready endpoint for port 80',
      bytes_sent: 0,
      bytes_recv: 0,
    });
  });

  test('finish twice writes one line and counts once', async () => {
    const { lines, recorder, total } = setup();
    const rec = recorder.start('outbound', { ip: '10.244.0.9', port: 40002 });
    rec.target = { ip: '93.184.216.34', port: 443 };
    rec.established();
    rec.finish({ received: 10, sent: 20 });
    rec.finish({ received: 10, sent: 20 }, 'downstream: late');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toHaveProperty('error');
    expect(await total(CLOSED)).toBe(1);
    expect(await total(RECEIVED)).toBe(10);
    expect(await total(SENT)).toBe(20);
  });

  test('established twice counts one opened connection; established after finish counts nothing', async () => {
    const { recorder, total } = setup();
    const a = recorder.start('outbound', { ip: '10.244.0.9', port: 40003 });
    a.established();
    a.established();
    const b = recorder.start('outbound', { ip: '10.244.0.9', port: 40004 });
    b.finish({ received: 0, sent: 0 });
    b.established();
    expect(await total(OPENED)).toBe(1);
    expect(await total(FAILED)).toBe(1);
    expect(recorder.live.size).toBe(1);
  });

  test('unknown workloads and no service: labels are unknown, the destination service is the target address', async () => {
    const { lines, recorder, series } = setup();
    const rec = recorder.start('outbound', { ip: 'fd00:10:244::77', port: 40005 });
    rec.target = { ip: '2001:db8::1', port: 443 };
    rec.established();
    rec.finish({ received: 1, sent: 0 }, 'upstream: ECONNRESET');
    expect((await series(OPENED))[0]?.labels).toEqual({
      reporter: 'source',
      source_workload: 'unknown',
      source_workload_namespace: 'unknown',
      source_principal: 'unknown',
      source_app: 'unknown',
      source_canonical_service: 'unknown',
      source_canonical_revision: 'unknown',
      source_version: 'unknown',
      source_cluster: 'unknown',
      destination_service: '2001:db8::1',
      destination_service_name: 'unknown',
      destination_service_namespace: 'unknown',
      destination_workload: 'unknown',
      destination_workload_namespace: 'unknown',
      destination_principal: 'unknown',
      destination_app: 'unknown',
      destination_canonical_service: 'unknown',
      destination_canonical_revision: 'unknown',
      destination_version: 'unknown',
      destination_cluster: 'unknown',
      request_protocol: 'tcp',
      response_flags: '-',
      connection_security_policy: 'none',
    });
    expect(await series(SENT)).toEqual([]);
    expect(lines[0]).toMatchObject({
      'src.addr': '[fd00:10:244::77]:40005',
      'dst.addr': '[2001:db8::1]:443',
      error: 'upstream: ECONNRESET',
    });
    expect(lines[0]).not.toHaveProperty('src.workload');
    expect(lines[0]).not.toHaveProperty('dst.service');
  });

  test('no target and no service: the destination service is unknown', async () => {
    const { recorder, series } = setup();
    const rec = recorder.start('outbound', { ip: '10.244.0.9', port: 40006 });
    rec.outcome = 'no-route';
    rec.finish({ received: 0, sent: 0 });
    expect((await series(FAILED))[0]?.labels).toMatchObject({
      destination_service: 'unknown',
      response_flags: 'NR',
    });
  });

  test.each<{ direction: Direction; reporter: string }>([
    { direction: 'outbound', reporter: 'source' },
    { direction: 'inbound', reporter: 'destination' },
  ])('$direction connections report as $reporter', async ({ direction, reporter }) => {
    const { lines, recorder, series } = setup();
    const rec = recorder.start(direction, { ip: '10.244.0.9', port: 40007 });
    rec.established();
    rec.finish({ received: 5, sent: 5 });
    for (const name of [OPENED, CLOSED, SENT, RECEIVED]) {
      expect((await series(name)).map((s) => s.labels.reporter)).toEqual([reporter]);
    }
    expect(lines[0]).toMatchObject({ direction });
  });

  test('explicit identities and security policy win over the workload identity', async () => {
    const { lines, recorder, series } = setup();
    const rec = recorder.start('inbound', { ip: '10.244.0.9', port: 40008 });
    rec.srcWorkload = client;
    rec.srcIdentity = 'spiffe://other.org/ns/x/sa/y';
    rec.dstWorkload = server;
    rec.securityPolicy = 'mutual_tls';
    rec.established();
    rec.finish({ received: 0, sent: 0 });
    expect((await series(CLOSED))[0]?.labels).toMatchObject({
      source_principal: 'spiffe://other.org/ns/x/sa/y',
      destination_principal: 'spiffe://cluster.local/ns/shop/sa/web-sa',
      connection_security_policy: 'mutual_tls',
    });
    expect(lines[0]).toMatchObject({
      'src.identity': 'spiffe://other.org/ns/x/sa/y',
      connection_security_policy: 'mutual_tls',
    });
  });

  test('connections get increasing ids and a summary while live', () => {
    const { recorder } = setup();
    const a = recorder.start('outbound', { ip: '10.244.0.9', port: 1 });
    const b = recorder.start('outbound', { ip: 'fd00::9', port: 2 });
    expect(b.id).toBe(a.id + 1);
    b.srcWorkload = client;
    b.service = webService;
    b.dstWorkload = server;
    b.target = { ip: '10.244.1.2', port: 8080 };
    b.established();
    expect([...recorder.live.values()].map((r) => r.summary())).toEqual([
      {
        id: b.id,
        direction: 'outbound',
        src: '[fd00::9]:2',
        dst: '10.244.1.2:8080',
        srcWorkload: 'shop/client-5d8f7c9b4-abcde',
        dstWorkload: 'shop/web-0',
        service: 'web.shop.svc.cluster.local',
        startedAt: expect.any(String),
      },
    ]);
  });
});
