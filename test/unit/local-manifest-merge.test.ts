import { describe, expect, test } from 'vitest';
import { mergeReload, toManifests } from '../../src/local/manifest-merge.js';
import { parseManifestTexts } from '../../src/manifests/load-manifests.js';
import { type DeploymentObject, type MeshObject, objectKey } from '../../src/manifests/model.js';

const OPTS = { requireCommand: true } as const;

function load(files: Record<string, string>) {
  return parseManifestTexts(
    Object.entries(files).map(([file, text]) => ({ file, text })),
    OPTS,
  );
}

const ns = (name: string): string => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`;
const sa = (name: string): string => `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: ${name}\n`;
const deploy = (replicas: number | string): string => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${replicas}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: c
          command: [sleep, infinity]
`;
const docs = (...texts: string[]): string => texts.join('---\n');

function keys(objects: readonly MeshObject[]): string[] {
  return objects.map(objectKey).sort();
}

function replicasOf(objects: readonly MeshObject[]): number | undefined {
  return (objects.find((o) => o.kind === 'Deployment') as DeploymentObject | undefined)?.replicas;
}

describe('mergeReload', () => {
  const first = load({ 'apps.yaml': docs(deploy(2), sa('web')), 'ns.yaml': ns('shop') });

  test('the first load takes the valid objects', () => {
    const next = load({ 'apps.yaml': docs(deploy('-1'), sa('web')) });
    expect(keys(mergeReload(undefined, next.manifests, next.issues))).toEqual(['ServiceAccount/default/web']);
  });

  test('a valid change replaces the old version', () => {
    const next = load({ 'apps.yaml': docs(deploy(5), sa('web')), 'ns.yaml': ns('shop') });
    const merged = mergeReload(first.manifests, next.manifests, next.issues);
    expect(keys(merged)).toEqual(['Deployment/default/web', 'Namespace/shop', 'ServiceAccount/default/web']);
    expect(replicasOf(merged)).toBe(5);
  });

  test('an object that now fails validation keeps its last good version', () => {
    const next = load({ 'apps.yaml': docs(deploy('-1'), sa('web')), 'ns.yaml': ns('shop') });
    expect(next.manifests.deployments).toEqual([]);
    const merged = mergeReload(first.manifests, next.manifests, next.issues);
    expect(keys(merged)).toEqual(['Deployment/default/web', 'Namespace/shop', 'ServiceAccount/default/web']);
    expect(replicasOf(merged)).toBe(2);
  });

  test('a removed object goes', () => {
    const next = load({ 'apps.yaml': deploy(2), 'ns.yaml': ns('shop') });
    expect(keys(mergeReload(first.manifests, next.manifests, next.issues))).toEqual([
      'Deployment/default/web',
      'Namespace/shop',
    ]);
  });

  test('a removed file takes its objects with it', () => {
    const next = load({ 'apps.yaml': docs(deploy(2), sa('web')) });
    expect(keys(mergeReload(first.manifests, next.manifests, next.issues))).toEqual([
      'Deployment/default/web',
      'ServiceAccount/default/web',
    ]);
  });

  test('a file with a YAML syntax error keeps its previous objects; other files still update', () => {
    const broken = `${deploy(3)}  bad: [\n`;
    const next = load({ 'apps.yaml': broken, 'ns.yaml': docs(ns('shop'), ns('extra')) });
    expect(next.issues.some((i) => i.file === 'apps.yaml' && i.message.startsWith('invalid YAML'))).toBe(
      true,
    );
    const merged = mergeReload(first.manifests, next.manifests, next.issues);
    expect(keys(merged)).toEqual([
      'Deployment/default/web',
      'Namespace/extra',
      'Namespace/shop',
      'ServiceAccount/default/web',
    ]);
    expect(replicasOf(merged)).toBe(2);
  });

  test('warnings do not keep old versions', () => {
    const next = load({ 'apps.yaml': `${deploy(4)}  extra: 1\n`, 'ns.yaml': ns('shop') });
    expect(next.issues.map((i) => i.severity)).toEqual(['warning']);
    const merged = mergeReload(first.manifests, next.manifests, next.issues);
    expect(keys(merged)).toEqual(['Deployment/default/web', 'Namespace/shop']);
    expect(replicasOf(merged)).toBe(4);
  });

  test('toManifests sorts the merged objects back by kind', () => {
    const merged = mergeReload(undefined, first.manifests, first.issues);
    const m = toManifests(merged);
    expect(m.deployments.map((o) => o.meta.name)).toEqual(['web']);
    expect(m.serviceAccounts.map((o) => o.meta.name)).toEqual(['web']);
    expect(m.namespaces.map((o) => o.meta.name)).toEqual(['shop']);
    expect([...m.pods, ...m.services, ...m.kept]).toEqual([]);
  });
});

describe('mergeReload regressions', () => {
  test('an object removed from a file goes away even when another object in that file fails to parse', () => {
    const before = parseManifestTexts(
      [
        {
          file: 'a.yaml',
          text: 'apiVersion: v1\nkind: Namespace\nmetadata: {name: one}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: two}\n',
        },
      ],
      { requireCommand: true },
    );
    const after = parseManifestTexts(
      [
        {
          file: 'a.yaml',
          text: 'apiVersion: v1\nkind: Namespace\nmetadata: {name: one}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec: {}\n',
        },
      ],
      { requireCommand: true },
    );
    const merged = mergeReload(before.manifests, after.manifests, after.issues);
    expect(merged.map((o) => `${o.kind}/${o.meta.name}`).sort()).toEqual(['Namespace/one']);
  });
});
