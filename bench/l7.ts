/**
 * L7 benchmark: a client pod on node-1, nginx on node-2, three ways in one run:
 *   direct            - plain pods, no mesh: the baseline
 *   ambit (waypoint)  - client and server in a namespace that uses a waypoint, with an HTTPRoute on the
 *                       server's Service (PathPrefix / to one backend): eBPF -> node-1 proxy -> HBONE ->
 *                       waypoint pod (HTTP/1.1 routing, metrics, an access line per request) -> HBONE ->
 *                       node-2 proxy -> nginx
 *   haproxy HTTP mTLS - plain pods through three haproxies (bench/haproxy-l7.cfg): node-1 (TCP in, TLS
 *                       out) -> a "waypoint" pod on the same node as Ambit's (TLS in, HTTP mode with a
 *                       routing rule and an access line per request, TLS out) -> node-2 (TLS in, TCP
 *                       out); every TLS hop mutual, ECDSA P-256 certificates from one CA
 *   ambit (waypoint + traffic policy) - the same, to Service `guarded` (same pods) with a
 *                       BackendTrafficPolicy: circuit breaker, a local rate limit per client identity
 *                       (never reached), passive health check, least request, a retry budget
 *   ambit (waypoint + JWT + authz) - the same, to Service `secured` with a RequestAuthentication (an
 *                       inline RS256 JWKS; every request carries a token) and an ALLOW
 *                       AuthorizationPolicy on the token's principal and a claim
 * Per path: keep-alive req/s with p50/p99 (wrk), the waypoint's CPU per 1000 requests and peak RSS
 * during that run, CPU of all proxies of the path; and at a fixed rate (hey, 1000 req/s for 10 s) the
 * waypoint's CPU in vCPU (CPU seconds / wall seconds) and RSS, next to haproxy's "waypoint".
 *
 * Run: make bench   (or: node_modules/.bin/vite-node bench/l7.ts -- [--seconds 10] [--rounds 2]
 *                    [--connections 32] [--rate 1000] [--rate-seconds 10])
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createRoot, generateKey, signWorkloadCert } from '../src/identity/x509.js';
import type { LocalState } from '../src/local/state.js';
import {
  ambit,
  benchOptions,
  benchPod,
  cpuMs,
  daemonPid,
  type HeyResult,
  headerArgs,
  heyRun,
  inNodeNetns,
  inPod,
  type LoadRun,
  median,
  onInterrupt,
  podIp4,
  podProcess,
  progress,
  ROOT,
  rssKb,
  runBenchmark,
  sh,
  sharedTempDir,
  tempFile,
  type WrkResult,
  withPeakRss,
  wrkRun,
} from './lib.js';

const opts = benchOptions({ rate: '1000', 'rate-seconds': '10' });
const { seconds: SECONDS, rounds: ROUNDS, connections: CONNS, rate: RATE } = opts;
const RATE_SECONDS = opts['rate-seconds'];
/** hey's workers for the fixed-rate run (its -q is per worker). */
const RATE_WORKERS = 10;
/** Warm-up at the fixed rate before its measurement (JIT, pools). */
const WARMUP_SECONDS = 20;
const CLUSTER = 'bl7';
const MESH_NS = 'bench-l7';
const PLAIN_NS = 'bench-plain';
const HA_WAYPOINT = 'hawp';
const HA_CFG = join(ROOT, 'bench/haproxy-l7.cfg');
/** Targets: Istio 1.24's figures for its Envoy waypoint, and haproxy's keep-alive rate. */
const TARGET_VCPU = 0.25;
const TARGET_MB = 60;

const NGINX = `mkdir -p /tmp/nginx && exec nginx -c ${join(ROOT, 'bench/nginx.conf')} -g 'daemon off;'`;

function serverPod(ns: string): string {
  return `apiVersion: v1
kind: Pod
metadata: { name: server, namespace: ${ns}, labels: { app: server } }
spec:
  nodeName: node-2
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      command: ["/bin/sh", "-c", ${JSON.stringify(NGINX)}]
      ports: [{ name: http, containerPort: 8080 }]
`;
}

