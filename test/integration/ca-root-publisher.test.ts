import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import YAML from 'yaml';
import { systemClock } from '../../src/clock.js';
import { CONTROL_PLANE_CALLS } from '../../src/cluster/daemon-calls.js';
import { CaRootPublisher } from '../../src/control-plane/ca-root-publisher.js';
import { CertificateAuthority } from '../../src/identity/ca.js';
import { writtenResources } from '../../src/kube/api-calls.js';
import { KubeClient } from '../../src/kube/client.js';
import { apiObjects } from '../../src/local/api-objects.js';
import { controllerObjectProblems, withControllerObjects } from '../../src/local/controller-manifests.js';
import { LocalKubeApi } from '../../src/local/kube-api/local-api.js';
import { ManifestWriter } from '../../src/local/kube-api/manifest-writer.js';
import { loadManifests } from '../../src/manifests/load-manifests.js';
import { createRootLogger } from '../../src/telemetry/logger.js';

/*
 * The CA root publisher against local mode's API over HTTPS, with the control plane's principal and
 * a real CA, driven by the real kubectl: the ConfigMap ambit-ca-root-cert lands in every namespace
 * (one created later too), follows a rotation and a drop of the old root, and comes back after
 * `kubectl delete cm` and `kubectl edit`. A small stand-in for the local cluster publishes the
 * manifests folder and the kept objects, as LocalCluster does.
 */

type Json = Record<string, unknown>;
const OPTS = { requireCommand: true } as const;
const log = createRootLogger({ name: 'ca-root-test', level: 'fatal' });

let dir = '';
let manifests = '';
let kubeDir = '';
let api: LocalKubeApi;
let ca: CertificateAuthority;
let caRoots: CaRootPublisher;
const stop = new AbortController();

function publisher(a: LocalKubeApi): () => Promise<void> {
  return async () => {
    const loaded = loadManifests(manifests, OPTS, manifests);
    const w = withControllerObjects(loaded.manifests, a.controllerObjects.all(), OPTS);
    const m = w.manifests;
    a.publish(
      apiObjects({
        namespaces: [
          { name: 'default', labels: {} },
          { name: 'kube-system', labels: {} },
          ...m.namespaces.map((n) => ({ name: n.meta.name, labels: n.meta.labels })),
        ],
        nodes: [],
        pods: [],
        services: [],
        config: m.kept,
        deployments: m.deployments,
        serviceAccounts: m.serviceAccounts,
      }),
      w.inEffect,
    );
  };
}

function kubectl(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'kubectl',
      ['--kubeconfig', api.adminKubeconfig, ...args],
      { timeout: 30_000, env },
      (err, stdout, stderr) =>
        resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? 1), stdout, stderr }),
    );
  });
}

