import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { certInfo } from '../../src/identity/x509.js';
import type { LocalState } from '../../src/local/state.js';
import { ambit, copyManifests, curl, downCluster, runCmd, status, tempDir, waitFor } from './helpers.js';

/*
 * kubectl (v1.32, as it is on this machine) against local mode's Kubernetes API: it reads the cluster,
 * and every change it makes goes into the manifests folder and from there to the mesh.
 */

const CLUSTER = 'e2e-kubectl';
let manifests = '';
let kubeconfig = '';
let state: LocalState;

function kubectl(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCmd('kubectl', ['--kubeconfig', kubeconfig, ...args], { timeoutMs: 30_000 });
}

function enrolled(node: string): string[] {
  const file = `/run/ambit/${CLUSTER}/nodes/${node}/enrollment.json`;
  if (!existsSync(file)) return [];
  return (JSON.parse(readFileSync(file, 'utf8')) as { enrolled: { pod: string }[] }).enrolled.map(
    (e) => e.pod,
  );
}

async function hello(): Promise<'ok' | 'refused'> {
  const r = await curl(CLUSTER, 'client', 'http://backend:8080/');
  return r.code === 0 && r.stdout.includes('hello from') ? 'ok' : 'refused';
}

const DENY = `apiVersion: security.ambit.dev/v1alpha1
kind: AuthorizationPolicy
metadata:
  name: deny-client
  namespace: hello
spec:
  action: DENY
  rules:
    - from:
        - source:
            principals: ["cluster.local/ns/hello/sa/client"]
`;

