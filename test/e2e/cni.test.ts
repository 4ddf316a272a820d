import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AMBIT_CNI_TYPE, pickConfFile } from '../../src/cni/conflist.js';
import { BPF_DIR, renderNodeCleanup } from '../../src/install/render.js';
import { DEFAULT_VALUES, parseValues } from '../../src/install/values.js';
import { LOCAL_CONFLIST, nodeCni, primaryConflist } from '../../src/local/cni-runtime.js';
import type { LocalState, PodState } from '../../src/local/state.js';
import { INBOUND_TABLE } from '../../src/node-agent/redirection/inbound-capture.js';
import { cgroupPids } from '../../src/os/cgroup.js';
import {
  ambit,
  copyManifests,
  daemonPid,
  downCluster,
  processLives,
  ROOT,
  runCmd,
  status,
  waitFor,
} from './helpers.js';

/*
 * Local mode as the container runtime of real CNI: every pod starts through the node's conflist, in
 * which the node agent inserted the real ambit-cni binary; the plugin fails closed while the agent is
 * away; the agent's uninstall step takes all of it away again.
 */
const CLUSTER = 'e2e-cni';
const RUN = `/run/ambit/${CLUSTER}`;
const PLUGIN = join(ROOT, 'build/cni/ambit-cni');

interface LogLine {
  readonly msg: string;
  readonly [k: string]: unknown;
}
function logLines(file: string): LogLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}
const agentLog = (node: string): LogLine[] => logLines(`${RUN}/nodes/${node}/node-agent.log`);
const proxyLog = (node: string): LogLine[] => logLines(`${RUN}/nodes/${node}/node-proxy.log`);
/** The agent's CNI server records: one per call the plugin forwarded. */
const cniAdds = (node: string): LogLine[] => agentLog(node).filter((l) => l.msg === 'CNI ADD done');

function enrolled(node: string): string[] {
  try {
    const s = JSON.parse(readFileSync(`${RUN}/nodes/${node}/enrollment.json`, 'utf8')) as {
      enrolled: { pod: string }[];
    };
    return s.enrolled.map((e) => e.pod).sort();
  } catch {
    return [];
  }
}

/** Where a local node keeps what a real node has at the host paths the DaemonSets mount. */
function hostPaths(local: {
  bpfDir: string;
  socketDir: string;
  binDir: string;
  confDir: string;
}): Map<string, string> {
  return new Map([
    [BPF_DIR, local.bpfDir],
    ['/var/run/ambit', local.socketDir],
    [DEFAULT_VALUES.cni.binDir, local.binDir],
    [DEFAULT_VALUES.cni.confDir, local.confDir],
  ]);
}

/**
 * The argv of a DaemonSet's first init container as a kubelet on this local node would run it: the
 * image's entrypoint word (`node-agent`) dropped, and every path under a volume mount resolved to the
 * hostPath of its volume, then to this node's folder for that host path. A path that no mount covers,
 * or a host path this node has no folder for, fails the test (the rendering changed under it).
 */
function cleanupCommand(ds: Record<string, unknown>, nodePaths: ReadonlyMap<string, string>): string[] {
  const spec = (ds as { spec: { template: { spec: Record<string, unknown> } } }).spec.template.spec as {
    initContainers: { args: string[]; volumeMounts: { name: string; mountPath: string }[] }[];
    volumes: { name: string; hostPath?: { path: string } }[];
  };
  const init = spec.initContainers[0]!;
  expect(init.args[0]).toBe('node-agent');
  const toHost = (p: string): string => {
    const m = init.volumeMounts
      .filter((vm) => p === vm.mountPath || p.startsWith(`${vm.mountPath}/`))
      .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    if (m === undefined) throw new Error(`${p}: no volume mount of the cleanup container covers it`);
    const host = spec.volumes.find((v) => v.name === m.name)?.hostPath?.path;
    if (host === undefined) throw new Error(`${p}: volume ${m.name} is not a hostPath`);
    return host + p.slice(m.mountPath.length);
  };
  const toNode = (hostPath: string): string => {
    const [prefix, local] =
      [...nodePaths]
        .filter(([h]) => hostPath === h || hostPath.startsWith(`${h}/`))
        .sort((a, b) => b[0].length - a[0].length)[0] ?? [];
    if (prefix === undefined || local === undefined)
      throw new Error(`${hostPath}: this local node has no folder for it`);
    return local + hostPath.slice(prefix.length);
  };
  return init.args.slice(1).map((a) => {
    const m = /^(--[a-z-]+)=(\/.*)$/.exec(a);
    return m === null ? a : `${m[1]}=${toNode(toHost(m[2]!))}`;
  });
}

