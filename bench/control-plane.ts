import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { stringify } from 'yaml';
import { CHANNEL_OPTIONS, controlPlaneCredentials } from '../src/api/channel.js';
import { bearer, services } from '../src/api/grpc.js';
import { KubeClusterSource } from '../src/cluster/source-kube.js';
import {
  issueServiceAccountToken,
  reviewServiceAccountToken,
} from '../src/identity/service-account-token.js';
import { createServingCredentials } from '../src/identity/x509.js';
import { KubeClient } from '../src/kube/client.js';
import { createApiHandler } from '../src/local/kube-api/server.js';
import { ApiStore } from '../src/local/kube-api/store.js';
import { createRootLogger } from '../src/telemetry/logger.js';
import { cpuMs, median, progress, ROOT, rssKb, runBenchmark } from './lib.js';

/*
 * The control plane at scale: 10,000 pods and 1,000 Services over 100 nodes, served by local mode's
 * Kubernetes API server code (HTTPS, list + watch), read by the real control plane (dist/, its own
 * process, so its CPU and memory are its own) and pushed to 100 simulated nodes: 100 config streams
 * over gRPC with node tokens reviewed by the API, plus 100 node-agent watches (only their node's pods,
 * fieldSelector=spec.nodeName) in this process. Measured: the full sync (control plane start to every
 * node holding the whole config), a one-pod change to every node, the bytes each node receives, and
 * the control plane's CPU and peak RSS.
 *
 *   node_modules/.bin/vite-node bench/control-plane.ts -- --pods 10000 --services 1000 --nodes 100 --rounds 5
 */

const args = new Map<string, number>();
for (let i = 2; i < process.argv.length; i++) {
  const m = /^--(\w+)$/.exec(process.argv[i] ?? '');
  if (m !== null) args.set(m[1]!, Number(process.argv[++i]));
}
const PODS = args.get('pods') ?? 10_000;
const SERVICES = args.get('services') ?? 1_000;
const NODES = args.get('nodes') ?? 100;
const ROUNDS = args.get('rounds') ?? 5;
const NAMESPACES = 10;
const NODE_SA = { namespace: 'ambit-system', name: 'ambit-node' };
const CP_ID = 'spiffe://cluster.local/ns/ambit-system/sa/ambit-control-plane';

type Json = Record<string, unknown>;

function ip(i: number): string {
  return `10.${64 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${i % 256}`;
}

function clusterObjects(): { objects: Json[]; pods: Json[] } {
  const objects: Json[] = [];
  for (let n = 0; n < NAMESPACES; n++)
    objects.push({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: `ns-${n}`, labels: { 'ambit.dev/dataplane-mode': 'ambient' } },
    });
  for (let n = 0; n < NODES; n++)
    objects.push({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: `node-${n}` },
      status: { addresses: [{ type: 'InternalIP', address: `172.20.${Math.floor(n / 256)}.${n % 256}` }] },
    });
  const pods: Json[] = [];
  const perService = Math.max(1, Math.floor(PODS / SERVICES));
  for (let i = 0; i < PODS; i++) {
    const svc = Math.floor(i / perService) % SERVICES;
    pods.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `pod-${i}`,
        namespace: `ns-${svc % NAMESPACES}`,
        uid: randomUUID(),
        labels: { app: `svc-${svc}`, version: 'v1' },
      },
      spec: { nodeName: `node-${i % NODES}`, serviceAccountName: `sa-${svc}` },
      status: {
        phase: 'Running',
        podIP: ip(i),
        podIPs: [{ ip: ip(i) }],
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    });
  }
  objects.push(...pods);
  for (let s = 0; s < SERVICES; s++) {
    const ns = `ns-${s % NAMESPACES}`;
    objects.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `svc-${s}`, namespace: ns },
      spec: {
        clusterIP: `10.96.${Math.floor(s / 256)}.${s % 256}`,
        clusterIPs: [`10.96.${Math.floor(s / 256)}.${s % 256}`],
        ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
        selector: { app: `svc-${s}` },
      },
    });
    const members = pods.filter((_, i) => Math.floor(i / perService) % SERVICES === s);
    objects.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `svc-${s}-abcde`,
        namespace: ns,
        labels: { 'kubernetes.io/service-name': `svc-${s}` },
      },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: members.map((p) => {
        const m = p.metadata as Json;
        return {
          addresses: [((p.status as Json).podIP as string) ?? ''],
          conditions: { ready: true },
          nodeName: (p.spec as Json).nodeName,
          targetRef: { kind: 'Pod', name: m.name, namespace: m.namespace, uid: m.uid },
        };
      }),
    });
  }
  return { objects, pods };
}

interface NodeStream {
  readonly node: string;
  /** When each version arrived (ms since the epoch) and its size on the wire. */
  readonly versions: Map<string, { at: number; bytes: number }>;
  cancel(): void;
}

