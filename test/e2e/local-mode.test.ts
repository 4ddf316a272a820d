import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { LocalState, PodState } from '../../src/local/state.js';
import { AGENT_READY_HEARTBEAT_MS, AGENT_READY_STALE_MS } from '../../src/node/agent-ready.js';
import {
  ambit,
  copyManifests,
  curl,
  daemonPid,
  downCluster,
  netnsOf,
  podExec,
  processLives,
  ROOT,
  status,
  waitFor,
} from './helpers.js';

const CLUSTER = 'e2e-local';

/** Everything a cluster leaves on the machine, listed the way an operator would look for it. */
function leftovers(state: LocalState): string[] {
  const found: string[] = [];
  for (const ns of netnsOf(CLUSTER)) found.push(`netns ${ns}`);
  if (existsSync(state.cgroupDir)) found.push(`cgroup ${state.cgroupDir}`);
  const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
  if (tables.includes('ambit_services')) found.push('nft table in the root namespace');
  const pids = [
    state.daemonPid,
    ...state.pods.flatMap((p) => [p.pausePid ?? 0, ...p.containers.map((c) => c.pid ?? 0)]),
  ];
  for (const pid of pids.filter((p) => p > 0)) if (processLives(pid)) found.push(`process ${pid}`);
  const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
  if (/veth[0-9a-f]{8}/.test(links)) found.push('pod veth in the root namespace');
  if (existsSync(`/run/ambit/${CLUSTER}`)) found.push('state folder');
  return found;
}

