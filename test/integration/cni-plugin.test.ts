import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import type { PodRedirectConfig } from '../../src/bpf/redirect-maps.js';
import type { ClusterPod } from '../../src/cluster/resources.js';
import type { Labels } from '../../src/config/kube-types.js';
import { AMBIENT, DATAPLANE_MODE } from '../../src/mesh/labels.js';
import { CniCalls } from '../../src/node-agent/redirection/cni-calls.js';
import { cniSandboxesFile, SandboxRecord } from '../../src/node-agent/redirection/cni-sandboxes.js';
import { startCniServer } from '../../src/node-agent/redirection/cni-server.js';
import type { EnrollmentTarget } from '../../src/node-agent/redirection/enrollment-sync.js';
import { createRootLogger } from '../../src/telemetry/logger.js';

/*
 * The real plugin binary (make cni), run as a runtime runs it: CNI environment, config on stdin,
 * against the node agent's real CNI server (with the kernel map and the API view faked).
 */
const PLUGIN = resolve(import.meta.dirname, '../../build/cni/ambit-cni');
const log = createRootLogger({ name: 't', level: 'fatal' });

class FakeTarget implements EnrollmentTarget {
  readonly map = new Map<bigint, PodRedirectConfig>();
  enrolled(): Map<bigint, PodRedirectConfig> {
    return new Map(this.map);
  }
  enroll(id: bigint, config: PodRedirectConfig): void {
    this.map.set(id, config);
  }
  unenroll(id: bigint): void {
    this.map.delete(id);
  }
}

const pod = (namespace: string, name: string, labels: Labels = {}): ClusterPod => ({
  kind: 'Pod',
  uid: `uid-${name}`,
  namespace,
  name,
  node: 'node-1',
  serviceAccount: 'default',
  labels,
  annotations: {},
  ips: [],
  phase: 'Pending',
  ready: false,
  hostNetwork: false,
  terminating: false,
});

let dir: string;
let socket: string;
let cgroups: string;
let server: Server | undefined;
const target = new FakeTarget();
const apiPods = new Map<string, ClusterPod>();
const namespaces = new Map<string, Labels>([
  ['mesh', { [DATAPLANE_MODE]: AMBIENT }],
  ['plain', {}],
]);
const enrolled: string[] = [];
let lookupFails = false;

/** A fresh agent, as after a restart: only what it persisted beside the socket carries over. */
async function agentUp(): Promise<void> {
  const calls = new CniCalls({
    sandboxes: new SandboxRecord(cniSandboxesFile(socket)),
    exclusion: { node: 'node-1', podsCgroup: cgroups },
    cgroups: { resolve: (p) => join(cgroups, p.namespace, p.name) },
    target,
    lookup: {
      pod: async (ns, name) => {
        if (lookupFails) throw new Error('the API is broken');
        return apiPods.get(`${ns}/${name}`);
      },
      namespaceLabels: async (ns) => namespaces.get(ns),
    },
    onEnrolled: async (_id, p, ips) => {
      enrolled.push(`${p} ${ips.join(',')}`);
    },
    onUnenrolled: async () => undefined,
    log,
  });
  server = await startCniServer(socket, calls, log);
}

async function agentDown(): Promise<void> {
  await new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())));
  server = undefined;
}

const PREV =
  '{ "cniVersion":"1.0.0",\n  "interfaces": [{"name":"eth0","sandbox":"/run/netns/p"}],\n  "ips":[ {"address":"10.244.1.7/32","gateway":"10.244.1.1","interface":0},{"address":"fd00:10:244:1::7/128","interface":0}],\n  "dns":{"search":["ns\\u00e9.svc"]} }';

function config(extra = `,"prevResult": ${PREV}`, version = '1.0.0', sock = socket): string {
  return `{"cniVersion":"${version}","name":"k8s-pod-network","type":"ambit-cni","socket":${JSON.stringify(sock)}${extra}}`;
}

interface PluginRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  error(): Record<string, unknown>;
}

/** Runs the plugin (asynchronously: the agent answering it lives in this process). */
function plugin(
  command: string,
  podRef: { ns: string; name: string } | undefined,
  stdin: string,
  env: Record<string, string> = {},
): Promise<PluginRun> {
  const child = spawn(PLUGIN, [], {
    env: {
      CNI_COMMAND: command,
      CNI_CONTAINERID: 'c0ffee0123456789',
      CNI_NETNS: '/run/netns/p',
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/opt/cni/bin',
      CNI_ARGS:
        podRef === undefined
          ? ''
          : `IgnoreUnknown=1;K8S_POD_NAMESPACE=${podRef.ns};K8S_POD_NAME=${podRef.name};K8S_POD_INFRA_CONTAINER_ID=c0ffee0123456789;K8S_POD_UID=uid-${podRef.name}`,
      ...env,
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdin.end(stdin);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) =>
      resolve({ code, stdout, stderr, error: () => JSON.parse(stdout) as Record<string, unknown> }),
    );
  });
}