async function ok(...args: string[]): Promise<string> {
  const r = await kubectl(args);
  expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** Polls (the publisher acts on watch events): no fixed sleeps. */
async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const v = await fn().catch((err: unknown) => {
      last = err;
      return undefined;
    });
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what} (${String(last)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The bundle the ConfigMap in `ns` holds, undefined when there is none. */
async function published(ns: string): Promise<string | undefined> {
  const r = await kubectl([
    'get',
    'configmap',
    'ambit-ca-root-cert',
    '-n',
    ns,
    '-o',
    'jsonpath={.data.root-cert\\.pem}',
  ]);
  return r.code === 0 ? r.stdout : undefined;
}

const bundle = (): string => ca.trustBundle().join('');

/** Every namespace's ConfigMap holds the CA's bundle now. */
async function everywhere(what: string, namespaces: readonly string[]): Promise<void> {
  for (const ns of namespaces)
    await eventually(`${what} in ${ns}`, async () => ((await published(ns)) === bundle() ? true : undefined));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ambit-ca-root-'));
  manifests = join(dir, 'manifests');
  kubeDir = join(dir, 'kube');
  mkdirSync(manifests);
  writeFileSync(
    join(manifests, 'ns.yaml'),
    'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ambit-system\n',
  );
  api = new LocalKubeApi({ dir: kubeDir, cluster: 'ca-root-test', fabricAddress: '10.255.255.1', log });
  await api.start();
  const reload = publisher(api);
  api.setWriter(
    new ManifestWriter({
      manifests,
      displayBase: manifests,
      parseOptions: () => OPTS,
      store: api.store,
      reload,
    }),
    { validate: (o) => controllerObjectProblems(o, OPTS), reload },
  );
  await reload();
  ({ ca } = await CertificateAuthority.loadOrCreate(join(dir, 'ca'), 'ambit', systemClock));
  // The control plane, as local mode starts it: its own token, allowed the writes its RBAC allows.
  const admin = YAML.parse(readFileSync(api.adminKubeconfig, 'utf8')) as {
    clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  };
  const token = api.principal('control-plane', [], false, true, writtenResources(CONTROL_PLANE_CALLS));
  const client = new KubeClient(
    {
      server: admin.clusters[0]!.cluster.server,
      origin: 'test',
      caData: Buffer.from(admin.clusters[0]!.cluster['certificate-authority-data'], 'base64'),
      token,
      insecureSkipTlsVerify: false,
    },
    CONTROL_PLANE_CALLS,
  );
  caRoots = new CaRootPublisher(client, log, 20);
  caRoots.offer(ca.trustBundle());
  caRoots.run(stop.signal);
});

afterAll(() => {
  stop.abort();
  api?.close();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('the CA root ConfigMap, published by the control plane', () => {
  test("is in every namespace, holds the root, is the control plane's and stays out of the manifests", async () => {
    await everywhere('the root', ['default', 'kube-system', 'shop', 'ambit-system']);
    expect(bundle()).toBe(ca.trustBundle()[0]);
    const o = JSON.parse(
      await ok('get', 'configmap', 'ambit-ca-root-cert', '-n', 'shop', '-o', 'json', '--show-managed-fields'),
    ) as Json;
    const meta = o.metadata as Json;
    expect(meta.labels).toEqual({ 'app.kubernetes.io/managed-by': 'ambit-control-plane' });
    expect(
      (meta.managedFields as { manager: string; operation: string }[]).map(
        (m) => `${m.manager}/${m.operation}`,
      ),
    ).toEqual(['ambit-control-plane/Apply']);
    // Found by its label across namespaces.
    expect(
      await ok('get', 'cm', '-A', '-l', 'app.kubernetes.io/managed-by=ambit-control-plane', '-o', 'name'),
    ).toBe('configmap/ambit-ca-root-cert\n'.repeat(4));
    for (const f of readdirSync(manifests))
      expect(readFileSync(join(manifests, f), 'utf8'), f).not.toMatch(/ambit-ca-root-cert|BEGIN CERTIFICATE/);
    const kept = JSON.parse(readFileSync(join(kubeDir, 'controller-objects.json'), 'utf8')) as Json[];
    expect(kept.map((k) => `${k.kind}/${(k.metadata as Json).namespace}`).sort()).toEqual([
      'ConfigMap/ambit-system',
      'ConfigMap/default',
      'ConfigMap/kube-system',
      'ConfigMap/shop',
    ]);
  });

  test('a namespace created later gets it', async () => {
    const file = join(dir, 'late.yaml');
    writeFileSync(file, 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: late\n');
    await ok('apply', '-f', file);
    await everywhere('the root', ['late']);
  });

  test("kubectl delete namespace: its ConfigMap goes with it, in local mode's run folder too", async () => {
    const file = join(dir, 'brief.yaml');
    writeFileSync(file, 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: brief\n');
    await ok('apply', '-f', file);
    await everywhere('the root', ['brief']);
    await ok('delete', 'namespace', 'brief');
    await eventually('the ConfigMap of brief to go', async () => {
      const kept = JSON.parse(readFileSync(join(kubeDir, 'controller-objects.json'), 'utf8')) as Json[];
      return kept.some((k) => (k.metadata as Json).namespace === 'brief') ? undefined : true;
    });
    expect(await published('brief')).toBeUndefined();
  });

  test('a rotation publishes both roots, the new one first; dropping the old one publishes the new alone', async () => {
    const old = ca.trustBundle()[0]!;
    await ca.rotate('ambit');
    caRoots.offer(ca.trustBundle());
    expect(ca.trustBundle()).toHaveLength(2);
    await everywhere('both roots', ['default', 'kube-system', 'shop', 'ambit-system', 'late']);
    expect((await published('shop'))?.endsWith(old)).toBe(true);
    ca.dropOldRoots();
    caRoots.offer(ca.trustBundle());
    await everywhere('the new root alone', ['default', 'kube-system', 'shop', 'ambit-system', 'late']);
    expect(await published('shop')).not.toContain(old);
  });

  test('kubectl delete cm: it comes back', async () => {
    const uid = async () =>
      (
        (JSON.parse(await ok('get', 'cm', 'ambit-ca-root-cert', '-n', 'shop', '-o', 'json')) as Json)
          .metadata as Json
      ).uid;
    const before = await uid();
    await ok('delete', 'configmap', 'ambit-ca-root-cert', '-n', 'shop');
    const after = await eventually('a new ConfigMap', async () => {
      const u = await uid();
      return u !== before ? u : undefined;
    });
    expect(after).toBeDefined();
    await everywhere('the root', ['shop']);
  });

  test('kubectl edit of the bundle: taken back; a key the editor added stays', async () => {
    // An "editor" that spoils the certificate and adds a key of its own.
    const editor = join(dir, 'editor.sh');
    writeFileSync(
      editor,
      '#!/bin/sh\nsed -i -e "s/-----END CERTIFICATE-----/-----END SPOILED-----/" -e "s/^data:$/data:\\n  extra: mine/" "$1"\n',
    );
    chmodSync(editor, 0o755);
    const r = await kubectl(['edit', 'configmap', 'ambit-ca-root-cert', '-n', 'shop'], {
      ...process.env,
      KUBE_EDITOR: editor,
    });
    expect(r.code, r.stderr).toBe(0);
    await everywhere('the root again', ['shop']);
    expect(await ok('get', 'cm', 'ambit-ca-root-cert', '-n', 'shop', '-o', 'jsonpath={.data.extra}')).toBe(
      'mine',
    );
  });

  test('kubectl label --overwrite of its label: taken back', async () => {
    await ok(
      'label',
      '--overwrite',
      'cm',
      'ambit-ca-root-cert',
      '-n',
      'shop',
      'app.kubernetes.io/managed-by=me',
    );
    await eventually('the label again', async () =>
      (await ok(
        'get',
        'cm',
        'ambit-ca-root-cert',
        '-n',
        'shop',
        '-o',
        'jsonpath={.metadata.labels.app\\.kubernetes\\.io/managed-by}',
      )) === 'ambit-control-plane'
        ? true
        : undefined,
    );
  });
});
