import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { LocalState, PodState } from '../../src/local/state.js';
import { ambit, copyManifests, curl, downCluster, runCmd, status, waitFor } from './helpers.js';

/**
 * Local mode in the kubelet's shape: pods in the systemd driver's slices below each node's
 * kubepods.slice, their processes in containerd-style scopes, found by the node agent's one resolver.
 * And loop safety on it: a hostNetwork pod and an Ambit pod of an enrolled namespace are never enrolled.
 */
const CLUSTER = 'e2e-cgroups';

interface AccessLine {
  readonly direction: 'outbound' | 'inbound';
  readonly 'src.addr': string;
  readonly 'src.workload'?: string;
  readonly 'src.identity'?: string;
  readonly 'dst.workload'?: string;
  readonly connection_security_policy?: string;
}

function proxyLog(node: string): AccessLine[] {
  return readFileSync(`/run/ambit/${CLUSTER}/nodes/${node}/node-proxy.log`, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"component":"access"'))
    .map((l) => JSON.parse(l) as AccessLine);
}

interface AgentStatus {
  readonly enrolled: readonly { pod: string }[];
  readonly excluded: readonly { pod: string; reason: string }[];
}

function agentStatus(node: string): AgentStatus {
  return JSON.parse(
    readFileSync(`/run/ambit/${CLUSTER}/nodes/${node}/enrollment.json`, 'utf8'),
  ) as AgentStatus;
}

describe('the kubelet cgroup layout in local mode, and loop safety', () => {
  let state: LocalState;
  const pod = (name: string): PodState => state.pods.find((p) => p.name === name)!;

  beforeAll(async () => {
    await ambit(['local', 'down', '--name', CLUSTER]);
    const up = await ambit(['local', 'up', copyManifests('test/fixtures/node-cgroups'), '--name', CLUSTER]);
    expect(up.code, up.stderr).toBe(0);
    state = await status(CLUSTER);
    // The agents report once they have synced with the API (up returns when the pods are ready).
    await waitFor('the agents to enroll the meshed pods', () => {
      const one = agentStatus('node-1').enrolled.map((e) => e.pod);
      const two = agentStatus('node-2').enrolled.map((e) => e.pod);
      return one.includes('shop/client') && one.includes('shop/steady') && two.includes('shop/web');
    });
  });

  afterAll(async () => {
    await downCluster(CLUSTER);
  });

  test.each([
    ['client', 'node-1', 'BestEffort', 'kubepods-besteffort.slice/kubepods-besteffort-pod'],
    ['web', 'node-2', 'Burstable', 'kubepods-burstable.slice/kubepods-burstable-pod'],
    ['steady', 'node-1', 'Guaranteed', 'kubepods-pod'],
  ])(
    '%s (%s, %s) is in the kubelet systemd slice of its QoS class, its container in a scope',
    async (name, node, qos, slices) => {
      const p = pod(name);
      const uid_ = p.uid.replaceAll('-', '_');
      expect(p.cgroup).toBe(`nodes/${node}/kubepods.slice/${slices}${uid_}.slice`);
      const pid = p.containers[0]!.pid!;
      const own = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      expect(own).toMatch(
        new RegExp(
          `^0::/ambit/${CLUSTER}/nodes/${node}/kubepods\\.slice/.*pod${uid_}\\.slice/cri-containerd-[0-9a-f]{64}\\.scope$`,
          'm',
        ),
      );
      // The API reports the QoS class, as the node agent's resolver reads it.
      const kubeconfig = join('/run/ambit', CLUSTER, 'kube', 'admin.kubeconfig');
      const q = await runCmd('kubectl', [
        '--kubeconfig',
        kubeconfig,
        'get',
        'pod',
        '-n',
        'shop',
        name,
        '-o',
        'jsonpath={.status.qosClass}',
      ]);
      expect(q.stdout).toBe(qos);
    },
  );

  test('the agents enroll the meshed pods and list the hostNetwork and Ambit pods as excluded, with the reason', async () => {
    expect(
      agentStatus('node-1')
        .enrolled.map((e) => e.pod)
        .sort(),
    ).toEqual(['shop/client', 'shop/steady']);
    expect(agentStatus('node-2').enrolled.map((e) => e.pod)).toEqual(['shop/web']);
    expect(agentStatus('node-1').excluded).toEqual([
      { pod: 'shop/ambit-client', reason: 'ambit-component' },
      { pod: 'shop/host-client', reason: 'host-network' },
    ]);
    const text = await ambit(['local', 'status', '--name', CLUSTER]);
    const row = (name: string) =>
      text.stdout.split('\n').find((l) => l.startsWith('shop') && l.includes(` ${name} `));
    expect(row('client')).toMatch(/ ambient$/);
    expect(row('host-client')).toMatch(/ excluded \(host-network\)$/);
    expect(row('ambit-client')).toMatch(/ excluded \(ambit-component\)$/);
  });

  test('the host-network pod runs in the node network namespace, with the node addresses', async () => {
    const node1 = state.nodes.find((n) => n.name === 'node-1')!;
    expect(pod('host-client').ip4).toBe(node1.ip4);
    const r = await ambit([
      'local',
      'exec',
      '--name',
      CLUSTER,
      '-n',
      'shop',
      'host-client',
      '--',
      'ip',
      '-o',
      '-4',
      'addr',
      'show',
      'dev',
      'eth0',
    ]);
    expect(r.stdout).toContain(`${node1.ip4}/`);
  });

  test('an enrolled pod connects through the node proxies, over mutual TLS with its identity', async () => {
    const web = pod('web');
    const before = proxyLog('node-2').length;
    const r = await curl(CLUSTER, 'client', `http://${web.ip4}:8080/`, [], 'shop');
    expect(r.stdout).toBe('hello from web\n');
    const line = await waitFor('the inbound line on node-2', () =>
      proxyLog('node-2')
        .slice(before)
        .find((l) => l.direction === 'inbound' && l['src.workload'] === 'client'),
    );
    expect(line).toMatchObject({
      'src.identity': 'spiffe://cluster.local/ns/shop/sa/default',
      'dst.workload': 'web',
      connection_security_policy: 'mutual_tls',
    });
  });

  test.each(['host-client', 'ambit-client'])(
    '%s connects around the proxy: never redirected, never mTLS',
    async (name) => {
      const web = pod('web');
      const src = pod(name);
      const node1 = proxyLog('node-1').length;
      const node2 = proxyLog('node-2').length;
      const r = await curl(CLUSTER, name, `http://${web.ip4}:8080/`, [], 'shop');
      expect(r.stdout).toBe('hello from web\n');
      // An enrolled connection afterwards: once its lines are written, the earlier connection's would be too.
      await curl(CLUSTER, 'client', `http://${web.ip4}:8080/`, [], 'shop');
      await waitFor(
        'the enrolled client lines on node-1 and node-2',
        () =>
          proxyLog('node-1')
            .slice(node1)
            .some((l) => l['src.workload'] === 'client') &&
          proxyLog('node-2')
            .slice(node2)
            .some((l) => l.direction === 'inbound' && l['src.workload'] === 'client'),
      );
      // The source node's proxy saw only the enrolled client: the other connection was not redirected
      // (whatever source address a redirected one would have had).
      expect(
        proxyLog('node-1')
          .slice(node1)
          .map((l) => l['src.workload']),
      ).toEqual(['client']);
      // ... and the destination node recorded it as plaintext from its own address, not the mesh's mTLS.
      const fromSrc = proxyLog('node-2')
        .slice(node2)
        .filter((l) => l['src.addr'].startsWith(`${src.ip4}:`));
      expect(fromSrc.length).toBeGreaterThan(0);
      for (const l of fromSrc) expect(l.connection_security_policy).not.toBe('mutual_tls');
    },
  );
});