/**
 * The app: in bench-l7 (ambient, use-waypoint) a waypoint, a client, nginx behind Service `server` and an
 * HTTPRoute on it; in bench-plain (outside the mesh) a client and nginx; with `haWaypoint`, the haproxy
 * "waypoint" pod too (added once Ambit's waypoint is placed, on the same node).
 */
/** A Service on the server pod, with an HTTPRoute (PathPrefix / to itself), as `server` has. */
const routedService = (name: string): string => `apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${MESH_NS} }
spec:
  selector: { app: server }
  ports: [{ name: http, port: 8080, targetPort: http, appProtocol: http }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ${name}, namespace: ${MESH_NS} }
spec:
  parentRefs: [{ group: "", kind: Service, name: ${name}, port: 8080 }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: / } }]
      backendRefs: [{ name: ${name}, port: 8080 }]
`;

const ISSUER = 'https://idp.bench';

/**
 * `guarded`: every BackendTrafficPolicy protection a request passes through, with limits it never
 * reaches; `secured`: JWT authentication (inline keys) and an ALLOW policy on the token.
 */
const protections = (jwks: string): string[] => [
  routedService('guarded'),
  `apiVersion: traffic.ambit.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: { name: guarded, namespace: ${MESH_NS} }
spec:
  targetRefs: [{ group: "", kind: Service, name: guarded }]
  circuitBreaker: { maxConnections: 100000, maxPendingRequests: 100000, maxParallelRequests: 100000, maxParallelRetries: 1000 }
  rateLimit:
    type: Local
    local:
      rules:
        - clientSelectors: [{ sourceIdentity: { type: Distinct } }]
          limit: { requests: 1000000, unit: Second }
  loadBalancer: { type: LeastRequest }
  healthCheck: { passive: { consecutive5XxErrors: 5, interval: 10s, baseEjectionTime: 30s } }
  retryConstraint: { budget: { percent: 20, interval: 10s }, minRetryRate: { count: 10, interval: 1s } }
`,
  routedService('secured'),
  `apiVersion: security.ambit.dev/v1alpha1
kind: RequestAuthentication
metadata: { name: secured, namespace: ${MESH_NS} }
spec:
  targetRefs: [{ kind: Service, name: secured }]
  jwtRules:
    - issuer: ${ISSUER}
      audiences: [bench]
      jwks: '${jwks}'
---
apiVersion: security.ambit.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: secured, namespace: ${MESH_NS} }
spec:
  targetRefs: [{ kind: Service, name: secured }]
  action: ALLOW
  rules:
    - from: [{ source: { requestPrincipals: ["${ISSUER}/*"] } }]
      when: [{ key: "request.auth.claims[group]", values: [bench] }]
`,
];

/** An RS256 key, its JWKS (inline in the RequestAuthentication), and a token for the client. */
async function jwtFixture(): Promise<{ jwks: string; token: string }> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'RS256', use: 'sig' };
  const token = await new SignJWT({ group: 'bench' })
    .setProtectedHeader({ alg: 'RS256', kid: 'bench' })
    .setIssuer(ISSUER)
    .setAudience('bench')
    .setSubject('client')
    .setIssuedAt()
    .setExpirationTime('12h')
    .sign(privateKey);
  return { jwks: JSON.stringify({ keys: [jwk] }), token };
}

