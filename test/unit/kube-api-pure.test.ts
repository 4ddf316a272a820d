import { describe, expect, test } from 'vitest';
import { parseDocument } from 'yaml';
import { KindCache } from '../../src/cluster/source-kube.js';
import { resourceOfKind } from '../../src/kube/api-resources.js';
import { missingRule } from '../../src/kube/reflector.js';
import { applyDiff } from '../../src/local/kube-api/manifest-writer.js';
import {
  applyPatch,
  jsonPatch,
  mergePatch,
  PatchError,
  strategicMergePatch,
} from '../../src/local/kube-api/patch.js';
import { type Json, parseFieldSelector, parseLabelSelector } from '../../src/local/kube-api/selectors.js';
import { parseResourcePath } from '../../src/local/kube-api/server.js';
import { ApiStore } from '../../src/local/kube-api/store.js';
import { humanAge, toTable } from '../../src/local/kube-api/tables.js';
import { snapPod } from './cluster-fixtures.js';

const pods = resourceOfKind('Pod')!;
const obj = (labels: Record<string, string>, extra: Json = {}): Json => ({
  metadata: { name: 'x', labels },
  ...extra,
});

describe('label and field selectors, as the API server reads them', () => {
  test.each<[string, Record<string, string>, boolean]>([
    ['app=web', { app: 'web' }, true],
    ['app==web', { app: 'web' }, true],
    ['app=web', { app: 'db' }, false],
    ['app!=web', { app: 'db' }, true],
    ['app!=web', {}, true],
    ['app', { app: '' }, true],
    ['!canary', { canary: 'y' }, false],
    ['!canary', {}, true],
    ['env in (prod, staging)', { env: 'staging' }, true],
    ['env in (prod,staging)', { env: 'dev' }, false],
    ['env notin (prod)', {}, true],
    ['app=web,env in (prod,dev),!canary', { app: 'web', env: 'dev' }, true],
    ['app=web,env in (prod,dev),!canary', { app: 'web', env: 'dev', canary: '1' }, false],
  ])('%s on %j -> %s', (sel, labels, hit) => {
    expect(parseLabelSelector(sel)(obj(labels))).toBe(hit);
  });

  test('field selectors compare dotted paths as text; a broken one is refused with the term', () => {
    const p = obj({}, { spec: { nodeName: 'node-1' }, status: { phase: 'Running' } });
    expect(parseFieldSelector('spec.nodeName=node-1')(p)).toBe(true);
    expect(parseFieldSelector('spec.nodeName=node-2')(p)).toBe(false);
    expect(parseFieldSelector('spec.nodeName=node-1,status.phase!=Failed')(p)).toBe(true);
    expect(parseFieldSelector('metadata.name=x')(p)).toBe(true);
    expect(() => parseLabelSelector('app=(')).toThrow('unable to parse requirement: "app=("');
    expect(() => parseFieldSelector('nodeName')).toThrow('invalid field selector: "nodeName"');
  });
});