/** The agent's flag values, from its command line. */
function agentFlag(pid: number, name: string): string {
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  return args[args.indexOf(name) + 1]!;
}

/** The cgroup ids the pinned pods map holds (the kernel's view of enrollment), decimal. */
function pinnedPods(bpfDir: string): string[] {
  const dump = JSON.parse(
    execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', join(bpfDir, 'maps', 'ambit_pods')], {
      encoding: 'utf8',
    }),
  ) as { key: string[] }[];
  return dump
    .map((e) =>
      Buffer.from(e.key.map((b) => Number.parseInt(b, 16)))
        .readBigUInt64LE()
        .toString(),
    )
    .sort();
}

/** Empties the pinned pods map behind the agent's back. */
function clearPinnedPods(bpfDir: string): void {
  const dump = JSON.parse(
    execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', join(bpfDir, 'maps', 'ambit_pods')], {
      encoding: 'utf8',
    }),
  ) as { key: string[] }[];
  for (const e of dump)
    execFileSync('bpftool', ['map', 'delete', 'pinned', join(bpfDir, 'maps', 'ambit_pods'), 'key', ...e.key]);
}

/** The cgroup ids the agent's status file shows enrolled. */
function enrolledIds(node: string): string[] {
  const s = JSON.parse(readFileSync(`${RUN}/nodes/${node}/enrollment.json`, 'utf8')) as {
    enrolled: { cgroupId: string }[];
  };
  return s.enrolled.map((e) => e.cgroupId).sort();
}

/** Ambit's program names as bpftool shows them (the kernel keeps 15 characters). */
const AMBIT_PROGS = new Set(['ambit_connect4', 'ambit_connect6', 'ambit_sockops', 'ambit_sk_lookup']);

function kill(pid: number, signal: NodeJS.Signals): void {
  process.kill(pid, signal);
}