function manifests(jwks: string, haWaypoint?: { node: string; command: string }): string {
  return [
    `apiVersion: v1
kind: Namespace
metadata:
  name: ${MESH_NS}
  labels: { ambit.dev/dataplane-mode: ambient, ambit.dev/use-waypoint: waypoint }
`,
    `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${PLAIN_NS} }\n`,
    `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: ${MESH_NS}, labels: { ambit.dev/waypoint-for: service } }
spec:
  gatewayClassName: ambit-waypoint
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
`,
    benchPod(MESH_NS, 'client', 'node-1', 'exec sleep infinity'),
    serverPod(MESH_NS),
    `apiVersion: v1
kind: Service
metadata: { name: server, namespace: ${MESH_NS} }
spec:
  selector: { app: server }
  ports: [{ name: http, port: 8080, targetPort: http, appProtocol: http }]
`,
    `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: server, namespace: ${MESH_NS} }
spec:
  parentRefs: [{ group: "", kind: Service, name: server, port: 8080 }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: / } }]
      backendRefs: [{ name: server, port: 8080 }]
`,
    ...protections(jwks),
    benchPod(PLAIN_NS, 'client', 'node-1', 'exec sleep infinity'),
    serverPod(PLAIN_NS),
    ...(haWaypoint === undefined
      ? []
      : [benchPod(PLAIN_NS, HA_WAYPOINT, haWaypoint.node, haWaypoint.command)]),
  ].join('---\n');
}

const status = async (): Promise<LocalState> =>
  JSON.parse(await ambit('local', 'status', '--name', CLUSTER, '-o', 'json')) as LocalState;

async function waitForPod(ns: string, name: string, timeoutMs = 60_000): Promise<LocalState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await status();
    const pod = s.pods.find((p) => p.namespace === ns && p.name === name);
    if (pod?.phase === 'Running' && pod.ready) return s;
    if (Date.now() > deadline) throw new Error(`pod ${ns}/${name} is not running: ${pod?.phase ?? 'absent'}`);
    await sleep(300);
  }
}

/** A CA and ECDSA P-256 certificates (with key) per hop, like Ambit's workload certificates, in a folder pods can read. */
async function certificates(): Promise<{ ca: string; pem: (hop: string) => string }> {
  const dir = sharedTempDir();
  const caKey = await generateKey();
  const caPem = await createRoot(caKey, 'bench', 1);
  writeFileSync(join(dir, 'ca.pem'), caPem);
  for (const hop of ['node1', 'waypoint', 'node2']) {
    const k = await generateKey();
    const now = Date.now();
    const cert = await signWorkloadCert({
      issuerPem: caPem,
      issuerKey: caKey,
      publicKey: k.keys.publicKey,
      identity: `spiffe://cluster.local/ns/bench/sa/${hop}`,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 86_400_000),
    });
    writeFileSync(join(dir, `${hop}.pem`), cert + k.keyPem, { mode: 0o600 });
  }
  return { ca: join(dir, 'ca.pem'), pem: (hop) => join(dir, `${hop}.pem`) };
}

const haEnv = (role: string, bind: string, next: string, crt: string, ca: string): string[] => [
  'env',
  `ROLE=${role}`,
  `BIND=${bind}`,
  `NEXT=${next}`,
  `CRT=${crt}`,
  `CA=${ca}`,
];

/** The waypoint's Istio request counts from its /metrics (inside its pod's namespace): all, and non-2xx. */
async function waypointCounts(netns: string): Promise<{ all: number; failed: number }> {
  const text = await sh('ip', ['netns', 'exec', netns, 'curl', '-s', 'http://127.0.0.1:15020/metrics']);
  let all = 0;
  let failed = 0;
  for (const m of text.matchAll(/^istio_requests_total\{([^}]*)\} (\d+)/gm)) {
    all += Number(m[2]);
    if (!/response_code="2\d\d"/.test(m[1]!)) failed += Number(m[2]);
  }
  return { all, failed };
}

/**
 * Wraps a run through Ambit's waypoint: counts what its /metrics say it served, and when some answers
 * were not 2xx, summarises them from its access log (status, flags, reason), so that a failure is seen.
 */
