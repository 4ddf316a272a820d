import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { LocalState, PodState } from '../../src/local/state.js';
import {
  ambit,
  CLI,
  copyManifests,
  curl,
  daemonPid,
  downCluster,
  podExec,
  processLives,
  status,
  waitFor,
} from './helpers.js';

const CLUSTER = 'e2e-l4';

interface AccessLine {
  readonly msg: string;
  readonly direction: 'outbound' | 'inbound';
  readonly 'src.addr': string;
  readonly 'src.workload'?: string;
  readonly 'dst.addr'?: string;
  readonly 'dst.workload'?: string;
  readonly 'dst.service'?: string;
  readonly original_dst?: string;
  readonly response_flags: string;
  readonly bytes_sent: number;
  readonly bytes_recv: number;
}

function proxyLog(node: string): AccessLine[] {
  const text = readFileSync(`/run/ambit/${CLUSTER}/nodes/${node}/node-proxy.log`, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.includes('"component":"access"'))
    .map((l) => JSON.parse(l) as AccessLine);
}

function enrolled(node: string): string[] {
  try {
    const s = JSON.parse(readFileSync(`/run/ambit/${CLUSTER}/nodes/${node}/enrollment.json`, 'utf8')) as {
      enrolled: { pod: string }[];
    };
    return s.enrolled.map((e) => e.pod);
  } catch {
    return [];
  }
}

const MARKER_DST = '10.96.0.11:7000';