describe('kubectl against a local cluster', () => {
  beforeAll(async () => {
    manifests = copyManifests('examples/hello');
    // Start outside the mesh: kubectl enrolls the namespace.
    const ns = join(manifests, 'namespace.yaml');
    writeFileSync(
      ns,
      readFileSync(ns, 'utf8').replace(/\n {2}labels:\n {4}ambit\.dev\/dataplane-mode: ambient\n?/, '\n'),
    );
    await downCluster(CLUSTER).catch(() => undefined);
    const up = await ambit(['local', 'up', manifests, '--nodes', '2', '--name', CLUSTER, '--wait', '120s'], {
      timeoutMs: 150_000,
    });
    expect(up.code, `${up.stdout}\n${up.stderr}`).toBe(0);
    const k = await ambit(['local', 'kubeconfig', '--path', '--name', CLUSTER]);
    expect(k.code, k.stderr).toBe(0);
    kubeconfig = k.stdout.trim();
    state = await status(CLUSTER);
  }, 180_000);

  afterAll(async () => {
    await downCluster(CLUSTER);
  }, 60_000);

  test('get pods -A -o wide, get svc,endpointslices, describe pod: the cluster as local mode runs it', async () => {
    const pods = await kubectl(['get', 'pods', '-A', '-o', 'wide']);
    expect(pods.code, pods.stderr).toBe(0);
    const [head, ...rows] = pods.stdout.trim().split('\n');
    expect(head).toMatch(
      /^NAMESPACE\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES$/,
    );
    for (const p of state.pods) {
      const row = rows.find((r) => r.split(/\s+/)[1] === p.name)?.split(/\s+/);
      expect(row, p.name).toBeDefined();
      expect([row![0], row![2], row![3], row![6], row![7]]).toEqual([
        p.namespace,
        '1/1',
        'Running',
        p.ip4,
        p.node,
      ]);
    }
    const backend = state.services.find((s) => s.name === 'backend')!;
    const svc = await kubectl(['get', 'svc,endpointslices', '-n', 'hello']);
    expect(svc.code, svc.stderr).toBe(0);
    expect(svc.stdout).toMatch(
      new RegExp(
        `service/backend\\s+ClusterIP\\s+${backend.vips[0]!.replace(/\./g, '\\.')}\\s+<none>\\s+8080/TCP`,
      ),
    );
    const v4 = svc.stdout.split('\n').find((l) => /endpointslice.*IPv4/.test(l)) ?? '';
    for (const e of backend.endpoints) expect(v4).toContain(e.ip4);
    const client = state.pods.find((p) => p.name === 'client')!;
    const node = state.nodes.find((n) => n.name === client.node)!;
    const describe = await kubectl(['describe', 'pod', 'client', '-n', 'hello']);
    expect(describe.code, describe.stderr).toBe(0);
    expect(describe.stdout).toMatch(new RegExp(`Node:\\s+${client.node}/${node.ip4.replace(/\./g, '\\.')}`));
    expect(describe.stdout).toMatch(/Status:\s+Running/);
    expect(describe.stdout).toContain(`IP:  ${client.ip6}`);
    const none = await kubectl(['get', 'httproutes,gateways', '-A']);
    expect(none.code, none.stderr).toBe(0);
    expect(`${none.stdout}${none.stderr}`).toContain('No resources found');
  });

  test('kubectl logs shows a container’s output, --tail and a wrong container as the API server says', async () => {
    expect(await hello()).toBe('ok');
    const backends = state.pods.filter((p) => p.owner === 'Deployment/backend').map((p) => p.name);
    const logs = await Promise.all(backends.map((b) => kubectl(['logs', b, '-n', 'hello'])));
    for (const l of logs) expect(l.code, l.stderr).toBe(0);
    expect(logs.map((l) => l.stdout).join('')).toMatch(/"GET \/ HTTP\/1\.1" 200/);
    const tail = await kubectl(['logs', backends[0]!, '-n', 'hello', '--tail=1']);
    expect(tail.stdout.trim().split('\n')).toHaveLength(1);
    const wrong = await kubectl(['logs', backends[0]!, '-n', 'hello', '-c', 'nope']);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('container nope is not valid for pod');
  });

  test('kubectl label ns enrolls it live; a DENY applied with kubectl blocks the client, deleting it lets it back', async () => {
    expect(enrolled(state.pods.find((p) => p.name === 'client')!.node)).not.toContain('hello/client');
    expect(await hello()).toBe('ok');
    const label = await kubectl(['label', 'ns', 'hello', 'ambit.dev/dataplane-mode=ambient']);
    expect(label.code, label.stderr).toBe(0);
    expect(label.stdout).toContain('namespace/hello labeled');
    expect(readFileSync(join(manifests, 'namespace.yaml'), 'utf8')).toContain(
      'ambit.dev/dataplane-mode: ambient',
    );
    for (const p of state.pods)
      await waitFor(`${p.name} enrolled`, () => enrolled(p.node).includes(`hello/${p.name}`));

    const file = join(tempDir('ambit-kubectl-'), 'deny.yaml');
    writeFileSync(file, DENY);
    const apply = await kubectl(['apply', '-f', file]);
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stdout).toContain('authorizationpolicy.security.ambit.dev/deny-client created');
    expect(readdirSync(manifests)).toContain('authorizationpolicy-hello-deny-client.yaml');
    await waitFor('the DENY to apply', async () => (await hello()) === 'refused');
    const get = await kubectl(['get', 'authorizationpolicies', '-n', 'hello']);
    expect(get.stdout).toMatch(/^deny-client\s+\S+$/m);

    const del = await kubectl(['delete', '-f', file]);
    expect(del.code, del.stderr).toBe(0);
    expect(readdirSync(manifests)).not.toContain('authorizationpolicy-hello-deny-client.yaml');
    await waitFor('the client to get back in', async () => (await hello()) === 'ok');
  });

  test('ambit uninstall refuses while a namespace is enrolled, naming it; ambit namespace unenroll/enroll go through kubectl', async () => {
    const kc = ['--kubeconfig', kubeconfig];
    const refused = await ambit(['uninstall', ...kc]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('uninstall refused: namespaces still enrolled');
    expect(refused.stderr).toContain('hello');
    const un = await ambit(['namespace', 'unenroll', 'hello', ...kc]);
    expect(un.code, un.stderr).toBe(0);
    expect(readFileSync(join(manifests, 'namespace.yaml'), 'utf8')).not.toContain(
      'ambit.dev/dataplane-mode: ambient',
    );
    for (const p of state.pods)
      await waitFor(`${p.name} unenrolled`, () => !enrolled(p.node).includes(`hello/${p.name}`));
    const en = await ambit(['namespace', 'enroll', 'hello', ...kc]);
    expect(en.code, en.stderr).toBe(0);
    for (const p of state.pods)
      await waitFor(`${p.name} enrolled again`, () => enrolled(p.node).includes(`hello/${p.name}`));
  });

  test('an invalid object is refused with file:line:path and nothing is written; the rest keeps serving', async () => {
    const file = join(tempDir('ambit-kubectl-'), 'bad.yaml');
    writeFileSync(file, DENY.replace('action: DENY', 'action: MAYBE'));
    const before = readdirSync(manifests).sort();
    const apply = await kubectl(['apply', '-f', file]);
    expect(apply.code).not.toBe(0);
    expect(apply.stderr).toMatch(
      /authorizationpolicy-hello-deny-client\.yaml:\d+ spec\.action: "MAYBE" is not one of ALLOW, DENY/,
    );
    expect(readdirSync(manifests).sort()).toEqual(before);
    expect(await hello()).toBe('ok');
  });

  test('kubectl scale: the new endpoint shows in ambit proxy-config services, and kubectl get -w shows the new pod', async () => {
    let watched = '';
    const w: ChildProcess = spawn('kubectl', [
      '--kubeconfig',
      kubeconfig,
      'get',
      'pods',
      '-n',
      'hello',
      '-w',
      '--output-watch-events',
    ]);
    w.stdout?.on('data', (d: Buffer) => {
      watched += d.toString();
    });
    try {
      await waitFor('the watch to list', () => watched.includes('client'));
      const scale = await kubectl(['scale', 'deployment', 'backend', '-n', 'hello', '--replicas=3']);
      expect(scale.code, scale.stderr).toBe(0);
      expect(scale.stdout).toContain('deployment.apps/backend scaled');
      const text = readFileSync(join(manifests, 'backend.yaml'), 'utf8');
      expect(text).toContain('replicas: 3');
      expect(text).toContain('# Two replicas of a real HTTP server'); // The file's comments stay.
      const known = new Set(state.pods.map((p) => p.name));
      const added = await waitFor('a third backend pod', async () => {
        const s = await status(CLUSTER);
        const fresh = s.pods.find((p) => !known.has(p.name) && p.ready);
        return fresh;
      });
      await waitFor('the new endpoint in proxy-config services', async () => {
        const r = await ambit([
          'proxy-config',
          'services',
          '--name',
          CLUSTER,
          '--node',
          'node-1',
          '-o',
          'json',
        ]);
        const svc = (
          JSON.parse(r.stdout) as { name: string; endpoints: { workloadUid: string; ready: boolean }[] }[]
        ).find((x) => x.name === 'backend');
        return svc?.endpoints.some((e) => e.workloadUid === added.uid && e.ready) === true;
      });
      await waitFor('kubectl get -w to show the new pod', () =>
        watched.split('\n').some((l) => l.startsWith('ADDED') && l.includes(added.name)),
      );
      const deploy = await kubectl(['get', 'deploy', 'backend', '-n', 'hello']);
      expect(deploy.stdout).toMatch(/backend\s+3\/3/);
      // The Deployment is served as its manifest wrote it (what kubectl edit would see), with its status.
      const env = await kubectl([
        'get',
        'deploy',
        'backend',
        '-n',
        'hello',
        '-o',
        'jsonpath={.spec.replicas} {.spec.template.spec.containers[0].env[*].name} {.status.readyReplicas}',
      ]);
      expect(env.stdout).toBe('3 POD_NAME POD_IP NODE_NAME 3');
    } finally {
      w.kill();
    }
  });
  test('kubectl get configmap ambit-ca-root-cert holds, in every namespace, the root the mesh signs with', async () => {
    expect(await hello()).toBe('ok');
    const ca = await ambit(['ca', 'status', '--name', CLUSTER, '-o', 'json']);
    expect(ca.code, ca.stderr).toBe(0);
    const view = JSON.parse(ca.stdout) as {
      signingRoot: string;
      trusted: { serial: string }[];
      certificates: { identity: string; root: string }[];
    };
    // The workloads' certificates chain to it.
    expect(view.certificates.length).toBeGreaterThan(0);
    expect(view.certificates.every((c) => c.root === view.signingRoot)).toBe(true);
    for (const ns of ['hello', 'ambit-system', 'default', 'kube-system']) {
      const r = await kubectl([
        'get',
        'configmap',
        'ambit-ca-root-cert',
        '-n',
        ns,
        '-o',
        'jsonpath={.data.root-cert\\.pem}',
      ]);
      expect(r.code, `${ns}: ${r.stderr}`).toBe(0);
      const pems = r.stdout.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g) ?? [];
      expect(
        pems.map((p) => certInfo(p).serial),
        ns,
      ).toEqual(view.trusted.map((t) => t.serial));
      expect(certInfo(pems[0]!).serial, ns).toBe(view.signingRoot);
    }
    // The control plane's, found by its label; kept out of the user's manifests.
    const labelled = await kubectl([
      'get',
      'cm',
      '-A',
      '-l',
      'app.kubernetes.io/managed-by=ambit-control-plane',
      '-o',
      'name',
    ]);
    expect(labelled.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(4);
    for (const f of readdirSync(manifests))
      expect(readFileSync(join(manifests, f), 'utf8'), f).not.toContain('ambit-ca-root-cert');
  });
});