describe('patches as kubectl sends them', () => {
  const deploy = {
    metadata: { name: 'web', labels: { app: 'web', tier: 'front' } },
    spec: {
      replicas: 2,
      template: {
        spec: {
          containers: [
            { name: 'app', image: 'v1', ports: [{ containerPort: 80 }], env: [{ name: 'A', value: '1' }] },
            { name: 'side', image: 's1' },
          ],
        },
      },
    },
  };

  test('JSON merge patch (kubectl label): null deletes, maps merge, lists are replaced', () => {
    expect(mergePatch(deploy, { metadata: { labels: { tier: null, team: 'a' } } })).toMatchObject({
      metadata: { name: 'web', labels: { app: 'web', team: 'a' } },
    });
    expect((mergePatch({ a: [1, 2] }, { a: [3] }) as Json).a).toEqual([3]);
  });

  test('strategic merge patch: containers merge by name, ports by containerPort, env by name; directives', () => {
    const out = strategicMergePatch(deploy, {
      spec: {
        replicas: 3,
        template: {
          spec: {
            '$setElementOrder/containers': [{ name: 'app' }, { name: 'side' }],
            containers: [
              {
                name: 'app',
                image: 'v2',
                env: [{ name: 'B', value: '2' }],
                ports: [{ containerPort: 8080 }],
              },
              { name: 'side', $patch: 'delete' },
            ],
          },
        },
      },
    }) as typeof deploy;
    expect(out.spec.replicas).toBe(3);
    expect(out.spec.template.spec.containers).toEqual([
      {
        name: 'app',
        image: 'v2',
        ports: [{ containerPort: 80 }, { containerPort: 8080 }],
        env: [
          { name: 'A', value: '1' },
          { name: 'B', value: '2' },
        ],
      },
    ]);
    expect(strategicMergePatch({ a: { b: 1, c: 2 } }, { a: { $patch: 'replace', d: 3 } })).toEqual({
      a: { d: 3 },
    });
    expect(strategicMergePatch({ a: { b: 1, c: 2 } }, { a: { $retainKeys: ['b'], b: 5 } })).toEqual({
      a: { b: 5 },
    });
    expect(strategicMergePatch({ f: ['x', 'y'] }, { '$deleteFromPrimitiveList/f': ['x'] })).toEqual({
      f: ['y'],
    });
    // Service ports merge by port, not containerPort.
    expect(
      strategicMergePatch(
        { spec: { ports: [{ port: 80, name: 'a' }] } },
        { spec: { ports: [{ port: 80, name: 'b' }] } },
      ),
    ).toEqual({ spec: { ports: [{ port: 80, name: 'b' }] } });
  });

  test('JSON patch (RFC 6902): add, replace, remove, move, copy, test; failures name the path', () => {
    const out = jsonPatch({ a: { b: [1, 2] }, c: 1 }, [
      { op: 'add', path: '/a/b/-', value: 3 },
      { op: 'add', path: '/a/b/0', value: 0 },
      { op: 'replace', path: '/c', value: 2 },
      { op: 'copy', from: '/c', path: '/d' },
      { op: 'move', from: '/d', path: '/e~1f' },
      { op: 'remove', path: '/a/b/1' },
      { op: 'test', path: '/c', value: 2 },
    ]);
    expect(out).toEqual({ a: { b: [0, 2, 3] }, c: 2, 'e/f': 2 });
    expect(() => jsonPatch({}, [{ op: 'replace', path: '/x', value: 1 }])).toThrow(
      'replace /x: nothing there to replace',
    );
    expect(() => jsonPatch({ c: 1 }, [{ op: 'test', path: '/c', value: 2 }])).toThrow(PatchError);
    expect(() => applyPatch({}, {}, 'application/apply-patch+yaml')).toThrow('not supported');
  });
});

describe('ApiStore: resourceVersions, history and watches', () => {
  const pod = (name: string, node: string, ready = true): Json => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', uid: `uid-${name}` },
    spec: { nodeName: node },
    status: { phase: 'Running', ready },
  });

  test('only what changed gets a new resourceVersion; a watch resumes after any of them, in order', () => {
    const store = new ApiStore();
    store.replaceAll([pod('a', 'node-1'), pod('b', 'node-2')]);
    const rvA = Number((store.get(pods, 'shop', 'a')!.metadata as Json).resourceVersion);
    store.replaceAll([pod('a', 'node-1'), pod('b', 'node-2')]);
    expect(store.resourceVersion).toBe(rvA + 1); // Nothing changed: no new version.
    store.replaceAll([pod('a', 'node-1', false), pod('c', 'node-1')]);
    const seen: string[] = [];
    const stop = store.watch({ resource: pods, selector: () => true, from: rvA }, (t, o) =>
      seen.push(`${t} ${String((o.metadata as Json).name)}`),
    );
    expect(seen).toEqual(['ADDED b', 'MODIFIED a', 'ADDED c', 'DELETED b']);
    expect(typeof stop).toBe('function');
  });

  test('with a field selector an object that leaves it is DELETED for the watch, one that enters is ADDED', () => {
    const store = new ApiStore();
    store.replaceAll([pod('a', 'node-1')]);
    const from = store.resourceVersion;
    const seen: string[] = [];
    store.watch({ resource: pods, selector: parseFieldSelector('spec.nodeName=node-1'), from }, (t, o) =>
      seen.push(`${t} ${String((o.metadata as Json).name)}`),
    );
    store.replaceAll([pod('a', 'node-2'), pod('b', 'node-2')]);
    store.replaceAll([pod('a', 'node-1'), pod('b', 'node-2')]);
    expect(seen).toEqual(['DELETED a', 'ADDED a']);
  });

  test('a watch from before the history kept is expired (410)', () => {
    const store = new ApiStore(4);
    for (let i = 0; i < 10; i++) store.replaceAll([pod('a', `node-${i}`)]);
    expect(store.watch({ resource: pods, selector: () => true, from: 1 }, () => undefined)).toBe('expired');
    expect(
      store.watch({ resource: pods, selector: () => true, from: store.resourceVersion }, () => undefined),
    ).not.toBe('expired');
  });
});