beforeAll(() => {
  if (!existsSync(PLUGIN)) throw new Error(`${PLUGIN} is missing: build it with \`make cni\``);
  dir = mkdtempSync(join(tmpdir(), 'ambit-cni-'));
  socket = join(dir, 'run', 'cni.sock');
  cgroups = join(dir, 'cgroups');
  mkdirSync(join(dir, 'run'), { recursive: true });
  for (const p of ['mesh/app', 'mesh/late', 'plain/web']) mkdirSync(join(cgroups, p), { recursive: true });
  apiPods.set('mesh/app', pod('mesh', 'app'));
  apiPods.set('plain/web', pod('plain', 'web'));
});
afterAll(async () => {
  await agentDown();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await agentDown();
  target.map.clear();
  enrolled.length = 0;
  lookupFails = false;
  rmSync(cniSandboxesFile(socket), { force: true });
  writeFileSync(join(dir, 'run', 'enrolled-namespaces'), 'ambit-cni-namespaces v2\nmesh\n');
});

describe('ambit-cni, the real binary', () => {
  test('VERSION lists the supported spec versions', async () => {
    const r = await plugin('VERSION', undefined, '{"cniVersion":"1.0.0"}');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      cniVersion: '1.1.0',
      supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    });
  });

  test('ADD of a meshed pod enrolls it and prints prevResult byte for byte', async () => {
    await agentUp();
    const r = await plugin('ADD', { ns: 'mesh', name: 'app' }, config());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(PREV);
    expect(target.map.size).toBe(1);
    // The addresses come from the primary plugin's result: the API has none yet.
    expect(enrolled).toEqual(['mesh/app 10.244.1.7,fd00:10:244:1::7']);
  });

  test('ADD of a pod outside the mesh passes without enrolling', async () => {
    await agentUp();
    const r = await plugin('ADD', { ns: 'plain', name: 'web' }, config());
    expect(r.stdout).toBe(PREV);
    expect(r.code).toBe(0);
    expect(target.map.size).toBe(0);
  });

  test('agent down: a pod of an enrolled namespace fails closed with CNI error 11', async () => {
    const r = await plugin('ADD', { ns: 'mesh', name: 'app' }, config());
    expect(r.code).toBe(1);
    expect(r.error()).toMatchObject({
      cniVersion: '1.0.0',
      code: 11,
      msg: expect.stringContaining('pod mesh/app is in enrolled namespace mesh'),
      details: expect.stringContaining(`connect ${socket}`),
    });
  });

  test('agent down: a pod of a namespace that is not enrolled starts', async () => {
    const r = await plugin('ADD', { ns: 'plain', name: 'web' }, config());
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(PREV);
  });

  test('agent down and no enrolled-namespaces file: every pod waits (the plugin cannot tell)', async () => {
    rmSync(join(dir, 'run', 'enrolled-namespaces'));
    const r = await plugin('ADD', { ns: 'plain', name: 'web' }, config());
    expect(r.code).toBe(1);
    expect(r.error()).toMatchObject({ code: 11, msg: expect.stringContaining('enrolled-namespaces') });
  });

  test('the agent back: the same ADD now succeeds', async () => {
    expect((await plugin('ADD', { ns: 'mesh', name: 'app' }, config())).code).toBe(1);
    await agentUp();
    const r = await plugin('ADD', { ns: 'mesh', name: 'app' }, config());
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(PREV);
  });

  test('a pod of an enrolled namespace that the API does not have yet: the agent refuses, the plugin says why', async () => {
    await agentUp();
    const r = await plugin('ADD', { ns: 'mesh', name: 'late' }, config());
    expect(r.code).toBe(1);
    expect(r.error()).toMatchObject({ code: 11, msg: expect.stringContaining('mesh/late') });
    expect(r.error().msg).toMatch(/not in the Kubernetes API yet/);
  });

  test('DEL unenrolls; DEL with the agent down still succeeds', async () => {
    await agentUp();
    expect((await plugin('ADD', { ns: 'mesh', name: 'app' }, config())).code).toBe(0);
    expect(target.map.size).toBe(1);
    const del = await plugin('DEL', { ns: 'mesh', name: 'app' }, config());
    expect(del.code).toBe(0);
    expect(del.stdout).toBe('');
    expect(target.map.size).toBe(0);
    await agentDown();
    expect((await plugin('DEL', { ns: 'mesh', name: 'app' }, config(''), { CNI_NETNS: '' })).code).toBe(0);
  });

  test('a late DEL of an older sandbox leaves the pod enrolled, also after an agent restart', async () => {
    await agentUp();
    const sb = (id: string) => ({ CNI_CONTAINERID: id });
    expect((await plugin('ADD', { ns: 'mesh', name: 'app' }, config(), sb('sandbox-1'))).code).toBe(0);
    // The runtime replaces the sandbox; the pod (and its cgroup) stays.
    expect((await plugin('ADD', { ns: 'mesh', name: 'app' }, config(), sb('sandbox-2'))).code).toBe(0);
    const stale = await plugin('DEL', { ns: 'mesh', name: 'app' }, config(''), sb('sandbox-1'));
    expect(stale.code).toBe(0);
    expect(target.map.size).toBe(1);
    await agentDown();
    await agentUp();
    expect((await plugin('DEL', { ns: 'mesh', name: 'app' }, config(''), sb('sandbox-1'))).code).toBe(0);
    expect(target.map.size).toBe(1);
    // The DEL of the sandbox that enrolled it, seen by the restarted agent, unenrolls it.
    expect((await plugin('DEL', { ns: 'mesh', name: 'app' }, config(''), sb('sandbox-2'))).code).toBe(0);
    expect(target.map.size).toBe(0);
  });

  test('a DEL for a pod enrolled by an earlier agent without a record leaves it enrolled', async () => {
    await agentUp();
    expect((await plugin('ADD', { ns: 'mesh', name: 'app' }, config())).code).toBe(0);
    rmSync(cniSandboxesFile(socket));
    await agentDown();
    await agentUp();
    expect((await plugin('DEL', { ns: 'mesh', name: 'app' }, config(''))).code).toBe(0);
    expect(target.map.size).toBe(1);
  });

  test('excludeNamespaces: such a pod starts with the agent down and no namespaces file', async () => {
    rmSync(join(dir, 'run', 'enrolled-namespaces'));
    const cfg = config(`,"excludeNamespaces":["kube-system","ambit-system"],"prevResult": ${PREV}`);
    const r = await plugin('ADD', { ns: 'kube-system', name: 'coredns' }, cfg);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(PREV);
    // Another namespace still waits.
    expect((await plugin('ADD', { ns: 'plain', name: 'web' }, cfg)).code).toBe(1);
  });

  test('excludeNamespaces: passed even where the file lists the namespace', async () => {
    writeFileSync(join(dir, 'run', 'enrolled-namespaces'), 'ambit-cni-namespaces v2\nmesh\nkube-system\n');
    const r = await plugin(
      'ADD',
      { ns: 'kube-system', name: 'coredns' },
      config(`,"excludeNamespaces":["kube-system"],"prevResult": ${PREV}`),
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(PREV);
  });

  test('excludeNamespaces that is not a list of strings: CNI error 6 naming it', async () => {
    const r = await plugin(
      'ADD',
      { ns: 'mesh', name: 'app' },
      config(`,"excludeNamespaces":"kube-system","prevResult": ${PREV}`),
    );
    expect(r.code).toBe(1);
    expect(r.error()).toMatchObject({ code: 6, details: expect.stringContaining('excludeNamespaces') });
  });

  test('agent down and a namespaces file in another format: every pod waits', async () => {
    writeFileSync(join(dir, 'run', 'enrolled-namespaces'), 'mesh\n');
    const r = await plugin('ADD', { ns: 'plain', name: 'web' }, config());
    expect(r.code).toBe(1);
    expect(r.error()).toMatchObject({ code: 11, msg: expect.stringContaining('ambit-cni-namespaces v2') });
  });

  test('agent down: a namespace listed only for its opted-in pods fails closed', async () => {
    writeFileSync(join(dir, 'run', 'enrolled-namespaces'), 'ambit-cni-namespaces v2\nmesh\nplain\n');
    const r = await plugin('ADD', { ns: 'plain', name: 'web' }, config());
    expect(r.code).toBe(1);
    expect(r.error()).toMatchObject({ code: 11, msg: expect.stringContaining('enrolled namespace plain') });
  });

  test('a socket path longer than a Unix socket allows: CNI error 7 naming the limit', async () => {
    const long = join(dir, 'x'.repeat(120), 'cni.sock');
    const r = await plugin('ADD', { ns: 'mesh', name: 'app' }, config(undefined, '1.0.0', long));
    expect(r.code).toBe(1);
    expect(r.error()).toMatchObject({
      code: 7,
      msg: expect.stringMatching(/at most 107 bytes/),
      details: long,
    });
  });

  test("the agent's error answers carry the call's cniVersion", async () => {
    await agentUp();
    lookupFails = true;
    const r = await plugin('ADD', { ns: 'mesh', name: 'app' }, config(undefined, '0.4.0'));
    expect(r.code).toBe(1);
    expect(r.error()).toMatchObject({ cniVersion: '0.4.0', code: 11, details: 'the API is broken' });
  });

  test("the agent's listen backlog full (connect EAGAIN): retried, then failed closed saying so", async () => {
    // A listener that never accepts, its backlog filled (Node's net cannot hold connections unaccepted).
    const full = spawn('python3', [
      '-c',
      [
        'import socket,sys',
        `s=socket.socket(socket.AF_UNIX);s.bind(${JSON.stringify(socket)});s.listen(0)`,
        'cs=[]',
        'while True:',
        ' c=socket.socket(socket.AF_UNIX);c.setblocking(False)',
        ' try: c.connect(s.getsockname())',
        ' except BlockingIOError: break',
        ' cs.append(c)',
        'print("full",flush=True);sys.stdin.read()',
      ].join('\n'),
    ]);
    try {
      await new Promise<void>((ok, bad) => {
        full.stdout.once('data', () => ok());
        full.once('exit', (code) => bad(new Error(`the backlog helper exited (${code})`)));
      });
      const r = await plugin('ADD', { ns: 'mesh', name: 'app' }, config());
      expect(r.code).toBe(1);
      expect(r.error()).toMatchObject({
        code: 11,
        msg: expect.stringContaining('enrolled namespace mesh'),
        details: expect.stringMatching(/listen backlog stayed full \(\d+ tries\)/),
      });
    } finally {
      full.stdin.end();
      await new Promise((r) => full.once('close', r));
      rmSync(socket, { force: true });
    }
  });

  test('CHECK fails for a meshed pod that is not enrolled, and passes once it is', async () => {
    await agentUp();
    const before = await plugin('CHECK', { ns: 'mesh', name: 'app' }, config());
    expect(before.code).toBe(1);
    expect(before.error().msg).toMatch(/mesh\/app belongs in the mesh but is not enrolled/);
    expect((await plugin('ADD', { ns: 'mesh', name: 'app' }, config())).code).toBe(0);
    const after = await plugin('CHECK', { ns: 'mesh', name: 'app' }, config());
    expect(after.code).toBe(0);
    expect(after.stdout).toBe('');
  });

  test('STATUS and GC succeed, with or without the agent', async () => {
    expect((await plugin('STATUS', undefined, config(''))).code).toBe(0);
    expect((await plugin('GC', undefined, config(''))).code).toBe(0);
  });

  test.each([
    ['garbage', 'this is not json', 6, /not valid JSON/, /expected a JSON object at byte 0/],
    [
      'cut short',
      '{"cniVersion":"1.0.0","prevResult":{"ips":[',
      6,
      /not valid JSON/,
      /at the end of the input \(byte 43\)/,
    ],
    ['a trailing comma', '{"cniVersion":"1.0.0",}', 6, /not valid JSON/, /member name .* at byte 22/],
    [
      'an unknown version',
      '{"cniVersion":"9.9.9","prevResult":{}}',
      1,
      /cniVersion "9.9.9" is not supported/,
      /1\.0\.0/,
    ],
    ['no version', '{"prevResult":{}}', 7, /no cniVersion/, /^$/],
    ['no prevResult', '{"cniVersion":"1.0.0"}', 7, /chained plugin/, /^$/],
  ])('ADD with %s on stdin: a CNI error naming the problem', async (_what, stdin, code, msg, details) => {
    const r = await plugin('ADD', { ns: 'mesh', name: 'app' }, stdin);
    expect(r.code).toBe(1);
    expect(r.error()).toMatchObject({
      code,
      msg: expect.stringMatching(msg),
      details: expect.stringMatching(details),
    });
  });

  test.each([
    ['CNI_CONTAINERID', { CNI_CONTAINERID: '' }, 4, /CNI_CONTAINERID is not set/],
    ['CNI_COMMAND', { CNI_COMMAND: 'FROB' }, 4, /CNI_COMMAND "FROB" is not one of/],
  ])('a missing or wrong %s: CNI error 4', async (_what, env, code, msg) => {
    const r = await plugin('ADD', { ns: 'mesh', name: 'app' }, config(), env);
    expect(r.code).toBe(1);
    expect(r.error()).toMatchObject({ code, msg: expect.stringMatching(msg) });
  });
});
