/**
 * Mesh benchmark: a client pod on node-1, nginx on node-2, three ways in one run:
 *   direct           - plain pods, no mesh: the baseline
 *   ambit (HBONE)    - both pods in the mesh: eBPF -> node-1 proxy -> HBONE (mTLS, HTTP/2) -> node-2 proxy
 *   haproxy mTLS     - plain pods through two haproxies: node-1 (TCP in, TLS out with a client
 *                      certificate) -> node-2 (TLS in, client certificate verified, TCP out): the same
 *                      two-hop mutual-TLS tunnel, ECDSA P-256 certificates from the same kind of CA
 * Per path: keep-alive req/s with p50/p99, new-connection req/s, bulk Gbit/s, proxy CPU per 1000
 * requests (both hops together) and proxy RSS per 1000 idle connections (both hops together).
 *
 * Run: make bench   (or: node_modules/.bin/vite-node bench/mesh.ts -- [--seconds 10] [--rounds 2] [--idle 1000])
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRoot, generateKey, signWorkloadCert } from '../src/identity/x509.js';
import type { LocalState } from '../src/local/state.js';
import {
  ambit,
  benchManifests,
  benchOptions,
  bulkGbps,
  daemonPid,
  inNodeNetns,
  inPod,
  type LoadRun,
  median,
  podIp4,
  progress,
  ROOT,
  runBenchmark,
  startBenchCluster,
  tempFile,
  type WrkResult,
  wrkRun,
} from './lib.js';

const { seconds: SECONDS, rounds: ROUNDS, connections: CONNS, idle: IDLE } = benchOptions({ idle: '1000' });
const CLUSTER = 'bench-mesh';

// Opens idle connections on request ("open N" on stdin), answers "open" when they are up, and exits
// (closing them all) at end of input, so nothing outlives the measurement.
const IDLE_SCRIPT = `
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
socks = []
for line in sys.stdin:
    n = int(line.split()[1])
    socks += [socket.create_connection((host, port)) for _ in range(n)]
    print("open", len(socks), flush=True)
`;

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

interface Mode extends LoadRun {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

interface Row {
  keepalive: WrkResult[];
  newconn: WrkResult[];
  gbps: number[];
  cpuPer1k: number[];
  idleMbPer1k: number[];
}

/**
 * The proxies' memory per 1000 idle connections: IDLE connections are opened and held, then IDLE more;
 * the RSS growth over the second batch is the cost per connection (the first batch also pays for the
 * heap growing to working size).
 */
