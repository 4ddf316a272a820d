import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import YAML from 'yaml';
import { CONTROL_PLANE_CALLS } from '../../src/cluster/daemon-calls.js';
import { WaypointApplier } from '../../src/control-plane/waypoint-applier.js';
import { writtenResources } from '../../src/kube/api-calls.js';
import { KubeClient } from '../../src/kube/client.js';
import { apiObjects } from '../../src/local/api-objects.js';
import { controllerObjectProblems, withControllerObjects } from '../../src/local/controller-manifests.js';
import { LocalKubeApi } from '../../src/local/kube-api/local-api.js';
import { ManifestWriter } from '../../src/local/kube-api/manifest-writer.js';
import { buildService } from '../../src/local/services.js';
import { loadManifests } from '../../src/manifests/load-manifests.js';
import { createRootLogger } from '../../src/telemetry/logger.js';

/*
 * Server-side apply, ownerReferences garbage collection and controller-made objects in local mode's
 * API, driven by the real kubectl (v1.32 on this machine) and by the control plane's waypoint
 * applier over HTTPS: the API side of "waypoints in a cluster", without pods (the privileged e2e
 * test runs them). A small stand-in for the local cluster publishes the manifests folder and the
 * kept objects, as LocalCluster does.
 */

type Json = Record<string, unknown>;
const OPTS = { requireCommand: true } as const;
const log = createRootLogger({ name: 'apply-test', level: 'fatal' });

let dir = '';
let manifests = '';
let kubeDir = '';
let api: LocalKubeApi;
let kubeconfig = '';
const applierStop = new AbortController();

/** What LocalCluster does on a reload: the manifests and the kept objects, published (no pods). */
function publisher(a: LocalKubeApi): () => Promise<void> {
  return async () => {
    const loaded = loadManifests(manifests, OPTS, manifests);
    const w = withControllerObjects(loaded.manifests, a.controllerObjects.all(), OPTS);
    const m = w.manifests;
    a.publish(
      apiObjects({
        namespaces: [
          { name: 'default', labels: {} },
          ...m.namespaces.map((n) => ({ name: n.meta.name, labels: n.meta.labels })),
        ],
        nodes: [],
        pods: [],
        services: m.services.map((s, i) => buildService(s, [`10.96.0.${i + 10}`], [])),
        config: m.kept,
        deployments: m.deployments,
        serviceAccounts: m.serviceAccounts,
      }),
      w.inEffect,
    );
  };
}

async function startApi(): Promise<LocalKubeApi> {
  const a = new LocalKubeApi({ dir: kubeDir, cluster: 'apply-test', fabricAddress: '10.255.255.1', log });
  await a.start();
  const reload = publisher(a);
  a.setWriter(
    new ManifestWriter({
      manifests,
      displayBase: manifests,
      parseOptions: () => OPTS,
      store: a.store,
      reload,
    }),
    { validate: (o) => controllerObjectProblems(o, OPTS), reload },
  );
  await reload();
  return a;
}

function kubectl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('kubectl', ['--kubeconfig', kubeconfig, ...args], { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? 1), stdout, stderr }),
    );
  });
}