function openStream(address: string, bundle: string, node: string, token: string): NodeStream {
  // Raw bytes, not decoded: what arrives is measured without this process decoding 100 copies of it.
  const def = services().config.service;
  const raw = grpc.makeGenericClientConstructor(
    { StreamConfig: { ...def.StreamConfig!, responseDeserialize: (b: Buffer) => b } },
    'MeshConfig',
  );
  const client = new raw(
    address,
    controlPlaneCredentials([bundle], CP_ID),
    CHANNEL_OPTIONS,
  ) as unknown as grpc.Client & {
    StreamConfig(req: unknown, md: grpc.Metadata): grpc.ClientReadableStream<Buffer>;
  };
  const versions = new Map<string, { at: number; bytes: number }>();
  const stream = client.StreamConfig({ node }, bearer(token));
  stream.on('data', (b: Buffer) => {
    versions.set(String(versions.size), { at: Date.now(), bytes: b.length });
  });
  stream.on('error', (err: Error) => {
    if (!/Cancelled/.test(err.message)) progress(`${node}: config stream: ${err.message}`);
  });
  return {
    node,
    versions,
    cancel: () => {
      stream.cancel();
      client.close();
    },
  };
}

async function waitUntil(what: string, check: () => boolean, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-bench-cp-'));
  const children: ChildProcess[] = [];
  const cleanup = (): void => {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  progress(`building ${PODS} pods, ${SERVICES} Services, ${NODES} nodes`);
  const { objects, pods } = clusterObjects();
  const store = new ApiStore(100_000);
  store.replaceAll(objects);

  // The API server (local mode's code) on loopback, with TokenReview for the nodes' tokens.
  const saKey = new Uint8Array(randomBytes(32));
  const creds = await createServingCredentials({
    org: 'bench API',
    dns: ['localhost'],
    ips: ['127.0.0.1'],
    days: 1,
  });
  const caPem = creds.caPem;
  const adminToken = randomBytes(24).toString('base64url');
  const api = createHttpsServer(
    { key: creds.keyPem, cert: creds.certPem },
    createApiHandler({
      store,
      authenticate: (t) => (t === adminToken ? { user: 'bench', groups: [], canWrite: false } : undefined),
      reviewToken: (t, a) => reviewServiceAccountToken(saKey, t, a, Math.floor(Date.now() / 1000)),
      log: createRootLogger({ name: 'bench-api', level: 'fatal' }),
    }),
  );
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  const apiPort = (api.address() as { port: number }).port;
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'b',
          cluster: {
            server: `https://127.0.0.1:${apiPort}`,
            'certificate-authority-data': Buffer.from(caPem).toString('base64'),
          },
        },
      ],
      users: [{ name: 'b', user: { token: adminToken } }],
      contexts: [{ name: 'b', context: { cluster: 'b', user: 'b' } }],
      'current-context': 'b',
    }),
  );

  // 100 node-agent watches: only their node's pods and the namespaces, as the agents read the API.
  const agentClient = new KubeClient({
    server: `https://127.0.0.1:${apiPort}`,
    origin: 'bench',
    caData: Buffer.from(caPem),
    token: adminToken,
    insecureSkipTlsVerify: false,
  });
  const agentsAc = new AbortController();
  let agentsSynced = 0;
  const agentPods = new Map<string, number>();
  const agentStart = Date.now();
  for (let n = 0; n < NODES; n++) {
    const node = `node-${n}`;
    new KubeClusterSource(agentClient, { kinds: ['Namespace', 'Pod'], node }).watch(
      {
        onEvents: (es) =>
          agentPods.set(
            node,
            (agentPods.get(node) ?? 0) + es.filter((e) => e.resource.kind === 'Pod').length,
          ),
        onSynced: () => agentsSynced++,
      },
      agentsAc.signal,
    );
  }
  await waitUntil('the node agents to sync', () => agentsSynced === NODES);
  const agentSyncMs = Date.now() - agentStart;
  progress(
    `${NODES} node-agent watches synced in ${agentSyncMs} ms (${median([...agentPods.values()])} pods each)`,
  );

  // The control plane, from dist/, in its own process.
  const grpcPort = 20_000 + Math.floor(Math.random() * 20_000);
  const monitoringPort = grpcPort + 1;
  const started = Date.now();
  const cp = spawn(
    process.execPath,
    [
      join(ROOT, 'dist/control-plane/main.js'),
      '--listen',
      '127.0.0.1',
      '--grpc-port',
      String(grpcPort),
      '--monitoring-port',
      String(monitoringPort),
      '--admin-port',
      String(grpcPort + 2),
      '--ca-dir',
      join(dir, 'ca'),
      '--kubeconfig',
      kubeconfig,
      '--log-level',
      'warn',
    ],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, NODE_OPTIONS: process.env.CP_NODE_OPTIONS ?? '' },
    },
  );
  children.push(cp);
  const pid = cp.pid!;
  // Ready means: the cluster has been read (its first list of every kind) and gRPC is serving.
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${monitoringPort}/ready`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) break;
    if (Date.now() - started > 120_000) throw new Error('the control plane did not become ready');
    await new Promise((r) => setTimeout(r, 5));
  }
  const readyMs = Date.now() - started;
  const bundle = readFileSync(join(dir, 'ca', 'trust-bundle.pem'), 'utf8');
  const now = Math.floor(Date.now() / 1000);
  const streams: NodeStream[] = [];
  for (let n = 0; n < NODES; n++) {
    const token = await issueServiceAccountToken(
      saKey,
      {
        namespace: NODE_SA.namespace,
        serviceAccount: NODE_SA.name,
        pod: `ambit-node-${n}`,
        podUid: randomUUID(),
        node: `node-${n}`,
      },
      3600,
      now,
    );
    streams.push(openStream(`127.0.0.1:${grpcPort}`, bundle, `node-${n}`, token));
  }
  let peakRss = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssKb(pid));
  }, 20);
  await waitUntil('every node to have a full config', () => streams.every((s) => s.versions.size > 0));
  const fullMs = Date.now() - started;
  const firstFullMs = Math.min(...streams.map((s) => [...s.versions.values()][0]!.at)) - started;
  const fullBytes = median(streams.map((s) => [...s.versions.values()][0]!.bytes));
  const cpuAtSync = cpuMs(pid);
  progress(
    `full sync to ${NODES} nodes: ${fullMs} ms from start, ${(fullBytes / 1024).toFixed(0)} KiB per node`,
  );

  // One pod changes (its readiness flips); time until every node has the new version, and how big it is.
  const changeMs: number[] = [];
  const changeBytes: number[] = [];
  const agentMs: number[] = [];
  const cpuBefore = cpuMs(pid);
  for (let r = 0; r < ROUNDS; r++) {
    const victim = pods[(r * 7919) % pods.length]!;
    const vNode = String((victim.spec as Json).nodeName);
    const before = new Map(streams.map((s) => [s.node, s.versions.size]));
    const agentBefore = agentPods.get(vNode) ?? 0;
    const ready = (victim.status as { conditions: { status: string }[] }).conditions[0]!.status === 'True';
    (victim.status as Json).conditions = [{ type: 'Ready', status: ready ? 'False' : 'True' }];
    const t0 = Date.now();
    store.set(structuredClone(victim));
    await waitUntil('the change at its node agent', () => (agentPods.get(vNode) ?? 0) > agentBefore);
    agentMs.push(Date.now() - t0);
    await waitUntil('the change at every node', () =>
      streams.every((s) => s.versions.size > before.get(s.node)!),
    );
    const arrivals = streams.map((s) => [...s.versions.values()].at(-1)!);
    changeMs.push(Math.max(...arrivals.map((a) => a.at)) - t0);
    changeBytes.push(median(arrivals.map((a) => a.bytes)));
    await new Promise((r2) => setTimeout(r2, 200));
  }
  const cpuPerChange = (cpuMs(pid) - cpuBefore) / ROUNDS;
  clearInterval(sampler);
  for (const s of streams) s.cancel();
  agentsAc.abort();
  agentClient.close();
  cp.kill('SIGTERM');
  await new Promise((r) => {
    cp.once('exit', r);
    setTimeout(r, 10_000);
  });
  api.closeAllConnections();
  api.close();

  const row = (k: string, v: string): void => {
    process.stdout.write(`| ${k} | ${v} |\n`);
  };
  process.stdout.write(
    `\n${PODS} pods, ${SERVICES} Services, ${NODES} nodes (one process of watch clients), ${ROUNDS} one-pod changes\n\n`,
  );
  process.stdout.write('| measure | value |\n|---|---|\n');
  row('node-agent watches: all synced (list + watch, own pods only)', `${agentSyncMs} ms`);
  row('control plane start to ready (cluster read, gRPC serving)', `${readyMs} ms`);
  row('control plane start to full config at every node', `${fullMs} ms`);
  row('ready to full config at every node (the push itself)', `${fullMs - readyMs} ms`);
  row('ready to full config at the first node', `${firstFullMs - readyMs} ms`);
  row('full config per node', `${(fullBytes / 1024).toFixed(0)} KiB`);
  row('one-pod change: at its node agent (API watch), median', `${median(agentMs)} ms`);
  row(
    'one-pod change: at every node (config push), median / max',
    `${median(changeMs)} / ${Math.max(...changeMs)} ms`,
  );
  row('one-pod change: bytes per node, median', `${median(changeBytes)} B`);
  row('control plane CPU to the full sync', `${cpuAtSync.toFixed(0)} ms`);
  row('control plane CPU per one-pod change', `${cpuPerChange.toFixed(0)} ms`);
  row('control plane peak RSS', `${(peakRss / 1024).toFixed(0)} MB`);
  cleanup();
  process.exit(0);
}

await runBenchmark(main);