describe('CNI: local mode runs the real plugin for every pod', () => {
  let dir: string;
  let state: LocalState;
  const pod = (ns: string, name: string): PodState | undefined =>
    state.pods.find((p) => p.namespace === ns && (p.name === name || p.name.startsWith(`${name}-`)));
  const refresh = async (): Promise<LocalState> => {
    state = await status(CLUSTER);
    return state;
  };
  const podNow = async (ns: string, name: string): Promise<PodState | undefined> => {
    await refresh();
    return pod(ns, name);
  };
  /** Thaws every process this file stopped, so that a failure leaves nothing frozen for teardown. */
  const stopped = new Set<number>();
  /** Live node-agent processes of node-1. */
  const agentPids = (): number[] => {
    const layout = state.nodes.find((n) => n.name === 'node-1')!;
    return cgroupPids(join(state.cgroupDir, layout.systemCgroup)).filter((p) => {
      try {
        return processLives(p) && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('node-agent/main.js');
      } catch {
        return false;
      }
    });
  };

  beforeAll(async () => {
    await ambit(['local', 'down', '--name', CLUSTER]);
    dir = copyManifests('test/fixtures/cni-e2e');
    const up = await ambit(['local', 'up', dir, '--name', CLUSTER]);
    expect(up.code, up.stderr).toBe(0);
    await refresh();
  });

  afterAll(async () => {
    for (const pid of stopped) if (processLives(pid)) kill(pid, 'SIGCONT');
    await downCluster(CLUSTER);
  });

  test('every node has the real plugin installed and chained after the primary network', () => {
    for (const node of state.nodes) {
      const cni = nodeCni(`${RUN}/nodes/${node.name}`);
      expect(readFileSync(join(cni.binDir, AMBIT_CNI_TYPE)).equals(readFileSync(PLUGIN))).toBe(true);
      const file = pickConfFile(readdirSync(cni.confDir), (n) => readFileSync(join(cni.confDir, n), 'utf8'));
      expect(file).toBe(LOCAL_CONFLIST);
      const list = JSON.parse(readFileSync(join(cni.confDir, file!), 'utf8')) as {
        plugins: { type: string }[];
      };
      expect(list.plugins.map((p) => p.type)).toEqual(['ambit-local-bridge', AMBIT_CNI_TYPE]);
    }
  });

  test('every pod started through the plugin: the agent of its node recorded its CNI ADD', () => {
    const pods = state.pods.filter((p) => p.namespace !== 'ambit-system');
    expect(pods.map((p) => `${p.namespace}/${p.name}`).length).toBe(5);
    for (const p of pods) {
      const adds = cniAdds(p.node).filter((l) => l.pod === `${p.namespace}/${p.name}`);
      expect(adds, `${p.namespace}/${p.name}`).toHaveLength(1);
      // Enrolled by the CNI call itself, before any container ran, exactly when its namespace is meshed.
      expect(adds[0]!.enrolled, `${p.namespace}/${p.name}`).toBe(p.namespace === 'mesh');
    }
    expect(enrolled('node-1')).toEqual(['mesh/doomed', 'mesh/resident']);
  });

  test("a fresh pod's very first connection is already in the mesh", async () => {
    const before = proxyLog('node-2').length;
    writeFileSync(
      join(dir, 'first.yaml'),
      [
        'apiVersion: v1',
        'kind: Pod',
        'metadata: { name: first, namespace: mesh }',
        'spec:',
        '  nodeName: node-1',
        '  terminationGracePeriodSeconds: 1',
        '  containers:',
        '    - name: main',
        '      command: ["/bin/sh", "-c"]',
        // Its first action: one request, no retry; then it reports and idles.
        '      args: ["curl -sS --max-time 10 -o /tmp/body http://backend:8080/; echo curl-exit=$?; cat /tmp/body; exec sleep infinity"]',
        '',
      ].join('\n'),
    );
    const logs = await waitFor(
      'the first pod to make its request',
      async () => {
        const r = await ambit(['local', 'logs', '--name', CLUSTER, '-n', 'mesh', 'first']);
        return r.stdout.includes('curl-exit=') ? r.stdout : undefined;
      },
      60_000,
    );
    expect(logs).toContain('curl-exit=0');
    expect(logs).toContain('hello from backend');
    const p = (await refresh()).pods.find((x) => x.name === 'first')!;
    const inbound = await waitFor('the inbound access line on node-2', () => {
      const lines = proxyLog('node-2')
        .slice(before)
        .filter((l) => (l as { component?: string }).component === 'access' && l.direction === 'inbound');
      return lines.length > 0 ? lines : undefined;
    });
    // One connection from the pod, and it came through the mesh with the pod's identity.
    const fromFirst = inbound.filter((l) => String(l['src.addr']).startsWith(p.ip4));
    expect(fromFirst).toHaveLength(1);
    expect(fromFirst[0]).toMatchObject({
      'src.identity': 'spiffe://cluster.local/ns/mesh/sa/default',
      connection_security_policy: 'mutual_tls',
      response_flags: '-',
    });
  });

  test('a DEL with a stale containerId (an older sandbox of a running pod) leaves the pod enrolled', async () => {
    const resident = pod('mesh', 'resident')!;
    const agent = daemonPid(state, 'node-1', 'agent');
    const socket = agentFlag(agent, '--cni-socket');
    const bpfDir = agentFlag(agent, '--bpf-dir');
    const before = pinnedPods(bpfDir);
    expect(before).toEqual(enrolledIds('node-1'));
    const r = spawnSync(join(nodeCni(`${RUN}/nodes/node-1`).binDir, AMBIT_CNI_TYPE), [], {
      input: JSON.stringify({ cniVersion: '1.0.0', name: 'k8s-pod-network', type: AMBIT_CNI_TYPE, socket }),
      encoding: 'utf8',
      env: {
        CNI_COMMAND: 'DEL',
        CNI_CONTAINERID: 'stale0000sandbox',
        CNI_NETNS: '',
        CNI_IFNAME: 'eth0',
        CNI_PATH: '/opt/cni/bin',
        CNI_ARGS: `K8S_POD_NAMESPACE=mesh;K8S_POD_NAME=${resident.name};K8S_POD_UID=${resident.uid}`,
      },
    });
    expect(r.status, r.stderr).toBe(0);
    const del = await waitFor('the agent to record the DEL', () =>
      agentLog('node-1').find((l) => l.msg === 'CNI DEL done' && l.pod === `mesh/${resident.name}`),
    );
    expect(del).toMatchObject({ enrolled: true, notes: [expect.stringMatching(/^kept: /)] });
    expect(enrolled('node-1')).toContain(`mesh/${resident.name}`);
    expect(pinnedPods(bpfDir)).toEqual(before);
  });

  test("enrollment drift heals: entries removed from the kernel map behind the agent's back come back", async () => {
    const bpfDir = agentFlag(daemonPid(state, 'node-1', 'agent'), '--bpf-dir');
    const want = enrolledIds('node-1');
    expect(want.length).toBeGreaterThan(0);
    clearPinnedPods(bpfDir);
    expect(pinnedPods(bpfDir)).toEqual([]);
    // No watch event comes (nothing changes in the API): the periodic resync (30 s) restores them.
    await waitFor(
      'the periodic resync to restore the map',
      () => (pinnedPods(bpfDir).join() === want.join() ? true : undefined),
      90_000,
    );
  });

  test('while the agent is down: an enrolled pod waits, a plain pod starts; a restarted agent catches up', async () => {
    const agent = daemonPid(state, 'node-1', 'agent');
    kill(agent, 'SIGSTOP');
    stopped.add(agent);
    // While it is away: two new pods, the namespace `late` enrolled, one enrolled pod deleted.
    writeFileSync(
      join(dir, 'during.yaml'),
      ['waiting:mesh', 'free:plain']
        .map((s) => {
          const [name, ns] = s.split(':');
          return [
            'apiVersion: v1',
            'kind: Pod',
            `metadata: { name: ${name}, namespace: ${ns} }`,
            'spec:',
            '  nodeName: node-1',
            '  terminationGracePeriodSeconds: 1',
            '  containers:',
            '    - { name: main, command: ["sleep", "infinity"] }',
          ].join('\n');
        })
        .join('\n---\n'),
    );
    const nsFile = join(dir, 'namespaces.yaml');
    writeFileSync(
      nsFile,
      readFileSync(nsFile, 'utf8').replace(
        'metadata:\n  name: late\n',
        'metadata:\n  name: late\n  labels:\n    ambit.dev/dataplane-mode: ambient\n',
      ),
    );
    const pods = join(dir, 'pods.yaml');
    writeFileSync(
      pods,
      readFileSync(pods, 'utf8')
        .split('\n---\n')
        .filter((d) => !d.includes('name: doomed'))
        .join('\n---\n'),
    );

    // The plain pod starts (the plugin times out on the agent, reads the enrolled namespaces: not one).
    await waitFor(
      'plain/free to run',
      async () => (await podNow('plain', 'free'))?.phase === 'Running',
      90_000,
    );
    // The enrolled one waits, and says why.
    const waiting = await waitFor(
      'mesh/waiting to report its failed sandbox',
      async () => {
        const w = await podNow('mesh', 'waiting');
        return w?.message?.includes('enrolled namespace mesh') === true ? w : undefined;
      },
      90_000,
    );
    expect(waiting.phase).toBe('Pending');
    expect(waiting.message).toMatch(
      /^FailedCreatePodSandBox: ambit-cni: the Ambit node agent is unreachable/,
    );
    expect(waiting.containers.every((c) => c.state === 'waiting')).toBe(true);
    // `ambit local status` says why, as kubectl describe shows the sandbox event.
    const shown = await ambit(['local', 'status', '--name', CLUSTER]);
    expect(shown.stdout).toMatch(
      /^mesh\/waiting: FailedCreatePodSandBox: ambit-cni: the Ambit node agent is unreachable/m,
    );
    await waitFor(
      'mesh/doomed to be gone',
      async () => (await podNow('mesh', 'doomed')) === undefined,
      60_000,
    );
    expect(pod('mesh', 'waiting')?.phase).toBe('Pending');
    const sleeper = pod('late', 'sleeper')!;
    expect(state.namespaces.find((n) => n.name === 'late')?.labels).toEqual({
      'ambit.dev/dataplane-mode': 'ambient',
    });
    // The stale view of the frozen agent: still the deleted pod, not the newly enrolled namespace.
    expect(enrolled('node-1')).toEqual(['mesh/doomed', 'mesh/first', 'mesh/resident']);

    // The kernel map emptied behind the agent's back: what comes back is what the new agent
    // reconciles from the cgroup tree and the API, not what the pins kept across the kill.
    const bpfDir = agentFlag(agent, '--bpf-dir');
    clearPinnedPods(bpfDir);
    expect(pinnedPods(bpfDir)).toEqual([]);
    // SIGKILL (no cleanup at all); the supervisor starts a new agent, which reconciles from the
    // cgroup tree and the API.
    kill(agent, 'SIGKILL');
    stopped.delete(agent);
    await waitFor(
      'mesh/waiting to run',
      async () => (await podNow('mesh', 'waiting'))?.phase === 'Running',
      90_000,
    );
    expect(pod('mesh', 'waiting')?.message).toBeUndefined();
    await waitFor('the restarted agent to enroll late/sleeper and drop the deleted pod', () => {
      const e = enrolled('node-1');
      return e.includes('late/sleeper') && !e.some((p) => p === 'mesh/doomed' || p === 'unknown')
        ? e
        : undefined;
    });
    expect(enrolled('node-1')).toEqual(['late/sleeper', 'mesh/first', 'mesh/resident', 'mesh/waiting']);
    // Every running enrolled pod is in the kernel map again.
    expect(pinnedPods(bpfDir)).toEqual(enrolledIds('node-1'));
    expect(pinnedPods(bpfDir)).toHaveLength(4);
    // The sleeper kept running: it was enrolled from the cluster view, without a new CNI call.
    expect(pod('late', 'sleeper')?.pausePid).toBe(sleeper.pausePid);
    expect(cniAdds('node-1').filter((l) => l.pod === 'late/sleeper')).toHaveLength(1);
    // And the waiting pod went through the plugin once the agent was back.
    expect(
      cniAdds('node-1').filter((l) => l.pod === 'mesh/waiting' && l.enrolled === true).length,
    ).toBeGreaterThan(0);
  });

  test('a crashed agent (its socket left behind, connections refused): an enrolled pod waits, then starts once it is back', async () => {
    await refresh();
    const agent = daemonPid(state, 'node-1', 'agent');
    const socket = agentFlag(agent, '--cni-socket');
    // The agent stops answering for good, as a crash leaves it: the socket file stays, nothing listens
    // on it (a socket bound and never listened on: connect() is refused). The agent is held stopped
    // rather than killed because the supervisor that would restart it also starts the pods here.
    kill(agent, 'SIGSTOP');
    stopped.add(agent);
    rmSync(socket);
    const bound = spawnSync('python3', [
      '-c',
      `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(socket)})`,
    ]);
    expect(bound.status, String(bound.stderr)).toBe(0);
    expect(existsSync(socket)).toBe(true);
    writeFileSync(
      join(dir, 'crash.yaml'),
      [
        'apiVersion: v1',
        'kind: Pod',
        'metadata: { name: aftercrash, namespace: mesh }',
        'spec:',
        '  nodeName: node-1',
        '  terminationGracePeriodSeconds: 1',
        '  containers:',
        '    - { name: main, command: ["sleep", "infinity"] }',
        '',
      ].join('\n'),
    );
    const waiting = await waitFor(
      'mesh/aftercrash to report its refused sandbox',
      async () => {
        const w = await podNow('mesh', 'aftercrash');
        return w?.message?.includes('Connection refused') === true ? w : undefined;
      },
      90_000,
    );
    expect(waiting.phase).toBe('Pending');
    expect(waiting.message).toMatch(
      /the Ambit node agent is unreachable and pod mesh\/aftercrash is in enrolled namespace mesh/,
    );
    // The agent comes back (the supervisor starts a new one, which takes over the socket path).
    kill(agent, 'SIGKILL');
    stopped.delete(agent);
    await waitFor(
      'mesh/aftercrash to run',
      async () => (await podNow('mesh', 'aftercrash'))?.phase === 'Running',
      90_000,
    );
    await waitFor('the new agent to enroll mesh/aftercrash', () =>
      enrolled('node-1').includes('mesh/aftercrash') ? true : undefined,
    );
  });

  test("ambit uninstall's node step (its rendered cleanup pod, run on the node) leaves no conflist entry, plugin, pin, link or nft table", async () => {
    await refresh();
    const node = state.nodes.find((n) => n.name === 'node-1')!;
    const cni = nodeCni(`${RUN}/nodes/node-1`);
    const agent = daemonPid(state, 'node-1', 'agent');
    // Read while the agent lives: a killed agent's /proc cmdline is empty.
    const cmdline = new Map(
      ['--bpf-dir', '--pods-cgroup', '--cni-socket'].map((f) => [f, agentFlag(agent, f)]),
    );
    const flag = (name: string): string => cmdline.get(name)!;
    const bpfDir = flag('--bpf-dir');
    const podsCgroup = flag('--pods-cgroup');
    expect(existsSync(join(cni.binDir, AMBIT_CNI_TYPE))).toBe(true);
    expect(readdirSync(bpfDir).length).toBeGreaterThan(0);
    const nftTables = (): string =>
      execFileSync('ip', ['netns', 'exec', node.netns, 'nft', 'list', 'tables'], { encoding: 'utf8' });
    expect(nftTables()).toContain(`inet ${INBOUND_TABLE}`);
    const links = (): string => execFileSync('bpftool', ['cgroup', 'show', podsCgroup], { encoding: 'utf8' });
    expect(links()).toMatch(/connect4/);
    // Every BPF link of Ambit's programs on this node: the cgroup links on the pods cgroup and the
    // sk_lookup link on the node's network namespace (the agent runs there).
    const progNames = (): Map<number, string> =>
      new Map(
        (
          JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' })) as {
            id: number;
            name?: string;
          }[]
        ).map((p) => [p.id, p.name ?? '']),
      );
    const podsCgroupId = statSync(podsCgroup, { bigint: true }).ino;
    const netnsIno = statSync(`/run/netns/${node.netns}`, { bigint: true }).ino;
    const nodeLinks = (): { prog_id: number; type: string }[] => {
      const names = progNames();
      return (
        JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8' })) as {
          prog_id: number;
          type: string;
          cgroup_id?: number | string;
          netns_ino?: number | string;
        }[]
      ).filter(
        (l) =>
          AMBIT_PROGS.has(names.get(l.prog_id) ?? '') &&
          ((l.cgroup_id !== undefined && BigInt(l.cgroup_id) === podsCgroupId) ||
            (l.netns_ino !== undefined && BigInt(l.netns_ino) === netnsIno)),
      );
    };
    const before = nodeLinks();
    expect(before.map((l) => l.type).sort()).toEqual(['cgroup', 'cgroup', 'cgroup', 'netns']);
    const ambitProgIds = new Set(before.map((l) => l.prog_id));
    // As `ambit uninstall` does: the agent goes first (here: the supervisor is held, so it stays gone).
    const daemon = state.daemonPid;
    kill(daemon, 'SIGSTOP');
    stopped.add(daemon);
    kill(agent, 'SIGKILL');
    await waitFor('the agent to exit', () => !processLives(agent));
    expect(agentPids()).toEqual([]);
    // The node step of `ambit uninstall` exactly as it renders it: the cleanup DaemonSet's init
    // container, run on this node the way a kubelet would (hostPath volumes are this node's folders).
    const cleanup = cleanupCommand(
      renderNodeCleanup(parseValues([])),
      hostPaths({
        bpfDir,
        socketDir: dirname(flag('--cni-socket')),
        binDir: cni.binDir,
        confDir: cni.confDir,
      }),
    );
    const r = await runCmd('nsenter', [
      `--net=/run/netns/${node.netns}`,
      '--',
      process.execPath,
      join(ROOT, 'dist/node-agent/main.js'),
      ...cleanup,
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // The conflist: only the primary's file, byte for byte as local mode (the "primary CNI") wrote it.
    expect(readdirSync(cni.confDir)).toEqual([LOCAL_CONFLIST]);
    expect(readFileSync(join(cni.confDir, LOCAL_CONFLIST), 'utf8')).toBe(primaryConflist(node));
    // The plugin binary, the socket and the enrolled-namespaces file.
    expect(readdirSync(cni.binDir)).toEqual([]);
    expect(
      existsSync(cni.socket),
      `${cni.socket} left; listeners: ${execFileSync('ss', ['-xlpn'], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l.includes(cni.socket))
        .join('; ')}; agents on node-1: ${agentPids().join(',')}`,
    ).toBe(false);
    expect(existsSync(join(cni.socket, '..', 'enrolled-namespaces'))).toBe(false);
    expect(existsSync(join(cni.socket, '..', 'cni-sandboxes.json'))).toBe(false);
    // Pins, and the links they held on the pods cgroup.
    expect(existsSync(bpfDir)).toBe(false);
    expect(links()).not.toMatch(/connect|sendmsg|recvmsg|getpeername|sock_ops/);
    // No link of Ambit's programs on the cgroup or the netns, and the programs themselves are gone
    // (freed once the last link went; the kernel frees them asynchronously).
    expect(nodeLinks()).toEqual([]);
    await waitFor('the programs of the node to be freed', () =>
      [...progNames().keys()].some((id) => ambitProgIds.has(id)) ? undefined : true,
    );
    // The inbound capture's nftables table in the node's namespace (local mode's Service NAT, what
    // kube-proxy is in a cluster, stays).
    expect(nftTables()).not.toContain(INBOUND_TABLE);

    // The supervisor resumes and starts the agent again: it installs everything anew.
    kill(daemon, 'SIGCONT');
    stopped.delete(daemon);
    await waitFor(
      'the new agent to insert its entry again',
      () => {
        const text = readFileSync(join(cni.confDir, LOCAL_CONFLIST), 'utf8');
        return text.includes(AMBIT_CNI_TYPE) && existsSync(join(cni.binDir, AMBIT_CNI_TYPE));
      },
      60_000,
    );
  });
});