describe('local mode: examples/hello on two nodes, outside the mesh', () => {
  let dir: string;
  let state: LocalState;
  let client: PodState;
  let sameNode: PodState;
  let otherNode: PodState;

  beforeAll(async () => {
    await ambit(['local', 'down', '--name', CLUSTER]);
    dir = copyManifests('examples/hello');
    // The substrate on its own: without the mesh label, Service VIPs are served by each node's nftables.
    const ns = join(dir, 'namespace.yaml');
    writeFileSync(ns, readFileSync(ns, 'utf8').replace('    ambit.dev/dataplane-mode: ambient\n', ''));
    const up = await ambit(['local', 'up', dir, '--nodes', '2', '--name', CLUSTER]);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(up.stdout).toContain('all 3 pods are ready');
    state = await status(CLUSTER);
    client = state.pods.find((p) => p.name === 'client')!;
    const backends = state.pods.filter((p) => p.owner === 'Deployment/backend');
    expect(backends).toHaveLength(2);
    sameNode = backends.find((p) => p.node === client.node)!;
    otherNode = backends.find((p) => p.node !== client.node)!;
    expect(sameNode).toBeDefined();
    expect(otherNode).toBeDefined();
  });

  afterAll(async () => {
    await downCluster(CLUSTER);
  });

  test('status shows the nodes, ready pods and the Service with both endpoints', async () => {
    const r = await ambit(['local', 'status', '--name', CLUSTER]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/node-1\s+172\.18\.0\.2/);
    expect(r.stdout).toMatch(/client\s+1\/1\s+Running/);
    const svc = state.services.find((s) => s.name === 'backend')!;
    expect(svc.vips).toEqual(['10.96.0.10', 'fd00:10:96::a']);
    expect(svc.endpoints.map((e) => e.pod).sort()).toEqual([sameNode.name, otherNode.name].sort());
    expect(svc.endpoints.every((e) => e.ready && e.ports.http === 8080)).toBe(true);
  });

  test('the mesh daemons run on Node.js 24, also when the CLI was started by an older Node first on PATH', async () => {
    // Whatever Node the user's shell finds first (this machine ships Node 20), the CLI runs on 24 or later.
    const systemNode = execFileSync('sh', ['-c', 'PATH=/usr/local/bin:/usr/bin:/bin command -v node'], {
      encoding: 'utf8',
    }).trim();
    const cli = execFileSync(systemNode, [join(ROOT, 'dist/ctl/main.js'), 'version', '--runtime'], {
      encoding: 'utf8',
      env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
    });
    expect(cli).toMatch(/^ambit 0\.1\.0 \(Node\.js v(2[4-9]|[3-9]\d)\./);
    const versions = state.daemons.map((d) =>
      execFileSync(`/proc/${d.pid}/exe`, ['--version'], { encoding: 'utf8' }).trim(),
    );
    expect(versions.length).toBe(5);
    for (const v of versions) expect(Number(v.slice(1).split('.')[0])).toBeGreaterThanOrEqual(24);
  });

  test.each([
    ['same node, IPv4', () => `http://${sameNode.ip4}:8080/`, () => sameNode],
    ['same node, IPv6', () => `http://[${sameNode.ip6}]:8080/`, () => sameNode],
    ['other node, IPv4', () => `http://${otherNode.ip4}:8080/`, () => otherNode],
    ['other node, IPv6', () => `http://[${otherNode.ip6}]:8080/`, () => otherNode],
  ])('pod to pod by IP: %s', async (_name, url, target) => {
    const r = await curl(CLUSTER, 'client', url());
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(`hello from ${target().name} at ${target().ip4} on ${target().node}`);
  });

  test.each(['backend', 'backend.hello', 'backend.hello.svc.cluster.local'])(
    'by Service name %s',
    async (host) => {
      const r4 = await curl(CLUSTER, 'client', `http://${host}:8080/`, ['-4']);
      expect(r4.code).toBe(0);
      expect(r4.stdout).toMatch(/^hello from backend-/);
      const r6 = await curl(CLUSTER, 'client', `http://${host}:8080/`, ['-6']);
      expect(r6.code).toBe(0);
      expect(r6.stdout).toMatch(/^hello from backend-/);
    },
  );

  test.each([
    ['IPv4', 'http://10.96.0.10:8080/'],
    ['IPv6', 'http://[fd00:10:96::a]:8080/'],
  ])('Service VIP traffic reaches both replicas, every time (%s)', async (_name, url) => {
    // Repeated connections to the same-node replica catch a node that sends ICMP redirects: the second
    // reply would then bypass the node's reverse NAT and the client would reset it.
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const r = await curl(CLUSTER, 'client', url);
      expect(r.stderr).toBe('');
      seen.add(r.stdout.split(' ')[2]!);
    }
    expect([...seen].sort()).toEqual([sameNode.name, otherNode.name].sort());
  });

  test('logs show the server output of each replica', async () => {
    await curl(CLUSTER, 'client', `http://${otherNode.ip4}:8080/from-logs-test`);
    const r = await ambit(['local', 'logs', '--name', CLUSTER, '-n', 'hello', otherNode.name]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/"GET \/from-logs-test HTTP\/1\.1" 404/);
  });

  test('pods have no route off the machine and their own /tmp', async () => {
    for (const ns of netnsOf(CLUSTER)) {
      const routes = execFileSync('ip', ['-n', ns, 'route', 'show', 'default'], { encoding: 'utf8' });
      const routes6 = execFileSync('ip', ['-n', ns, '-6', 'route', 'show', 'default'], { encoding: 'utf8' });
      expect(`${ns}: ${routes}${routes6}`).toBe(`${ns}: `);
    }
    // Nothing of the host's /tmp but the path to the installation, when a checkout lives there.
    const mine = await podExec(CLUSTER, 'client', ['ls', '/tmp']);
    expect(mine.stdout.split('\n').filter(Boolean)).toEqual(
      realpathSync(ROOT).startsWith('/tmp/') ? [realpathSync(ROOT).split('/')[2]] : [],
    );
    const other = await podExec(CLUSTER, otherNode.name, ['cat', '/tmp/www/index.html']);
    expect(other.stdout).toContain(otherNode.name);
  });

  test('exec runs as the pod: its netns and cgroup', async () => {
    const r = await podExec(CLUSTER, 'client', [
      'sh',
      '-c',
      'cat /proc/self/cgroup; ip -o -4 addr show dev eth0',
    ]);
    expect(r.stdout).toContain(`/ambit/${CLUSTER}/${client.cgroup}`);
    expect(r.stdout).toContain(client.ip4);
    const exit = await podExec(CLUSTER, 'client', ['sh', '-c', 'exit 7']);
    expect(exit.code).toBe(7);
  });

  test('editing the manifests folder scales the Deployment live', async () => {
    const file = join(dir, 'backend.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('replicas: 2', 'replicas: 3'));
    const s = await waitFor(
      'a third ready backend endpoint',
      async () => {
        const st = await status(CLUSTER);
        const svc = st.services.find((x) => x.name === 'backend');
        return svc !== undefined && svc.endpoints.filter((e) => e.ready).length === 3 ? st : undefined;
      },
      60_000,
    );
    expect(s.pods.filter((p) => p.owner === 'Deployment/backend')).toHaveLength(3);
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace('port: 8080\n      targetPort', 'port: "eighty"\n      targetPort'),
    );
    const rejected = await waitFor('the broken Service to be reported', async () => {
      const st = await status(CLUSTER);
      return st.issues.some((i) => i.severity === 'error') ? st : undefined;
    });
    expect(
      rejected.issues.map((i) => `${i.file.split('/').pop()}:${i.line} ${i.path}: ${i.message}`),
    ).toContain('backend.yaml:64 spec.ports[0].port: "eighty" is not a number');
    // The rejected Service keeps its last good version: traffic still flows.
    const r = await curl(CLUSTER, 'client', 'http://backend:8080/');
    expect(r.stdout).toMatch(/^hello from backend-/);
  });

  test('a node proxy is ready only while its agent claims readiness (links attached, first view reconciled)', async () => {
    const node = state.nodes.find((n) => n.name === 'node-1')!;
    const readyFile = `/run/ambit/${CLUSTER}/nodes/node-1/agent-ready.json`;
    // The readiness probe, from inside the node as the kubelet would probe the DaemonSet pod.
    const probe = (): { code: string; body: string } => {
      const out = execFileSync(
        'nsenter',
        [
          `--net=/run/netns/${node.netns}`,
          'curl',
          '-s',
          '-w',
          '\\n%{http_code}',
          'http://127.0.0.1:15021/healthz/ready',
        ],
        { encoding: 'utf8' },
      );
      const at = out.lastIndexOf('\n');
      return { body: out.slice(0, at), code: out.slice(at + 1) };
    };
    const claim = JSON.parse(readFileSync(readyFile, 'utf8')) as {
      node: string;
      links: Record<string, number[]>;
      cluster: { pods: number; namespaces: number; enrolled: number };
    };
    expect(claim.node).toBe('node-1');
    // The cgroup links (sk_lookup attaches to the node's network namespace, not the cgroup).
    expect(Object.keys(claim.links).sort()).toEqual(['ambit_connect4', 'ambit_connect6', 'ambit_sockops']);
    for (const ids of Object.values(claim.links)) expect(ids).toHaveLength(1);
    // What the first reconciled view held (the agent starts before any pod); nothing here is in the mesh.
    expect(claim.cluster).toEqual({ pods: expect.any(Number), namespaces: expect.any(Number), enrolled: 0 });
    expect(probe()).toEqual({ code: '200', body: 'ready\n' });

    const agent = daemonPid(state, 'node-1', 'agent');
    // Keep the local daemon from restarting the agent while we look at the node without it.
    process.kill(state.daemonPid, 'SIGSTOP');
    try {
      process.kill(agent, 'SIGTERM');
      await waitFor('the agent to stop', () => !processLives(agent));
      expect(existsSync(readyFile)).toBe(false);
      expect(probe()).toEqual({
        code: '503',
        body: `not ready: node agent not ready: ${readyFile} is missing (redirect links not attached or first cluster view not reconciled yet)\n`,
      });
    } finally {
      process.kill(state.daemonPid, 'SIGCONT');
    }
    await waitFor('the restarted agent to claim readiness', () => existsSync(readyFile), 30_000);
    const second = daemonPid(state, 'node-1', 'agent');
    expect(second).not.toBe(agent);
    expect(probe()).toEqual({ code: '200', body: 'ready\n' });

    // A live agent refreshes its claim on a heartbeat.
    const refreshedAt = (): string | undefined =>
      existsSync(readyFile)
        ? (JSON.parse(readFileSync(readyFile, 'utf8')) as { refreshedAt: string }).refreshedAt
        : undefined;
    const firstBeat = refreshedAt();
    expect(firstBeat).toEqual(expect.any(String));
    await waitFor('a heartbeat', () => refreshedAt() !== firstBeat, 2 * AGENT_READY_HEARTBEAT_MS);
    // SIGKILL: no withdrawal, the claim stays on the host path; the proxy turns not ready once it is
    // no longer refreshed, within the staleness bound.
    process.kill(state.daemonPid, 'SIGSTOP');
    try {
      process.kill(second, 'SIGKILL');
      await waitFor('the agent to die', () => !processLives(second));
      expect(existsSync(readyFile)).toBe(true);
      const stale = await waitFor(
        'the node proxy to see a stale claim',
        () => {
          const p = probe();
          return p.code === '503' ? p : undefined;
        },
        AGENT_READY_STALE_MS + AGENT_READY_HEARTBEAT_MS,
      );
      expect(stale.body).toMatch(
        new RegExp(
          `^not ready: node agent not ready: ${readyFile} was last refreshed at .*, more than 15s \\(the agent refreshes it every 5s: is the node agent running\\?\\)\n$`,
        ),
      );
    } finally {
      process.kill(state.daemonPid, 'SIGCONT');
    }
    await waitFor(
      'the next agent to claim readiness again',
      () => daemonPid(state, 'node-1', 'agent') !== second && probe().code === '200',
      30_000,
    );
  });

  test('down removes every namespace, link, cgroup, nft table, process and file', async () => {
    const before = await status(CLUSTER);
    const r = await ambit(['local', 'down', '--name', CLUSTER]);
    expect(r.code).toBe(0);
    expect(leftovers(before)).toEqual([]);
    const again = await ambit(['local', 'down', '--name', CLUSTER]);
    expect(again.code).toBe(0);
  });
});
