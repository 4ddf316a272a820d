import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { enrolledNamespacesFile } from '../../src/api/cni.js';
import type { ClusterPod } from '../../src/cluster/resources.js';
import { insertAmbitPlugin } from '../../src/cni/conflist.js';
import {
  insertConfEntry,
  installPluginBinary,
  removeConfEntries,
  uninstallCni,
  writeEnrolledNamespaces,
} from '../../src/node-agent/cni/cni-install.js';
import { cniEnrollment } from '../../src/node-agent/redirection/cni-calls.js';
import { cniSandboxesFile, SandboxRecord } from '../../src/node-agent/redirection/cni-sandboxes.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/cni');
let dir: string;
let paths: { binDir: string; confDir: string; socket: string };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ambit-cni-install-'));
  paths = { binDir: join(dir, 'bin'), confDir: join(dir, 'net.d'), socket: join(dir, 'run', 'cni.sock') };
  mkdirSync(paths.confDir, { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('the agent installs into a node CNI folder', () => {
  test('the conflist is replaced by rename (a reader sees the old or the new file), nothing else is left', () => {
    copyFileSync(join(FIXTURES, '10-calico.conflist'), join(paths.confDir, '10-calico.conflist'));
    writeFileSync(join(paths.confDir, 'calico-kubeconfig'), 'kubeconfig');
    const before = statSync(join(paths.confDir, '10-calico.conflist')).ino;
    expect(insertConfEntry(paths.confDir, { socket: paths.socket })).toEqual({
      file: '10-calico.conflist',
      changed: true,
    });
    expect(statSync(join(paths.confDir, '10-calico.conflist')).ino).not.toBe(before);
    expect(readdirSync(paths.confDir).sort()).toEqual(['10-calico.conflist', 'calico-kubeconfig']);
    const original = readFileSync(join(FIXTURES, '10-calico.conflist'), 'utf8');
    expect(readFileSync(join(paths.confDir, '10-calico.conflist'), 'utf8')).toBe(
      insertAmbitPlugin('10-calico.conflist', original, { socket: paths.socket }).write?.text,
    );
    expect(insertConfEntry(paths.confDir, { socket: paths.socket })).toEqual({
      file: '10-calico.conflist',
      changed: false,
    });
  });

  test('a malformed conflist is skipped, as the runtime skips it, and left as it was', () => {
    copyFileSync(join(FIXTURES, '99-malformed.conflist'), join(paths.confDir, '00-malformed.conflist'));
    expect(insertConfEntry(paths.confDir, { socket: paths.socket })).toEqual({ changed: false });
    copyFileSync(join(FIXTURES, '10-calico.conflist'), join(paths.confDir, '10-calico.conflist'));
    expect(insertConfEntry(paths.confDir, { socket: paths.socket })).toEqual({
      file: '10-calico.conflist',
      changed: true,
    });
    expect(readFileSync(join(paths.confDir, '00-malformed.conflist'))).toEqual(
      readFileSync(join(FIXTURES, '99-malformed.conflist')),
    );
  });

  test.each([
    ['10-calico.conflist', '10-calico.conflist'],
    ['10-bridge.conf', '10-bridge.conflist'],
  ])('%s: insert and removal keep the file mode, the restore is exact in mode too', (name, inserted) => {
    const path = join(paths.confDir, name);
    copyFileSync(join(FIXTURES, name), path);
    chmodSync(path, 0o600);
    insertConfEntry(paths.confDir, { socket: paths.socket });
    expect(statSync(join(paths.confDir, inserted)).mode & 0o7777).toBe(0o600);
    expect(removeConfEntries(paths.confDir)).toEqual([name]);
    expect(readFileSync(path)).toEqual(readFileSync(join(FIXTURES, name)));
    expect(statSync(path).mode & 0o7777).toBe(0o600);
  });

  test('no config yet: nothing to do', () => {
    expect(insertConfEntry(paths.confDir, { socket: paths.socket })).toEqual({ changed: false });
  });

  test('uninstall takes away the entry (a .conf back under its name), the binary, the socket and the file', () => {
    copyFileSync(join(FIXTURES, '10-bridge.conf'), join(paths.confDir, '10-bridge.conf'));
    const plugin = join(dir, 'ambit-cni-build');
    writeFileSync(plugin, '#!/bin/sh\n');
    expect(installPluginBinary(plugin, paths.binDir)).toBe(join(paths.binDir, 'ambit-cni'));
    expect(statSync(join(paths.binDir, 'ambit-cni')).mode & 0o777).toBe(0o755);
    insertConfEntry(paths.confDir, { socket: paths.socket });
    expect(readdirSync(paths.confDir)).toEqual(['10-bridge.conflist']);
    writeEnrolledNamespaces(paths.socket, ['shop', 'hello'], undefined);
    expect(readFileSync(enrolledNamespacesFile(paths.socket), 'utf8')).toBe(
      'ambit-cni-namespaces v2\nhello\nshop\n',
    );
    new SandboxRecord(cniSandboxesFile(paths.socket)).set(42n, 'c0ffee');
    expect(existsSync(cniSandboxesFile(paths.socket))).toBe(true);
    writeFileSync(paths.socket, '');

    const r = uninstallCni(paths);
    expect(r.restored).toEqual(['10-bridge.conf']);
    expect(readdirSync(paths.confDir)).toEqual(['10-bridge.conf']);
    expect(readFileSync(join(paths.confDir, '10-bridge.conf'))).toEqual(
      readFileSync(join(FIXTURES, '10-bridge.conf')),
    );
    expect(readdirSync(paths.binDir)).toEqual([]);
    expect(readdirSync(join(dir, 'run'))).toEqual([]);
    // Twice is once.
    expect(uninstallCni(paths)).toEqual({ restored: [], removed: [] });
  });
});

const pod = (over: Partial<ClusterPod> = {}): ClusterPod => ({
  kind: 'Pod',
  uid: 'u-1',
  namespace: 'shop',
  name: 'web',
  node: '',
  serviceAccount: 'default',
  labels: {},
  annotations: {},
  ips: [],
  phase: 'Pending',
  ready: false,
  hostNetwork: false,
  terminating: false,
  ...over,
});
const MESH = { 'ambit.dev/dataplane-mode': 'ambient' };
const ctx = { node: 'node-1', podsCgroup: '/cg/pods' };
const cgroups = { resolve: (p: { name: string }) => `/cg/pods/${p.name}` };

describe('cniEnrollment: the API view rules for a pod that is only starting', () => {
  test.each([
    ['a Pending pod of an enrolled namespace, addresses from prevResult', pod(), MESH, 'enrolled'],
    ['a namespace that is not enrolled', pod(), {}, 'not-ambient'],
    ['the pod opted out', pod({ labels: { 'ambit.dev/dataplane-mode': 'none' } }), MESH, 'not-ambient'],
    ['a hostNetwork pod', pod({ hostNetwork: true }), MESH, 'host-network'],
    [
      "one of Ambit's own pods",
      pod({ labels: { 'app.kubernetes.io/part-of': 'ambit' } }),
      MESH,
      'ambit-component',
    ],
  ])('%s: %s', (_what, p, labels, want) => {
    const e = cniEnrollment(p, labels, ctx, ['10.244.1.7', 'fd00::7'], cgroups);
    if (want === 'enrolled')
      expect(e).toMatchObject({ pod: 'shop/web', cgroup: '/cg/pods/web', ips: ['10.244.1.7', 'fd00::7'] });
    else expect(e).toEqual({ pod: 'shop/web', reason: want });
  });
});
