import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { clusterCgroupDir } from '../../src/local/layout.js';
import { cgroupPids, cgroupTree, detectCgroup2Root } from '../../src/os/cgroup.js';
import { ambit, ambitSpawn, netnsOf, processLives, waitFor } from './helpers.js';

test('down cleans up after `up` and its daemon were killed with SIGKILL half-way', async () => {
  const cluster = 'e2e-crash';
  await ambit(['local', 'down', '--name', cluster]);
  const up = ambitSpawn(['local', 'up', 'examples/hello', '--nodes', '2', '--name', cluster]);
  let out = '';
  up.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  // Half-way: the nodes exist and the first pod is being created.
  await waitFor('the first pod to start', () => out.includes('starting pod'), 60_000);
  const daemonPid = Number(readFileSync(`/run/ambit/${cluster}/daemon.pid`, 'utf8'));
  up.kill('SIGKILL');
  process.kill(daemonPid, 'SIGKILL');
  await waitFor('the daemon to die', () => !processLives(daemonPid));

  const cgroupDir = clusterCgroupDir(detectCgroup2Root()!, cluster);
  const orphans = cgroupTree(cgroupDir).flatMap(cgroupPids);
  expect(netnsOf(cluster).length).toBeGreaterThan(0);
  expect(orphans.length).toBeGreaterThan(0);

  const down = await ambit(['local', 'down', '--name', cluster]);
  expect(down.code).toBe(0);
  expect(down.stdout).toMatch(/removed \d+ namespaces/);
  expect(netnsOf(cluster)).toEqual([]);
  expect(existsSync(cgroupDir)).toBe(false);
  expect(orphans.filter(processLives)).toEqual([]);
  expect(existsSync(join('/run/ambit', cluster))).toBe(false);
  expect(existsSync(`/etc/netns/${cluster}.pod.hello.client`)).toBe(false);
});

test('a manifest with several mistakes reports all of them and creates nothing', async () => {
  const cluster = 'e2e-bad';
  const r = await ambit(['local', 'up', 'test/fixtures/bad-manifests', '--name', cluster]);
  expect(r.code).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toEqual([
    'test/fixtures/bad-manifests/app.yaml:12 spec.replicas: -2 is negative',
    'test/fixtures/bad-manifests/app.yaml:23 spec.template.spec.containers[0].ports[0].containerPort: 80800 is above the maximum 65535',
    'test/fixtures/bad-manifests/app.yaml:26 spec.template.spec.containers[0].env[0].value: 8080 is not a string (quote it)',
    'test/fixtures/bad-manifests/svc.yaml:9 spec.ports[0].port: "http" is not a number',
    'test/fixtures/bad-manifests/svc.yaml:16 metadata.namespace: namespace "nowhere" is not defined; add a Namespace object for it',
    'test/fixtures/bad-manifests/svc.yaml:18 spec.nodeName: "node-9" is not a node of this cluster (nodes: node-1, node-2)',
    'test/fixtures/bad-manifests/svc.yaml:20 spec.containers[0].command: is required: local mode runs the command on this host, so there is no image entrypoint to use',
    'error: 7 problems in test/fixtures/bad-manifests; nothing was created',
  ]);
  expect(netnsOf(cluster)).toEqual([]);
  expect(existsSync(join('/run/ambit', cluster))).toBe(false);
  expect(existsSync(clusterCgroupDir(detectCgroup2Root()!, cluster))).toBe(false);
});