async function ok(...args: string[]): Promise<string> {
  const r = await kubectl(...args);
  expect(r.stderr, `kubectl ${args.join(' ')}`).toBe('');
  expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

async function getJson(...args: string[]): Promise<Json> {
  return JSON.parse(await ok('get', ...args, '-o', 'json', '--show-managed-fields')) as Json;
}

/** Polls (the applier and the collector act on watch events): no fixed sleeps. */
async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const exists = async (what: string): Promise<Json | undefined> => {
  const r = await kubectl('get', what, '-n', 'shop', '-o', 'json', '--show-managed-fields');
  return r.code === 0 ? (JSON.parse(r.stdout) as Json) : undefined;
};
const gone = async (what: string): Promise<true | undefined> => {
  const r = await kubectl('get', what, '-n', 'shop');
  return r.code !== 0 && /NotFound|not found/.test(r.stderr) ? true : undefined;
};

const metaOf = (o: Json): Json => (o.metadata ?? {}) as Json;
const managers = (o: Json): string[] =>
  ((metaOf(o).managedFields ?? []) as { manager: string; operation: string }[])
    .map((m) => `${m.manager}/${m.operation}`)
    .sort();
const container = (d: Json): Json =>
  ((((d.spec as Json).template as Json).spec as Json).containers as Json[])[0]!;

const GATEWAY = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: shop
spec:
  gatewayClassName: ambit-waypoint
  listeners:
    - name: mesh
      port: 15008
      protocol: HBONE
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ambit-apply-'));
  manifests = join(dir, 'manifests');
  kubeDir = join(dir, 'kube');
  mkdirSync(manifests);
  writeFileSync(join(manifests, 'shop.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n');
  writeFileSync(join(manifests, 'gateway.yaml'), GATEWAY);
  api = await startApi();
  kubeconfig = api.adminKubeconfig;
  // The control plane, as local mode starts it: its own token, allowed the writes its RBAC allows.
  const admin = YAML.parse(readFileSync(kubeconfig, 'utf8')) as {
    clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  };
  const token = api.principal('control-plane', [], false, true, writtenResources(CONTROL_PLANE_CALLS));
  const client = new KubeClient({
    server: admin.clusters[0]!.cluster.server,
    origin: 'test',
    caData: Buffer.from(admin.clusters[0]!.cluster['certificate-authority-data'], 'base64'),
    token,
    insecureSkipTlsVerify: false,
  });
  new WaypointApplier(
    client,
    {
      image: 'ghcr.io/ambit-mesh/ambit:0.1.0',
      version: '0.1.0',
      trustDomain: 'cluster.local',
      controlPlane: '10.255.255.1:15012',
      container: {
        command: [process.execPath, '/opt/ambit/dist/l7-waypoint/main.js'],
        env: { AMBIT_LOG_LEVEL: 'info' },
      },
    },
    log,
    20,
  ).run(applierStop.signal);
});

afterAll(() => {
  applierStop.abort();
  api?.close();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('kubectl apply --server-side against local mode', () => {
  const CONFIG = `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  labels: {team: a}
spec:
  selector: {app: web}
  ports:
    - name: http
      port: 80
      targetPort: 8080
`;

  test('creates the object (in the manifests folder: the user wrote it) and records kubectl as its manager', async () => {
    const file = join(dir, 'web.yaml');
    writeFileSync(file, CONFIG);
    expect(await ok('apply', '--server-side', '-f', file)).toMatch(/service\/web serverside-applied/);
    const svc = await getJson('svc', 'web', '-n', 'shop');
    expect(managers(svc)).toEqual(['kubectl/Apply']);
    expect(
      readdirSync(manifests).some((f) => readFileSync(join(manifests, f), 'utf8').includes('name: web')),
    ).toBe(true);
    // Applying the same configuration again changes nothing.
    expect(await ok('apply', '--server-side', '-f', file)).toMatch(/serverside-applied/);
  });

  test('a field another manager set conflicts (409, naming it and its manager) unless --force-conflicts', async () => {
    const file = join(dir, 'web-b.yaml');
    writeFileSync(file, CONFIG.replace('team: a', 'team: b'));
    const r = await kubectl('apply', '--server-side', '--field-manager', 'someone-else', '-f', file);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/conflict with "kubectl".*\.metadata\.labels\.team/s);
    await ok('apply', '--server-side', '--field-manager', 'someone-else', '--force-conflicts', '-f', file);
    const svc = await getJson('svc', 'web', '-n', 'shop');
    expect((metaOf(svc).labels as Json).team).toBe('b');
    expect(managers(svc)).toEqual(['kubectl/Apply', 'someone-else/Apply']);
  });

  test('a field the applier leaves out is removed; --dry-run=server changes nothing', async () => {
    const file = join(dir, 'web-c.yaml');
    writeFileSync(file, CONFIG.replace('  labels: {team: a}\n', '  labels: {team: b, tier: front}\n'));
    await ok('apply', '--server-side', '--field-manager', 'someone-else', '-f', file);
    writeFileSync(file, CONFIG.replace('  labels: {team: a}\n', '  labels: {team: b}\n'));
    await ok(
      'apply',
      '--server-side',
      '--field-manager',
      'someone-else',
      '--dry-run=server',
      '-f',
      join(dir, 'web.yaml'),
    );
    expect((metaOf(await getJson('svc', 'web', '-n', 'shop')).labels as Json).tier).toBe('front');
    await ok('apply', '--server-side', '--field-manager', 'someone-else', '-f', file);
    expect(metaOf(await getJson('svc', 'web', '-n', 'shop')).labels).toEqual({ team: 'b' });
  });

  test('apply without a field manager is refused, as by kube-apiserver', async () => {
    const admin = YAML.parse(readFileSync(kubeconfig, 'utf8')) as {
      clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
      users: { user: { token: string } }[];
    };
    const client = new KubeClient({
      server: admin.clusters[0]!.cluster.server,
      origin: 'test',
      caData: Buffer.from(admin.clusters[0]!.cluster['certificate-authority-data'], 'base64'),
      token: admin.users[0]!.user.token,
      insecureSkipTlsVerify: false,
    });
    const err = await client
      .json(
        'PATCH',
        '/api/v1/namespaces/shop/services/web',
        YAML.parse(CONFIG),
        undefined,
        'application/apply-patch+yaml',
      )
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, reason: 'BadRequest' });
    expect((err as Error).message).toMatch(/fieldManager is required for apply requests/);
    client.close();
  });
});