async function watchWaypoint<T>(
  wp: { netns: string; log: string },
  run: () => Promise<T>,
): Promise<{ result: T; served: number; failed: number; aborted: number }> {
  const before = await waypointCounts(wp.netns);
  const offset = existsSync(wp.log) ? statSync(wp.log).size : 0;
  const result = await run();
  const after = await waypointCounts(wp.netns);
  const failed = after.failed - before.failed;
  let aborted = 0;
  // The access log is written in batches (every 200 ms): wait for the last one.
  if (failed > 0) await sleep(500);
  if (failed > 0 && existsSync(wp.log)) {
    const lines = await sh('sh', [
      '-c',
      `tail -c +${offset + 1} '${wp.log}' | grep '"msg":"request"' | grep -v '"status":2[0-9][0-9],' | head -1000`,
    ]);
    const kinds = new Map<string, number>();
    for (const line of lines.split('\n').filter((l) => l !== '')) {
      const r = JSON.parse(line) as { status?: number; flags?: string; reason?: string };
      // wrk stops with a request in flight on each connection: the waypoint logs those as DC.
      if (r.status === 0 && r.flags === 'DC') aborted++;
      const k = `status ${r.status} flags ${r.flags}${r.reason === undefined ? '' : ` (${r.reason})`}`;
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    for (const [k, n] of kinds) progress(`  waypoint access log: ${n} x ${k}`);
  }
  return { result, served: after.all - before.all, failed, aborted };
}

interface Mode extends LoadRun {
  readonly name: string;
  /** The waypoint process (Ambit's, or haproxy's in its pod). */
  readonly waypoint?: number;
  /** Every proxy process of the path (waypoint included). */
  readonly all: readonly number[];
}

interface Row {
  keepalive: WrkResult[];
  wpCpuPer1k: number[];
  allCpuPer1k: number[];
  wpPeakMb: number[];
  fixed: HeyResult[];
  wpVcpu: number[];
  allVcpu: number[];
  wpFixedMb: number[];
  /** Answers the waypoint counted as not 2xx (its /metrics), keep-alive and fixed-rate runs. */
  wpFailed: number;
  /** Requests the load generator cut off when it stopped (status 0, flag DC): not failures. */
  wpAborted: number;
  idleMb?: number;
}

const f = (v: number, d = 1): string => (Number.isFinite(v) ? v.toFixed(d) : '-');

/** Tears the cluster down; waits out a rebuild of dist/ (`make ts` removes it first) rather than leave it up. */
async function down(): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await ambit('local', 'down', '--name', CLUSTER);
      return;
    } catch (err) {
      if (existsSync(join(ROOT, 'dist/ctl/main.js')) || attempt >= 40) throw err;
      progress('dist/ctl/main.js is missing (a rebuild?): retrying the teardown in 3 s');
      await sleep(3000);
    }
  }
}

/** Other local clusters on the machine (their namespaces): their load skews the figures. */
async function otherClusters(): Promise<string[]> {
  const names = (await sh('ip', ['netns', 'list'])).split('\n').map((l) => l.split(/[.\s]/)[0] ?? '');
  return [...new Set(names.filter((n) => n !== '' && n !== CLUSTER))];
}

