/**
 * L4 benchmark: a client pod on node-1 and an nginx pod on node-2, three ways, side by side in one run:
 *   direct   - plain pods, no mesh: the baseline
 *   ambit    - the client's namespace is in the mesh, the server's is not: eBPF redirects to node-1's
 *              proxy, which passes the connection through as plain TCP (no HBONE: the server is outside)
 *   haproxy  - plain pods through haproxy in TCP mode in node-1's namespace (a C proxy in the same spot)
 * For each: keep-alive req/s (wrk), new-connection req/s (wrk, Connection: close), bulk Gbit/s (curl,
 * 200 MB), and proxy CPU per 1000 requests.
 *
 * Run: make bench   (or: node_modules/.bin/vite-node bench/l4.ts -- [--seconds 10] [--rounds 2])
 */
import {
  ambit,
  benchManifests,
  benchOptions,
  bulkGbps,
  daemonPid,
  inNodeNetns,
  type LoadRun,
  median,
  podIp4,
  progress,
  runBenchmark,
  startBenchCluster,
  tempFile,
  type WrkResult,
  wrkRun,
} from './lib.js';

const { seconds: SECONDS, rounds: ROUNDS, connections: CONNS } = benchOptions();
const CLUSTER = 'bench';

interface Mode extends LoadRun {
  readonly name: string;
}

interface Row {
  mode: string;
  keepalive: WrkResult[];
  newconn: WrkResult[];
  gbps: number[];
  cpuPer1k: number[];
}

async function main(): Promise<void> {
  progress('starting a 2-node local cluster for the benchmark');
  const state = await startBenchCluster(CLUSTER, benchManifests(false));
  const plainServer = podIp4(state, 'bench-plain', 'server');
  const gateway = state.nodes[0]!.gateway4;
  const haproxyCfg = tempFile(
    'haproxy.cfg',
    `global\n  maxconn 8000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\nfrontend l4\n  bind ${gateway}:18080\n  default_backend srv\nbackend srv\n  server s1 ${plainServer}:8080\n`,
  );
  const haproxy = inNodeNetns(CLUSTER, 'node-1', ['haproxy', '-db', '-f', haproxyCfg]);
  let haproxyErr = '';
  haproxy.stderr?.on('data', (d: Buffer) => {
    haproxyErr += d.toString();
  });
  try {
    await new Promise((r) => setTimeout(r, 500));
    if (haproxy.exitCode !== null) throw new Error(`haproxy exited: ${haproxyErr}`);
    const run = { cluster: CLUSTER, seconds: SECONDS, connections: CONNS };
    const modes: Mode[] = [
      { ...run, name: 'direct', ns: 'bench-plain', url: `http://${plainServer}:8080`, proxies: [] },
      {
        ...run,
        name: 'ambit (eBPF + node proxy)',
        ns: 'bench-mesh',
        url: `http://${plainServer}:8080`,
        proxies: [daemonPid(state, 0, 'proxy')],
      },
      {
        ...run,
        name: 'haproxy (tcp mode)',
        ns: 'bench-plain',
        url: `http://${gateway}:18080`,
        proxies: [haproxy.pid!],
      },
    ];
    const rows = new Map<string, Row>(
      modes.map((m) => [m.name, { mode: m.name, keepalive: [], newconn: [], gbps: [], cpuPer1k: [] }]),
    );
    for (const m of modes) await wrkRun(m, false).catch(() => undefined); // warm-up
    for (let round = 1; round <= ROUNDS; round++) {
      for (const m of modes) {
        const row = rows.get(m.name)!;
        progress(`round ${round}/${ROUNDS}: ${m.name}: keep-alive`);
        const ka = await wrkRun(m, false);
        row.keepalive.push(ka.r);
        if (ka.cpuPer1k !== undefined) row.cpuPer1k.push(ka.cpuPer1k);
        progress(`round ${round}/${ROUNDS}: ${m.name}: new connection per request`);
        row.newconn.push((await wrkRun(m, true)).r);
        progress(`round ${round}/${ROUNDS}: ${m.name}: bulk 200 MB`);
        row.gbps.push(await bulkGbps(m));
      }
    }
    const direct = rows.get('direct')!;
    const base = {
      ka: median(direct.keepalive.map((r) => r.rps)),
      nc: median(direct.newconn.map((r) => r.rps)),
      bulk: median(direct.gbps),
    };
    const lines = [
      `| path | keep-alive req/s | p50 / p99 ms | new-conn req/s | bulk Gbit/s | proxy CPU ms / 1000 req |`,
      '|---|---|---|---|---|---|',
    ];
    for (const row of rows.values()) {
      const ka = median(row.keepalive.map((r) => r.rps));
      const nc = median(row.newconn.map((r) => r.rps));
      const g = median(row.gbps);
      const p50 = median(row.keepalive.map((r) => r.p50ms));
      const p99 = median(row.keepalive.map((r) => r.p99ms));
      const errors = [...row.keepalive, ...row.newconn].reduce((n, r) => n + r.errors, 0);
      const ratio = (v: number, b: number) => (row.mode === 'direct' ? '' : ` (${(v / b).toFixed(2)}x)`);
      lines.push(
        `| ${row.mode} | ${ka.toFixed(0)}${ratio(ka, base.ka)} | ${p50.toFixed(2)} / ${p99.toFixed(2)} | ${nc.toFixed(0)}${ratio(nc, base.nc)} | ${g.toFixed(2)}${ratio(g, base.bulk)} | ${row.cpuPer1k.length === 0 ? '-' : median(row.cpuPer1k).toFixed(1)}${errors > 0 ? ` (${errors} errors)` : ''} |`,
      );
    }
    process.stdout.write(
      `\n${lines.join('\n')}\n\n(${ROUNDS} rounds, median; wrk -t1 -c${CONNS} -d${SECONDS}s; ratios against direct)\n`,
    );
  } finally {
    haproxy.kill('SIGTERM');
    await ambit('local', 'down', '--name', CLUSTER);
  }
}

await runBenchmark(main);