describe('what kubectl sees', () => {
  test.each<[number, string]>([
    [45, '45s'],
    [119, '119s'],
    [200, '3m20s'],
    [25 * 60, '25m'],
    [5 * 3600 + 600, '5h10m'],
    [30 * 3600, '30h'],
    [3 * 86400 + 4 * 3600, '3d4h'],
    [12 * 86400, '12d'],
    [800 * 86400, '2y'],
  ])('an age of %d s prints as %s', (s, shown) => {
    expect(humanAge(new Date(1_000_000_000).toISOString(), 1_000_000_000 + s * 1000)).toBe(shown);
  });

  test('a pod row: READY, a waiting reason as STATUS, restarts, and the wide columns', () => {
    const t = toTable(
      pods,
      [
        {
          metadata: { name: 'web', namespace: 'shop', creationTimestamp: new Date(0).toISOString() },
          spec: { nodeName: 'node-1', containers: [{ name: 'a' }, { name: 'b' }] },
          status: {
            phase: 'Running',
            podIP: '10.244.1.2',
            containerStatuses: [
              { name: 'a', ready: true, restartCount: 0, state: { running: {} } },
              {
                name: 'b',
                ready: false,
                restartCount: 3,
                state: { waiting: { reason: 'CrashLoopBackOff' } },
              },
            ],
          },
        },
      ],
      '7',
      60_000,
    ) as { rows: { cells: unknown[] }[]; columnDefinitions: { name: string; priority: number }[] };
    expect(t.columnDefinitions.map((c) => `${c.name}${c.priority === 1 ? '*' : ''}`)).toEqual([
      'Name',
      'Ready',
      'Status',
      'Restarts',
      'Age',
      'IP*',
      'Node*',
      'Nominated Node*',
      'Readiness Gates*',
    ]);
    expect(t.rows[0]!.cells).toEqual([
      'web',
      '1/2',
      'CrashLoopBackOff',
      3,
      '60s',
      '10.244.1.2',
      'node-1',
      '<none>',
      '<none>',
    ]);
  });

  test.each<[string, unknown]>([
    ['/api/v1/pods', { resource: pods }],
    ['/api/v1/namespaces/shop/pods', { resource: pods, namespace: 'shop' }],
    ['/api/v1/namespaces/shop/pods/web', { resource: pods, namespace: 'shop', name: 'web' }],
    ['/api/v1/namespaces/shop', { resource: resourceOfKind('Namespace'), name: 'shop' }],
    [
      '/apis/apps/v1/namespaces/shop/deployments/web/scale',
      { resource: resourceOfKind('Deployment'), namespace: 'shop', name: 'web', subresource: 'scale' },
    ],
    ['/apis/authentication.k8s.io/v1/tokenreviews', 'tokenreviews'],
    ['/apis/apps/v1/statefulsets', undefined],
    ['/healthz', undefined],
  ])('%s', (path, want) => {
    expect(parseResourcePath(path)).toEqual(want);
  });

  test('a 403 names the RBAC rule that is missing', () => {
    expect(missingRule(pods, 'watch', undefined)).toBe(
      '{apiGroups: [""], resources: ["pods"], verbs: ["watch"]} cluster-wide (a ClusterRole)',
    );
    expect(missingRule(resourceOfKind('HTTPRoute')!, 'list', 'shop')).toBe(
      '{apiGroups: ["gateway.networking.k8s.io"], resources: ["httproutes"], verbs: ["list"]} in namespace shop',
    );
  });
});

describe('writing back into a manifest keeps what did not change', () => {
  test('a changed field is changed in place; comments, flow style and other fields stay', () => {
    const text = [
      '# the web tier',
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: web # stable name',
      'spec:',
      '  replicas: 2',
      '  template:',
      '    spec:',
      '      containers:',
      '        - name: app',
      '          command: ["/bin/sh", "-c"]',
      '',
    ].join('\n');
    const doc = parseDocument(text);
    const before = doc.toJSON() as Json;
    const after = structuredClone(before) as { spec: { replicas: number }; metadata: Json };
    after.spec.replicas = 5;
    after.metadata.labels = { app: 'web' };
    applyDiff(doc, before, after);
    const out = doc.toString({ lineWidth: 0, flowCollectionPadding: false });
    expect(out).toContain('# the web tier');
    expect(out).toContain('name: web # stable name');
    expect(out).toContain('replicas: 5');
    expect(out).toContain('command: ["/bin/sh", "-c"]');
    expect(parseDocument(out).toJSON()).toEqual(after);
  });
});

describe('KindCache: what a kind holds, and the events that change it', () => {
  test('a re-list deletes what is gone; a UID change under one name is a delete and an add', () => {
    const c = new KindCache();
    const a = snapPod('a', { uid: 'u1' });
    const b = snapPod('b', { uid: 'u2' });
    expect(c.replace([a, b]).map((e) => e.type)).toEqual(['added', 'added']);
    expect(c.upsert(a)).toEqual([]);
    const a2 = { ...a, uid: 'u9' };
    expect(c.upsert(a2).map((e) => `${e.type} ${'uid' in e.resource ? e.resource.uid : ''}`)).toEqual([
      'deleted u1',
      'added u9',
    ]);
    expect(c.replace([a2]).map((e) => `${e.type} ${'name' in e.resource ? e.resource.name : ''}`)).toEqual([
      'deleted b',
    ]);
  });
});