async function main(): Promise<void> {
  const certs = await certificates();
  const jwt = await jwtFixture();
  progress('starting a 2-node local cluster');
  await down();
  // Teardown also stops what runs in the nodes' namespaces (haproxy).
  onInterrupt(down);
  const others = await otherClusters();
  if (others.length > 0)
    progress(`warning: other local clusters are running (${others.join(', ')}): they share the CPUs`);
  const file = tempFile('bench.yaml', manifests(jwt.jwks));
  const haProcs: ChildProcess[] = [];
  try {
    await ambit('local', 'up', file, '--name', CLUSTER, '--nodes', '2');
    let state = await status();
    const wpPod = state.pods.find((p) => p.namespace === MESH_NS && p.name.startsWith('waypoint-'));
    if (wpPod === undefined) throw new Error('the waypoint pod did not start');
    const node2 = state.nodes[1]!.ip4;
    // haproxy's waypoint goes where Ambit's went (the manifests are watched: the pod is added now).
    progress(`Ambit's waypoint ${wpPod.name} is on ${wpPod.node}: starting haproxy's there`);
    writeFileSync(
      file,
      manifests(jwt.jwks, {
        node: wpPod.node,
        command: `exec ${haEnv('waypoint', ':18443', `${node2}:18443`, certs.pem('waypoint'), certs.ca).join(' ')} haproxy -db -f ${HA_CFG}`,
      }),
    );
    state = await waitForPod(PLAIN_NS, HA_WAYPOINT);
    const ip = (ns: string, name: string) => podIp4(state, ns, name);
    const gw = state.nodes[0]!.gateway4;
    haProcs.push(
      inNodeNetns(CLUSTER, 'node-1', [
        ...haEnv('node1', `${gw}:18080`, `${ip(PLAIN_NS, HA_WAYPOINT)}:18443`, certs.pem('node1'), certs.ca),
        'haproxy',
        '-db',
        '-f',
        HA_CFG,
      ]),
      inNodeNetns(CLUSTER, 'node-2', [
        ...haEnv('node2', `${node2}:18443`, `${ip(PLAIN_NS, 'server')}:8080`, certs.pem('node2'), certs.ca),
        'haproxy',
        '-db',
        '-f',
        HA_CFG,
      ]),
    );
    await sleep(500);
    for (const p of haProcs) if (p.exitCode !== null) throw new Error('haproxy did not start');

    const vipOf = (name: string): string => {
      const vip = state.services.find((s) => s.namespace === MESH_NS && s.name === name)?.vips[0];
      if (vip === undefined) throw new Error(`Service ${MESH_NS}/${name} has no VIP`);
      return vip;
    };
    const waypointPid = podProcess(state, MESH_NS, wpPod.name, 'l7-waypoint/main.js');
    const haWaypointPid = podProcess(state, PLAIN_NS, HA_WAYPOINT, 'haproxy');
    const run = { cluster: CLUSTER, seconds: SECONDS, connections: CONNS };
    const modes: Mode[] = [
      {
        ...run,
        name: 'direct',
        ns: PLAIN_NS,
        url: `http://${ip(PLAIN_NS, 'server')}:8080`,
        proxies: [],
        all: [],
      },
      ...(
        [
          ['ambit (waypoint)', 'server', []],
          ['ambit (waypoint + traffic policy)', 'guarded', []],
          ['ambit (waypoint + JWT + authz)', 'secured', [`authorization: Bearer ${jwt.token}`]],
        ] as const
      ).map(([name, service, headers]) => ({
        ...run,
        name,
        ns: MESH_NS,
        url: `http://${vipOf(service)}:8080`,
        headers,
        proxies: [waypointPid],
        waypoint: waypointPid,
        all: [daemonPid(state, 0, 'proxy'), waypointPid, daemonPid(state, 1, 'proxy')],
      })),
      {
        ...run,
        name: 'haproxy HTTP mTLS (3 hops)',
        ns: PLAIN_NS,
        url: `http://${gw}:18080`,
        proxies: [haWaypointPid],
        waypoint: haWaypointPid,
        all: [haProcs[0]!.pid!, haWaypointPid, haProcs[1]!.pid!],
      },
    ];
    const [direct, amb, guarded, secured, ha] = modes as [Mode, Mode, Mode, Mode, Mode];
    /** Ambit's paths: through its waypoint (what the waypoint's metrics and log are checked for). */
    const ambits = new Set([amb, guarded, secured]);

    // Every path answers, and Ambit's requests went through the waypoint, its routes and protections.
    // (The pods are ready, but a path's first answer can take a moment: tried for up to 30 s, and said.)
    for (const m of modes) {
      const curl = ['curl', '-sS', '--max-time', '5', ...headerArgs(m), `${m.url}/small`];
      const deadline = Date.now() + 30_000;
      for (let tries = 1; ; tries++) {
        const out = await inPod(CLUSTER, m.ns, 'client', curl).catch((err: Error) => err.message);
        if (out.trim() === 'ok') {
          if (tries > 1) progress(`${m.name}: answered after ${tries} tries`);
          break;
        }
        if (Date.now() > deadline) throw new Error(`${m.name}: unexpected answer ${JSON.stringify(out)}`);
        await sleep(500);
      }
    }
    const log = await ambit('local', 'logs', '--name', CLUSTER, '-n', MESH_NS, wpPod.name);
    const lines = log.split('\n').filter((l) => l.includes('"msg":"request"'));
    for (const name of ['server', 'guarded', 'secured'])
      if (!lines.some((l) => l.includes(`"route":"HTTPRoute/bench-l7/${name}"`)))
        throw new Error(
          `the waypoint did not route a request by HTTPRoute ${name}: ${lines.at(-1) ?? 'no access line'}`,
        );
    const limited = await inPod(CLUSTER, MESH_NS, 'client', [
      'curl',
      '-sSi',
      '--max-time',
      '5',
      `${guarded.url}/small`,
    ]);
    if (!/^x-ratelimit-limit: 1000000/im.test(limited))
      throw new Error(`the BackendTrafficPolicy of guarded is not in force: ${limited}`);
    const anonymous = await inPod(CLUSTER, MESH_NS, 'client', [
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--max-time',
      '5',
      `${secured.url}/small`,
    ]);
    if (anonymous !== '403') throw new Error(`secured without a token answered ${anonymous}, not 403`);

    const rows = new Map<string, Row>(
      modes.map((m) => [
        m.name,
        {
          keepalive: [],
          wpCpuPer1k: [],
          allCpuPer1k: [],
          wpPeakMb: [],
          fixed: [],
          wpVcpu: [],
          allVcpu: [],
          wpFixedMb: [],
          wpFailed: 0,
          wpAborted: 0,
        },
      ]),
    );
    const wpWatch = {
      netns: wpPod.netns,
      log: `/run/ambit/${CLUSTER}/pods/${MESH_NS}/${wpPod.name}/waypoint.log`,
    };
    /** Runs `run`; on Ambit's path, checks what the waypoint served and answered. */
    const observe = async <T>(m: Mode, run: () => Promise<T>): Promise<T> => {
      if (!ambits.has(m)) return run();
      const w = await watchWaypoint(wpWatch, run);
      rows.get(m.name)!.wpFailed += w.failed - w.aborted;
      rows.get(m.name)!.wpAborted += w.aborted;
      progress(
        `  waypoint served ${w.served} requests, ${w.failed} not 2xx (${w.aborted} of them cut off by the client at the end of the run)`,
      );
      return w.result;
    };
    for (const m of modes) if (m.waypoint !== undefined) rows.get(m.name)!.idleMb = rssKb(m.waypoint) / 1024;

    // The fixed rate first, before the keep-alive runs have grown the heap (V8 keeps a grown heap for a
    // while: a waypoint that has only ever seen RATE req/s is what the figure describes). The warm-up is
    // long because V8 takes tens of thousands of requests to settle (measured: a fresh waypoint uses
    // ~0.42 vCPU in its first 10 s at 1000 req/s and ~0.28 from the third 10 s on).
    const perWorker = RATE / RATE_WORKERS;
    for (const m of modes) {
      if (m.waypoint === undefined) continue;
      progress(`${m.name}: warm-up at ${RATE} req/s for ${WARMUP_SECONDS}s`);
      await heyRun(m, { seconds: WARMUP_SECONDS, workers: RATE_WORKERS, perWorker, pids: [] });
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const m of modes) {
        const row = rows.get(m.name)!;
        progress(`round ${round}/${ROUNDS}: ${m.name}: ${RATE} req/s for ${RATE_SECONDS}s (hey)`);
        const wp = m.waypoint === undefined ? [] : [m.waypoint];
        const allBefore = m.all.reduce((n, p) => n + cpuMs(p), 0);
        const { result, peakRssKb } = await withPeakRss(wp, () =>
          observe(m, () => heyRun(m, { seconds: RATE_SECONDS, workers: RATE_WORKERS, perWorker, pids: wp })),
        );
        const allCpu = m.all.reduce((n, p) => n + cpuMs(p), 0) - allBefore;
        row.fixed.push(result.r);
        if (m.waypoint !== undefined) {
          row.wpVcpu.push(result.cpuMs / 1000 / result.r.totalS);
          row.allVcpu.push(allCpu / 1000 / result.r.totalS);
          row.wpFixedMb.push(peakRssKb / 1024);
        }
      }
    }

    for (const m of modes) {
      progress(`${m.name}: keep-alive warm-up`);
      await wrkRun({ ...m, seconds: Math.min(SECONDS, 5) }, false);
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const m of modes) {
        const row = rows.get(m.name)!;
        progress(`round ${round}/${ROUNDS}: ${m.name}: keep-alive (wrk)`);
        const allBefore = m.all.reduce((n, p) => n + cpuMs(p), 0);
        const { result, peakRssKb } = await withPeakRss(m.waypoint === undefined ? [] : [m.waypoint], () =>
          observe(m, () => wrkRun(m, false)),
        );
        const allCpu = m.all.reduce((n, p) => n + cpuMs(p), 0) - allBefore;
        row.keepalive.push(result.r);
        if (m.waypoint !== undefined) {
          row.wpCpuPer1k.push(result.cpuPer1k!);
          row.allCpuPer1k.push((allCpu / (result.r.rps * SECONDS)) * 1000);
          row.wpPeakMb.push(peakRssKb / 1024);
        }
      }
    }

    const rps = (r: Row) => median(r.keepalive.map((x) => x.rps));
    const dRow = rows.get(direct.name)!;
    const hRow = rows.get(ha.name)!;
    const aRow = rows.get(amb.name)!;
    const ka = [
      '| path | keep-alive req/s | p50 / p99 ms | waypoint CPU ms / 1000 req | waypoint peak RSS MB | all proxies CPU ms / 1000 req |',
      '|---|---|---|---|---|---|',
    ];
    for (const m of modes) {
      const row = rows.get(m.name)!;
      const v = rps(row);
      const errors = row.keepalive.reduce((n, r) => n + r.errors, 0);
      const wpFailed =
        ambits.has(m) && row.wpFailed > 0 ? ` (waypoint: ${row.wpFailed} not 2xx, all runs)` : '';
      const vs =
        m === direct
          ? ''
          : ` (${(v / rps(dRow)).toFixed(2)}x direct${ambits.has(m) ? `, ${(v / rps(hRow)).toFixed(2)}x haproxy` : ''}${ambits.has(m) && m !== amb ? `, ${(v / rps(aRow)).toFixed(2)}x plain waypoint` : ''})`;
      const wp = m.waypoint === undefined;
      ka.push(
        `| ${m.name} | ${v.toFixed(0)}${vs}${errors > 0 ? ` (${errors} errors)` : ''}${wpFailed} | ${f(median(row.keepalive.map((r) => r.p50ms)), 2)} / ${f(median(row.keepalive.map((r) => r.p99ms)), 2)} | ${wp ? '-' : f(median(row.wpCpuPer1k))} | ${wp ? '-' : f(median(row.wpPeakMb), 0)} | ${wp ? '-' : f(median(row.allCpuPer1k))} |`,
      );
    }
    const fixed = [
      `| path | achieved req/s | p50 / p99 ms | waypoint vCPU | waypoint RSS MB (peak; idle before load) | all proxies vCPU |`,
      '|---|---|---|---|---|---|',
    ];
    const vcpu = (r: Row) => median(r.wpVcpu);
    const mb = (r: Row) => median(r.wpFixedMb);
    for (const m of modes) {
      const row = rows.get(m.name)!;
      const failed = row.fixed.reduce((n, r) => n + r.failed, 0);
      const wp = m.waypoint === undefined;
      const vsHa = (v: number, h: number, a: number) =>
        ambits.has(m)
          ? ` (${(v / h).toFixed(2)}x haproxy${m === amb ? '' : `, ${(v / a).toFixed(2)}x plain waypoint`})`
          : '';
      fixed.push(
        `| ${m.name} | ${f(median(row.fixed.map((r) => r.rps)), 0)}${failed > 0 ? ` (${failed} failed)` : ''} | ${f(median(row.fixed.map((r) => r.p50ms)), 2)} / ${f(median(row.fixed.map((r) => r.p99ms)), 2)} | ${wp ? '-' : `${f(vcpu(row), 3)}${vsHa(vcpu(row), vcpu(hRow), vcpu(aRow))}`} | ${wp ? '-' : `${f(mb(row), 0)}${vsHa(mb(row), mb(hRow), mb(aRow))}; ${f(row.idleMb ?? Number.NaN, 0)}`} | ${wp ? '-' : f(median(row.allVcpu), 3)} |`,
      );
    }
    // What the protections add to a request, against the plain waypoint of the same run.
    const cpu1k = (r: Row) => median(r.wpCpuPer1k);
    const cost = [
      '| path | keep-alive req/s vs plain waypoint | waypoint CPU us / request added (keep-alive) | waypoint vCPU at the fixed rate vs plain waypoint |',
      '|---|---|---|---|',
    ];
    for (const m of [guarded, secured]) {
      const row = rows.get(m.name)!;
      cost.push(
        `| ${m.name} | ${(rps(row) / rps(aRow)).toFixed(2)}x | ${f(cpu1k(row) - cpu1k(aRow))} | ${(vcpu(row) / vcpu(aRow)).toFixed(2)}x |`,
      );
    }
    const met = (ok: boolean) => (ok ? 'met' : 'missed');
    const targets = [
      '| target | measured | |',
      '|---|---|---|',
      `| Ambit keep-alive req/s >= haproxy | ${(rps(aRow) / rps(hRow)).toFixed(2)}x haproxy (${rps(aRow).toFixed(0)} vs ${rps(hRow).toFixed(0)}) | ${met(rps(aRow) >= rps(hRow))} |`,
      `| waypoint <= ${TARGET_VCPU} vCPU at ${RATE} req/s (Istio 1.24 Envoy waypoint) | ${f(vcpu(aRow), 3)} vCPU (haproxy: ${f(vcpu(hRow), 3)}) | ${met(vcpu(aRow) <= TARGET_VCPU)} |`,
      `| waypoint <= ${TARGET_MB} MB at ${RATE} req/s (Istio 1.24 Envoy waypoint) | ${f(mb(aRow), 0)} MB (haproxy: ${f(mb(hRow), 0)}) | ${met(mb(aRow) <= TARGET_MB)} |`,
    ];
    const args = process.argv.slice(2).filter((a) => a !== '--');
    const command = `node_modules/.bin/vite-node bench/l7.ts -- ${args.join(' ')}`.trimEnd();
    process.stdout.write(
      `\nKeep-alive (wrk -t1 -c${CONNS} -d${SECONDS}s, ${ROUNDS} rounds, median):\n\n${ka.join('\n')}\n` +
        `\nFixed rate (hey -z ${RATE_SECONDS}s -c ${RATE_WORKERS} -q ${perWorker}, ${ROUNDS} rounds, median; vCPU = CPU seconds / wall seconds):\n\n${fixed.join('\n')}\n` +
        `\nCost of the protections (same run):\n\n${cost.join('\n')}\n` +
        `\nTargets:\n\n${targets.join('\n')}\n` +
        `\n(command: ${command}; both waypoints write an access line per request; "all proxies" = node-1 hop + waypoint + node-2 hop; ambit's waypoint logged ${[...ambits].reduce((n, m) => n + rows.get(m.name)!.wpAborted, 0)} requests cut off by the load generator when it stopped (status 0, DC), not counted as failures${others.length > 0 ? `; other local clusters were running: ${others.join(', ')}` : ''})\n`,
    );
  } finally {
    for (const p of haProcs) p.kill('SIGTERM');
    await down();
  }
}

await runBenchmark(main);