async function idleCost(mode: Mode, script: string): Promise<number> {
  if (mode.proxies.length === 0) return 0;
  const child: ChildProcess = spawn(
    process.execPath,
    [
      join(ROOT, 'dist/ctl/main.js'),
      'local',
      'exec',
      '--name',
      CLUSTER,
      '-n',
      mode.ns,
      'client',
      '--',
      'python3',
      script,
      mode.host,
      String(mode.port),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const batch = async (n: number): Promise<number> => {
    child.stdin?.write(`open ${IDLE}\n`);
    const deadline = Date.now() + 120_000;
    while (!out.includes(`open ${n}\n`) && Date.now() < deadline) await sleep(100);
    await sleep(2000);
    return mode.proxies.reduce((sum, p) => sum + rssKb(p), 0);
  };
  const first = await batch(IDLE);
  const second = await batch(2 * IDLE);
  child.stdin?.end();
  await new Promise((r) => child.once('exit', r));
  await sleep(1000);
  return ((second - first) / 1024 / IDLE) * 1000;
}

async function haproxyPair(
  state: LocalState,
  serverIp: string,
): Promise<{ procs: ChildProcess[]; host: string; port: number }> {
  // A CA and two ECDSA P-256 certificates, like Ambit's workload certificates. haproxy verifies the chain both
  // ways; it does not check a SPIFFE identity (it has no notion of one), so it does a little less work than Ambit.
  const caKey = await generateKey();
  const caPem = await createRoot(caKey, 'bench', 1);
  const leaf = async (id: string): Promise<string> => {
    const k = await generateKey();
    const now = Date.now();
    const cert = await signWorkloadCert({
      issuerPem: caPem,
      issuerKey: caKey,
      publicKey: k.keys.publicKey,
      identity: id,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 86_400_000),
    });
    return tempFile(`${id.split('/').pop()}.pem`, cert + k.keyPem);
  };
  const ca = tempFile('ca.pem', caPem);
  const clientPem = await leaf('spiffe://cluster.local/ns/bench/sa/client');
  const serverPem = await leaf('spiffe://cluster.local/ns/bench/sa/server');
  const gw = state.nodes[0]!.gateway4;
  const node2 = state.nodes[1]!.ip4;
  const common =
    'global\n  maxconn 8000\n  ssl-default-bind-options ssl-min-ver TLSv1.3\n  ssl-default-server-options ssl-min-ver TLSv1.3\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 600s\n  timeout server 600s\n';
  const a = tempFile(
    'a.cfg',
    `${common}frontend in\n  bind ${gw}:18080\n  default_backend out\nbackend out\n  server b ${node2}:18443 ssl crt ${clientPem} ca-file ${ca} verify required\n`,
  );
  const b = tempFile(
    'b.cfg',
    `${common}frontend in\n  bind ${node2}:18443 ssl crt ${serverPem} ca-file ${ca} verify required\n  default_backend out\nbackend out\n  server s ${serverIp}:8080\n`,
  );
  const procs = [
    inNodeNetns(CLUSTER, 'node-1', ['haproxy', '-db', '-f', a]),
    inNodeNetns(CLUSTER, 'node-2', ['haproxy', '-db', '-f', b]),
  ];
  await sleep(500);
  for (const p of procs) if (p.exitCode !== null) throw new Error('haproxy did not start');
  return { procs, host: gw, port: 18080 };
}

async function main(): Promise<void> {
  progress('starting a 2-node local cluster');
  const state = await startBenchCluster(CLUSTER, benchManifests(true));
  const ip = (ns: string, name: string) => podIp4(state, ns, name);
  const ha = await haproxyPair(state, ip('bench-plain', 'server'));
  const idleScript = '/tmp/ambit-bench-idle.py';
  await inPod(CLUSTER, 'bench-mesh', 'client', [
    'sh',
    '-c',
    `cat > ${idleScript} <<'EOF'\n${IDLE_SCRIPT}\nEOF`,
  ]);
  await inPod(CLUSTER, 'bench-plain', 'client', [
    'sh',
    '-c',
    `cat > ${idleScript} <<'EOF'\n${IDLE_SCRIPT}\nEOF`,
  ]);
  try {
    const run = { cluster: CLUSTER, seconds: SECONDS, connections: CONNS };
    const path = (
      name: string,
      ns: string,
      host: string,
      port: number,
      proxies: readonly number[],
    ): Mode => ({
      ...run,
      name,
      ns,
      host,
      port,
      url: `http://${host}:${port}`,
      proxies,
    });
    const modes: Mode[] = [
      path('direct', 'bench-plain', ip('bench-plain', 'server'), 8080, []),
      path('ambit (HBONE, 2 proxies)', 'bench-mesh', ip('bench-mesh', 'server'), 8080, [
        daemonPid(state, 0, 'proxy'),
        daemonPid(state, 1, 'proxy'),
      ]),
      path(
        'haproxy mTLS (2 hops)',
        'bench-plain',
        ha.host,
        ha.port,
        ha.procs.map((p) => p.pid!),
      ),
    ];
    const rows = new Map<string, Row>(
      modes.map((m) => [m.name, { keepalive: [], newconn: [], gbps: [], cpuPer1k: [], idleMbPer1k: [] }]),
    );
    // Idle memory first, before any load has grown the heaps (RSS after heavy load shrinks as the GC
    // returns memory, which would hide the cost of the idle connections).
    for (const m of modes) {
      await wrkRun(m, false).catch(() => undefined); // warm-up: pooled tunnels, certificates, JIT
      progress(`${m.name}: ${IDLE} idle connections`);
      rows.get(m.name)!.idleMbPer1k.push(await idleCost(m, idleScript));
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const m of modes) {
        const row = rows.get(m.name)!;
        progress(`round ${round}/${ROUNDS}: ${m.name}: bulk 200 MB`);
        row.gbps.push(await bulkGbps(m));
        progress(`round ${round}/${ROUNDS}: ${m.name}: keep-alive`);
        const ka = await wrkRun(m, false);
        row.keepalive.push(ka.r);
        if (ka.cpuPer1k !== undefined) row.cpuPer1k.push(ka.cpuPer1k);
        progress(`round ${round}/${ROUNDS}: ${m.name}: new connection per request`);
        row.newconn.push((await wrkRun(m, true)).r);
      }
    }
    const d = rows.get('direct')!;
    const base = {
      ka: median(d.keepalive.map((r) => r.rps)),
      nc: median(d.newconn.map((r) => r.rps)),
      bulk: median(d.gbps),
    };
    const ha2 = rows.get('haproxy mTLS (2 hops)')!;
    const hbase = {
      ka: median(ha2.keepalive.map((r) => r.rps)),
      nc: median(ha2.newconn.map((r) => r.rps)),
      bulk: median(ha2.gbps),
    };
    const lines = [
      '| path | keep-alive req/s | p50 / p99 ms | new-conn req/s | bulk Gbit/s | proxy CPU ms / 1000 req | proxy RSS MB / 1000 idle conns |',
      '|---|---|---|---|---|---|---|',
    ];
    for (const [name, row] of rows) {
      const ka = median(row.keepalive.map((r) => r.rps));
      const nc = median(row.newconn.map((r) => r.rps));
      const g = median(row.gbps);
      const errors = [...row.keepalive, ...row.newconn].reduce((n, r) => n + r.errors, 0);
      const vs = (v: number, b: number, h: number) =>
        name === 'direct'
          ? ''
          : ` (${(v / b).toFixed(2)}x direct${name.startsWith('ambit') ? `, ${(v / h).toFixed(2)}x haproxy` : ''})`;
      lines.push(
        `| ${name} | ${ka.toFixed(0)}${vs(ka, base.ka, hbase.ka)} | ${median(row.keepalive.map((r) => r.p50ms)).toFixed(2)} / ${median(row.keepalive.map((r) => r.p99ms)).toFixed(2)} | ${nc.toFixed(0)}${vs(nc, base.nc, hbase.nc)} | ${g.toFixed(2)}${vs(g, base.bulk, hbase.bulk)} | ${name === 'direct' ? '-' : median(row.cpuPer1k).toFixed(1)} | ${name === 'direct' ? '-' : median(row.idleMbPer1k).toFixed(1)}${errors > 0 ? ` (${errors} errors)` : ''} |`,
      );
    }
    process.stdout.write(
      `\n${lines.join('\n')}\n\n(${ROUNDS} rounds, median; wrk -t1 -c${CONNS} -d${SECONDS}s; ${IDLE} idle connections)\n`,
    );
  } finally {
    for (const p of ha.procs) p.kill('SIGTERM');
    await ambit('local', 'down', '--name', CLUSTER);
  }
}

await runBenchmark(main);