describe('eBPF redirection through the node proxy', () => {
  let dir: string;
  let state: LocalState;
  const pod = (name: string): PodState =>
    state.pods.find((p) => p.name === name || p.name.startsWith(`${name}-`))!;
  let backendSame: PodState;
  let backendOther: PodState;

  /**
   * Runs `fn`, then returns the access-log lines the node's proxy wrote for it. Lines are written when a
   * connection closes, so the function waits for a marker connection (made afterwards from a backend pod
   * on that node, always through the proxy) before reading: what `fn` caused is logged by then.
   */
  async function linesDuring(node: string, fn: () => Promise<unknown>): Promise<AccessLine[]> {
    const before = proxyLog(node).length;
    await fn();
    const marker = node === 'node-1' ? 'marker-1' : 'marker-2';
    await podExec(
      CLUSTER,
      marker,
      ['python3', '-c', 'import socket; socket.create_connection(("10.96.0.11", 7000)).close()'],
      'legacy',
    );
    return waitFor(`the marker line in ${node}'s proxy log`, () => {
      const lines = proxyLog(node).slice(before);
      const i = lines.findIndex((l) => l.original_dst === MARKER_DST && l['src.workload'] === marker);
      return i < 0 ? undefined : lines.slice(0, i);
    });
  }

  beforeAll(async () => {
    await ambit(['local', 'down', '--name', CLUSTER]);
    dir = copyManifests('test/fixtures/mesh-l4');
    const up = await ambit(['local', 'up', dir, '--name', CLUSTER]);
    expect(up.code, up.stderr).toBe(0);
    state = await status(CLUSTER);
    const backends = state.pods.filter((p) => p.owner === 'Deployment/backend');
    backendSame = backends.find((p) => p.node === 'node-1')!;
    backendOther = backends.find((p) => p.node === 'node-2')!;
    expect(backendSame).toBeDefined();
    expect(backendOther).toBeDefined();
  });

  afterAll(async () => {
    await downCluster(CLUSTER);
  });

  test('enrollment follows the namespace label and the pod opt-out', () => {
    expect(enrolled('node-1').sort()).toEqual(
      ['hello/client', 'hello/excluded', `hello/${backendSame.name}`, 'legacy/marker-1'].sort(),
    );
    expect(enrolled('node-2')).not.toContain('legacy/outsider');
  });

  test.each([
    ['a Service name, IPv4', () => 'http://backend:8080/', ['-4'], () => '10.96.0.10:8080'],
    ['a Service VIP, IPv6', () => 'http://[fd00:10:96::a]:8080/', [], () => '[fd00:10:96::a]:8080'],
    [
      'a pod on the same node, IPv4',
      () => `http://${backendSame.ip4}:8080/`,
      [],
      () => `${backendSame.ip4}:8080`,
    ],
    [
      'a pod on the same node, IPv6',
      () => `http://[${backendSame.ip6}]:8080/`,
      [],
      () => `[${backendSame.ip6}]:8080`,
    ],
    [
      'a pod on the other node, IPv4',
      () => `http://${backendOther.ip4}:8080/`,
      [],
      () => `${backendOther.ip4}:8080`,
    ],
    [
      'a pod on the other node, IPv6',
      () => `http://[${backendOther.ip6}]:8080/`,
      [],
      () => `[${backendOther.ip6}]:8080`,
    ],
  ])('curl in an enrolled pod reaches %s through the node proxy', async (_name, url, extra, original) => {
    let out = '';
    const lines = await linesDuring('node-1', async () => {
      const r = await curl(CLUSTER, 'client', url(), extra);
      expect(r.stderr).toBe('');
      out = r.stdout;
    });
    expect(out).toMatch(/^hello from backend-/);
    // The client's proxy reports the outbound side (a same-node target also shows an inbound line).
    const mine = lines.filter((l) => l.original_dst === original() && l.direction === 'outbound');
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({
      msg: 'connection complete',
      'src.workload': 'client',
      response_flags: '-',
    });
    const client = pod('client');
    expect([`${client.ip4}:`, `[${client.ip6}]:`].some((p) => mine[0]!['src.addr'].startsWith(p))).toBe(true);
    expect(out).toContain(mine[0]!['dst.workload']!);
  });

  test.each([
    ['a pod in a namespace outside the mesh', 'outsider', 'legacy', 'node-2'],
    ['an opted-out pod', 'optout', 'hello', 'node-1'],
    ['an excluded port', 'excluded', 'hello', 'node-1'],
  ])('%s bypasses the proxy', async (_name, client, ns, node) => {
    const lines = await linesDuring(node, async () => {
      const r = await curl(CLUSTER, client, 'http://backend.hello:8080/', [], ns);
      expect(r.stdout).toMatch(/^hello from backend-/);
    });
    const src = pod(client);
    expect(lines.filter((l) => l['src.addr'].includes(src.ip4) || l['src.addr'].includes(src.ip6))).toEqual(
      [],
    );
  });

  test('an excluded pod still goes through the proxy on other ports', async () => {
    const lines = await linesDuring('node-1', async () => {
      const r = await podExec(CLUSTER, 'excluded', [
        'python3',
        '-c',
        'import socket; s = socket.create_connection(("echo", 7000)); s.sendall(b"ping\\n"); print(s.recv(10).decode())',
      ]);
      expect(r.stdout).toContain('ping');
    });
    expect(lines.some((l) => l.original_dst === '10.96.0.11:7000')).toBe(true);
  });

  test('labelling and unlabelling the namespace switches live pods out and back in', async () => {
    const file = join(dir, 'namespaces.yaml');
    const original = readFileSync(file, 'utf8');
    writeFileSync(file, original.replace('    ambit.dev/dataplane-mode: ambient\n', ''));
    let lines: AccessLine[];
    try {
      await waitFor('client to be unenrolled', () => !enrolled('node-1').includes('hello/client'), 30_000);
      lines = await linesDuring('node-1', () => curl(CLUSTER, 'client', 'http://backend:8080/'));
      expect(lines.filter((l) => l['src.workload'] === 'client')).toEqual([]);
    } finally {
      writeFileSync(file, original);
    }
    await waitFor('client to be enrolled again', () => enrolled('node-1').includes('hello/client'), 30_000);
    lines = await linesDuring('node-1', () => curl(CLUSTER, 'client', 'http://backend:8080/'));
    expect(lines.filter((l) => l['src.workload'] === 'client')).toHaveLength(1);
  });

  test('killing the agent keeps open connections and redirection; the restarted agent adopts its programs', async () => {
    // A long-lived connection through the proxy: echo one line, wait for a file, echo another.
    const script =
      'import socket,os,time\n' +
      's=socket.create_connection(("echo",7000)); s.sendall(b"one\\n"); print(s.recv(10).decode().strip(), flush=True)\n' +
      'while not os.path.exists("/tmp/go"): time.sleep(0.05)\n' +
      's.sendall(b"two\\n"); print(s.recv(10).decode().strip(), flush=True)\n';
    const longLived = spawn(process.execPath, [
      CLI,
      'local',
      'exec',
      '--name',
      CLUSTER,
      '-n',
      'hello',
      'client',
      '--',
      'python3',
      '-c',
      script,
    ]);
    let out = '';
    longLived.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitFor('the first echo', () => out.includes('one'));

    const agent = daemonPid(state, 'node-1', 'agent');
    // Keep the local daemon from restarting the agent while we look at the node without it.
    process.kill(state.daemonPid, 'SIGSTOP');
    try {
      process.kill(agent, 'SIGKILL');
      await waitFor('the agent to die', () => !processLives(agent));
      const lines = await linesDuring('node-1', () =>
        curl(CLUSTER, 'client', `http://${backendOther.ip4}:8080/`),
      );
      expect(lines.filter((l) => l['src.workload'] === 'client')).toHaveLength(1);
    } finally {
      process.kill(state.daemonPid, 'SIGCONT');
    }
    await waitFor(
      'a new agent',
      () => {
        try {
          return daemonPid(state, 'node-1', 'agent') !== agent;
        } catch {
          return false;
        }
      },
      30_000,
    );
    const agentLog = `/run/ambit/${CLUSTER}/nodes/node-1/node-agent.log`;
    const installed = await waitFor(
      'the new agent to adopt the pinned programs',
      () => {
        const lines = readFileSync(agentLog, 'utf8')
          .split('\n')
          .filter((l) => l.includes('"redirection installed"'));
        return lines.length >= 2
          ? (JSON.parse(lines.at(-1)!) as { kept: string[]; created: string[] })
          : undefined;
      },
      30_000,
    );
    expect(installed.created).toEqual([]);
    expect(installed.kept.sort()).toEqual([
      'ambit_connect4',
      'ambit_connect6',
      'ambit_sk_lookup',
      'ambit_sockops',
    ]);
    const podsCg = join(state.cgroupDir, state.nodes[0]!.podsCgroup);
    const progs = execFileSync('bpftool', ['cgroup', 'show', podsCg], { encoding: 'utf8' });
    expect(progs.match(/ambit_connect4/g)).toHaveLength(1);
    expect(progs.match(/ambit_sockops/g)).toHaveLength(1);

    await podExec(CLUSTER, 'client', ['touch', '/tmp/go']);
    // The long-lived connection answers its second line and ends; a hang says where it was.
    await waitFor(
      'the long-lived connection to echo its second line and exit',
      () => longLived.exitCode !== null || longLived.signalCode !== null,
      30_000,
    ).catch((err: unknown) => {
      longLived.kill('SIGKILL');
      throw new Error(`${(err as Error).message}; it printed ${JSON.stringify(out)}`);
    });
    expect(out.trim().split('\n')).toEqual(['one', 'two']);
  });

  test('no redirect loop: one access line per connection, the proxy runs outside the pods cgroup, and a direct connection to 15001 is refused', async () => {
    const lines = await linesDuring('node-1', async () => {
      for (let i = 0; i < 5; i++) await curl(CLUSTER, 'client', `http://${backendOther.ip4}:8080/`);
    });
    expect(lines.filter((l) => l['src.workload'] === 'client')).toHaveLength(5);
    const proxy = daemonPid(state, 'node-1', 'proxy');
    const cg = readFileSync(`/proc/${proxy}/cgroup`, 'utf8');
    expect(cg).toContain(`/nodes/node-1/system`);
    expect(cg).not.toContain('/kubepods.slice');
    // The outsider is not redirected; it dials node-2's proxy address directly and is reset.
    const direct = await linesDuring('node-2', async () => {
      const r = await curl(CLUSTER, 'outsider', `http://${state.nodes[1]!.proxy4}:15001/`, [], 'legacy');
      expect(r.code).not.toBe(0);
    });
    expect(direct.map((l) => l.response_flags)).toContain('NR');
  });

  test("enrolled pods' traffic fails closed while the proxy is down", async () => {
    process.kill(state.daemonPid, 'SIGSTOP');
    const proxy = daemonPid(state, 'node-1', 'proxy');
    try {
      process.kill(proxy, 'SIGKILL');
      await waitFor('the proxy to die', () => !processLives(proxy));
      const r = await curl(CLUSTER, 'client', 'http://backend:8080/');
      expect(r.code).toBe(7); // curl: failed to connect
    } finally {
      process.kill(state.daemonPid, 'SIGCONT');
    }
    await waitFor(
      'the proxy to be back',
      async () => (await curl(CLUSTER, 'client', 'http://backend:8080/')).code === 0,
      30_000,
    );
  });

  test('after down no Ambit BPF object is left in bpffs or attached to any cgroup', async () => {
    const r = await ambit(['local', 'down', '--name', CLUSTER]);
    expect(r.code).toBe(0);
    expect(execFileSync('bpftool', ['prog', 'show'], { encoding: 'utf8' })).not.toContain('ambit_');
    expect(execFileSync('bpftool', ['map', 'show'], { encoding: 'utf8' })).not.toContain('ambit_');
    expect(execFileSync('bpftool', ['cgroup', 'tree'], { encoding: 'utf8' })).not.toContain('ambit_');
    expect(execFileSync('sh', ['-c', 'ls -R /sys/fs/bpf'], { encoding: 'utf8' })).not.toContain(CLUSTER);
  });
});