describe('waypoint objects: applied by the control plane, owned by the Gateway, kept out of the manifests', () => {
  test('the control plane applies the ServiceAccount, Deployment and Service, owned by the Gateway', async () => {
    const gw = await getJson('gateway', 'waypoint', '-n', 'shop');
    for (const kind of ['serviceaccount', 'deployment', 'service']) {
      const o = await eventually(`${kind} waypoint`, () => exists(`${kind}/waypoint`));
      expect(metaOf(o).ownerReferences, kind).toEqual([
        {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'Gateway',
          name: 'waypoint',
          uid: metaOf(gw).uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
      expect(managers(o), kind).toEqual(['ambit-control-plane/Apply']);
    }
    const list = await ok(
      'get',
      'deploy,svc,sa',
      '-n',
      'shop',
      '-l',
      'gateway.networking.k8s.io/gateway-name=waypoint',
    );
    expect(list).toMatch(/deployment\.apps\/waypoint/);
    expect(list).toMatch(/service\/waypoint/);
    expect(list).toMatch(/serviceaccount\/waypoint/);
    // Not written into the user's folder; kept in the run folder.
    for (const f of readdirSync(manifests))
      expect(readFileSync(join(manifests, f), 'utf8'), f).not.toMatch(/ambit-control-plane|ownerReferences/);
    const kept = JSON.parse(readFileSync(join(kubeDir, 'controller-objects.json'), 'utf8')) as Json[];
    expect(kept.map((o) => `${o.kind}/${metaOf(o).name}`).sort()).toEqual([
      'Deployment/waypoint',
      'Service/waypoint',
      'ServiceAccount/waypoint',
    ]);
    // The Service got a cluster IP from the cluster.
    expect(((await getJson('svc', 'waypoint', '-n', 'shop')).spec as Json).clusterIP).toMatch(/^10\.96\.0\./);
  });

  test('a hand edit of a field the control plane owns is reverted; one it does not own stays', async () => {
    await ok('scale', 'deployment/waypoint', '-n', 'shop', '--replicas', '3');
    await ok('set', 'env', 'deployment/waypoint', '-n', 'shop', 'EXTRA=kept');
    const d = await eventually('replicas back to 1', async () => {
      const o = await exists('deployment/waypoint');
      return o !== undefined && (o.spec as Json).replicas === 1 ? o : undefined;
    });
    const env = container(d).env as { name: string; value?: string }[];
    expect(env.find((e) => e.name === 'EXTRA')?.value).toBe('kept');
    expect(managers(d)).toContain('ambit-control-plane/Apply');
    expect(managers(d).some((m) => m.startsWith('kubectl'))).toBe(true);
    // Still not in the manifests.
    for (const f of readdirSync(manifests))
      expect(readFileSync(join(manifests, f), 'utf8')).not.toMatch(/EXTRA/);
  });

  test('a deleted waypoint object comes back', async () => {
    const before = await getJson('sa', 'waypoint', '-n', 'shop');
    await ok('delete', 'serviceaccount', 'waypoint', '-n', 'shop');
    const after = await eventually('the ServiceAccount again', () => exists('serviceaccount/waypoint'));
    expect(metaOf(after).uid).not.toBe(metaOf(before).uid);
  });

  test('kubectl delete gateway removes its objects (background propagation, the garbage collector)', async () => {
    await ok('delete', 'gateway', 'waypoint', '-n', 'shop');
    for (const kind of ['deployment', 'service', 'serviceaccount'])
      await eventually(`${kind} waypoint to go`, () => gone(`${kind}/waypoint`));
    const kept = JSON.parse(readFileSync(join(kubeDir, 'controller-objects.json'), 'utf8')) as Json[];
    expect(kept).toEqual([]);
    expect(existsSync(join(manifests, 'gateway.yaml'))).toBe(false);
  });

  test('--cascade=orphan leaves the objects, without the reference to the Gateway', async () => {
    writeFileSync(join(manifests, 'gateway.yaml'), GATEWAY);
    // The stand-in cluster reloads on API writes only: a file written by hand is published by hand.
    await publisher(api)();
    await eventually('the Deployment', () => exists('deployment/waypoint'));
    await eventually('the Service', () => exists('service/waypoint'));
    await ok('delete', 'gateway', 'waypoint', '-n', 'shop', '--cascade=orphan');
    const d = await getJson('deployment', 'waypoint', '-n', 'shop');
    expect(metaOf(d).ownerReferences).toBeUndefined();
    // The control plane deletes only what a Gateway controls: orphans are the user's now.
    await ok('delete', 'deployment,service,serviceaccount', 'waypoint', '-n', 'shop');
  });

  test('--cascade=foreground deletes the dependents with the Gateway', async () => {
    writeFileSync(join(manifests, 'gateway.yaml'), GATEWAY);
    await publisher(api)();
    await eventually('the Deployment', () => exists('deployment/waypoint'));
    await ok('delete', 'gateway', 'waypoint', '-n', 'shop', '--cascade=foreground');
    // Gone by the time the delete answered: dependents first, then the owner.
    expect(await gone('deployment/waypoint')).toBe(true);
    expect(await gone('gateway/waypoint')).toBe(true);
  });

  test('across a restart: kept objects are read again, and those whose owner is gone are collected', async () => {
    writeFileSync(join(manifests, 'gateway.yaml'), GATEWAY);
    await publisher(api)();
    await eventually('the Deployment', () => exists('deployment/waypoint'));
    applierStop.abort();
    // An object a controller made, owned by an object of a kind this API does not serve (so it
    // cannot be looked up, and the collector leaves it).
    const owned = join(dir, 'owned.yaml');
    writeFileSync(
      owned,
      YAML.stringify({
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: {
          name: 'by-controller',
          namespace: 'shop',
          ownerReferences: [
            { apiVersion: 'v1', kind: 'Secret', name: 'settings', uid: 'secret-uid', controller: true },
          ],
        },
      }),
    );
    await ok('apply', '--server-side', '--field-manager', 'some-controller', '-f', owned);
    api.close();
    // The Gateway is deleted while local mode is down.
    rmSync(join(manifests, 'gateway.yaml'));
    api = await startApi();
    kubeconfig = api.adminKubeconfig;
    expect(await gone('deployment/waypoint')).toBe(true);
    expect(await gone('serviceaccount/waypoint')).toBe(true);
    // Read again from the run folder, and served.
    expect(metaOf(await getJson('sa', 'by-controller', '-n', 'shop')).ownerReferences).toMatchObject([
      { kind: 'Secret', uid: 'secret-uid' },
    ]);
    const kept = JSON.parse(readFileSync(join(kubeDir, 'controller-objects.json'), 'utf8')) as Json[];
    expect(kept.map((o) => metaOf(o).name)).toEqual(['by-controller']);
  });
});
