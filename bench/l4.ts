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
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { LocalState } from '../src/local/state.js';
import { cgroupPids } from '../src/os/cgroup.js';
import {
  ambit,
  inNodeNetns,
  inPod,
  median,
  parseWrk,
  progress,
  ROOT,
  tempFile,
  type WrkResult,
} from './lib.js';

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    connections: { type: 'string', default: '32' },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const CONNS = Number(values.connections);
const CLUSTER = 'bench';

function pod(ns: string, name: string, node: string, command: string): string {
  return `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns}, labels: { app: ${name} } }
spec:
  nodeName: ${node}
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      command: ["/bin/sh", "-c", ${JSON.stringify(command)}]
`;
}

const NGINX = `mkdir -p /tmp/nginx /tmp/www && head -c 200M /dev/zero > /tmp/www/big && exec nginx -c ${join(ROOT, 'bench/nginx.conf')} -g 'daemon off;'`;
const manifests = [
  'apiVersion: v1\nkind: Namespace\nmetadata: { name: bench-mesh, labels: { ambit.dev/dataplane-mode: ambient } }\n',
  'apiVersion: v1\nkind: Namespace\nmetadata: { name: bench-plain }\n',
  pod('bench-mesh', 'client', 'node-1', 'exec sleep infinity'),
  pod('bench-plain', 'client', 'node-1', 'exec sleep infinity'),
  pod('bench-plain', 'server', 'node-2', NGINX),
].join('---\n');

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

interface Mode {
  readonly name: string;
  readonly ns: string;
  readonly url: string;
  readonly proxyPid?: number;
}

interface Row {
  mode: string;
  keepalive: WrkResult[];
  newconn: WrkResult[];
  gbps: number[];
  cpuPer1k: number[];
}

async function wrk(mode: Mode, closeEach: boolean): Promise<{ r: WrkResult; cpu?: number }> {
  const before = mode.proxyPid === undefined ? 0 : cpuMs(mode.proxyPid);
  const args = [
    'wrk',
    '-t1',
    `-c${CONNS}`,
    `-d${SECONDS}s`,
    '--latency',
    ...(closeEach ? ['-H', 'Connection: close'] : []),
    `${mode.url}/small`,
  ];
  const out = await inPod(CLUSTER, mode.ns, 'client', args, (SECONDS + 30) * 1000);
  const r = parseWrk(out);
  if (mode.proxyPid === undefined) return { r };
  const total = r.rps * SECONDS;
  return { r, cpu: ((cpuMs(mode.proxyPid) - before) / total) * 1000 };
}

async function bulk(mode: Mode): Promise<number> {
  const out = await inPod(
    CLUSTER,
    mode.ns,
    'client',
    ['curl', '-s', '-o', '/dev/null', '-w', '%{speed_download}', `${mode.url}/big`],
    120_000,
  );
  return (Number(out) * 8) / 1e9;
}

function proxyPid(state: LocalState): number {
  const cg = join(state.cgroupDir, state.nodes[0]!.systemCgroup);
  const pid = cgroupPids(cg).find((p) =>
    readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('node-agent/main.js\0proxy'),
  );
  if (pid === undefined) throw new Error('node-1 proxy not found');
  return pid;
}

async function main(): Promise<void> {
  progress('starting a 2-node local cluster for the benchmark');
  await ambit('local', 'down', '--name', CLUSTER);
  const file = tempFile('bench.yaml', manifests);
  await ambit('local', 'up', file, '--name', CLUSTER, '--nodes', '2');
  const state = JSON.parse(await ambit('local', 'status', '--name', CLUSTER, '-o', 'json')) as LocalState;
  const ip = (ns: string, name: string) => state.pods.find((p) => p.namespace === ns && p.name === name)!.ip4;
  const plainServer = ip('bench-plain', 'server');
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
    const modes: Mode[] = [
      { name: 'direct', ns: 'bench-plain', url: `http://${plainServer}:8080` },
      {
        name: 'ambit (eBPF + node proxy)',
        ns: 'bench-mesh',
        url: `http://${plainServer}:8080`,
        proxyPid: proxyPid(state),
      },
      {
        name: 'haproxy (tcp mode)',
        ns: 'bench-plain',
        url: `http://${gateway}:18080`,
        proxyPid: haproxy.pid!,
      },
    ];
    const rows = new Map<string, Row>(
      modes.map((m) => [m.name, { mode: m.name, keepalive: [], newconn: [], gbps: [], cpuPer1k: [] }]),
    );
    for (const m of modes) await wrk({ ...m }, false).catch(() => undefined); // warm-up
    for (let round = 1; round <= ROUNDS; round++) {
      for (const m of modes) {
        const row = rows.get(m.name)!;
        progress(`round ${round}/${ROUNDS}: ${m.name}: keep-alive`);
        const ka = await wrk(m, false);
        row.keepalive.push(ka.r);
        if (ka.cpu !== undefined) row.cpuPer1k.push(ka.cpu);
        progress(`round ${round}/${ROUNDS}: ${m.name}: new connection per request`);
        row.newconn.push((await wrk(m, true)).r);
        progress(`round ${round}/${ROUNDS}: ${m.name}: bulk 200 MB`);
        row.gbps.push(await bulk(m));
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

await main();
