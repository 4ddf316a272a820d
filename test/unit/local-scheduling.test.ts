import { describe, expect, test } from 'vitest';
import { desiredPods } from '../../src/local/desired-pods.js';
import { nodeLayout } from '../../src/local/layout.js';
import { allocate, type PlacedPod, pickNode } from '../../src/local/scheduler.js';
import { parseManifestTexts } from '../../src/manifests/load-manifests.js';
import type { Manifests } from '../../src/manifests/model.js';

function manifests(text: string): Manifests {
  const { manifests, issues } = parseManifestTexts([{ file: 'm.yaml', text }], { requireCommand: true });
  expect(issues).toEqual([]);
  return manifests;
}

function deployment(
  opts: { replicas?: number; mode?: string; name?: string; leadingLines?: number } = {},
): string {
  return [
    ...Array.from({ length: opts.leadingLines ?? 0 }, () => '# padding'),
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata:',
    `  name: ${opts.name ?? 'web'}`,
    'spec:',
    ...(opts.replicas === undefined ? [] : [`  replicas: ${opts.replicas}`]),
    '  selector:',
    '    matchLabels: {app: web}',
    '  template:',
    '    metadata:',
    '      labels: {app: web, tier: front}',
    '      annotations: {ambit.dev/note: x}',
    '    spec:',
    '      containers:',
    '        - name: c',
    '          command: [sleep, infinity]',
    '          env:',
    `            - {name: MODE, value: ${opts.mode ?? 'prod'}}`,
    '',
  ].join('\n');
}

const SAFE = '[bcdfghjklmnpqrstvwxz2456789]';

describe('desiredPods', () => {
  test('Deployment replicas are named <deployment>-<10 chars>-<5 chars> from the safe alphabet', () => {
    const pods = desiredPods(manifests(deployment({ replicas: 3 })));
    expect(pods).toHaveLength(3);
    for (const p of pods) expect(p.name).toMatch(new RegExp(`^web-${SAFE}{10}-${SAFE}{5}$`));
    expect(new Set(pods.map((p) => p.name)).size).toBe(3);
    expect(new Set(pods.map((p) => p.name.split('-')[1])).size).toBe(1);
  });

  test('replicas carry the template labels, a pod-template-hash label, the owner and the template', () => {
    const m = manifests(deployment({ replicas: 2 }));
    const pods = desiredPods(m);
    const middle = pods[0]?.name.split('-')[1];
    for (const p of pods) {
      expect(p).toMatchObject({
        namespace: 'default',
        labels: { app: 'web', tier: 'front', 'pod-template-hash': middle },
        annotations: { 'ambit.dev/note': 'x' },
        owner: 'Deployment/web',
        spec: m.deployments[0]?.template.spec,
        source: { file: 'm.yaml', line: 1 },
      });
    }
    expect(pods[0]?.specHash).toBe(pods[1]?.specHash);
  });

  test('names are stable for the same template, also when the Deployment moves in the file', () => {
    const a = desiredPods(manifests(deployment({ replicas: 2 }))).map((p) => p.name);
    const b = desiredPods(manifests(deployment({ replicas: 2, leadingLines: 5 }))).map((p) => p.name);
    expect(b).toEqual(a);
  });

  test('scaling up keeps the existing replicas and adds new names', () => {
    const two = desiredPods(manifests(deployment({ replicas: 2 }))).map((p) => p.name);
    const three = desiredPods(manifests(deployment({ replicas: 3 }))).map((p) => p.name);
    expect(three.slice(0, 2)).toEqual(two);
    expect(two).not.toContain(three[2]);
  });

  test('a template change gives every replica a new name and spec hash', () => {
    const before = desiredPods(manifests(deployment({ replicas: 2, mode: 'prod' })));
    const after = desiredPods(manifests(deployment({ replicas: 2, mode: 'debug' })));
    const beforeMiddle = before[0]?.name.split('-')[1];
    const afterMiddle = after[0]?.name.split('-')[1];
    expect(afterMiddle).not.toBe(beforeMiddle);
    expect(after[0]?.labels['pod-template-hash']).toBe(afterMiddle);
    for (const p of after) expect(before.map((b) => b.name)).not.toContain(p.name);
    expect(after[0]?.specHash).not.toBe(before[0]?.specHash);
  });

  test.each([
    { replicas: undefined, count: 1 },
    { replicas: 0, count: 0 },
    { replicas: 5, count: 5 },
  ])('replicas: $replicas gives $count pods', ({ replicas, count }) => {
    expect(desiredPods(manifests(deployment(replicas === undefined ? {} : { replicas })))).toHaveLength(
      count,
    );
  });

  test('plain Pods keep their names and labels, and have no owner', () => {
    const text = `apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: kube-system
  labels: {app: client}
spec:
  containers:
    - name: c
      command: [sleep, infinity]
`;
    const pods = desiredPods(manifests(text));
    expect(pods).toHaveLength(1);
    expect(pods[0]).toMatchObject({ namespace: 'kube-system', name: 'client', labels: { app: 'client' } });
    expect(pods[0]?.owner).toBeUndefined();
    expect(pods[0]?.labels['pod-template-hash']).toBeUndefined();
    const relabelled = desiredPods(manifests(text.replace('app: client', 'app: client2')));
    expect(relabelled[0]?.name).toBe('client');
    expect(relabelled[0]?.specHash).not.toBe(pods[0]?.specHash);
    expect(desiredPods(manifests(text))[0]?.specHash).toBe(pods[0]?.specHash);
  });
});

describe('pickNode', () => {
  const nodes = [nodeLayout('ambit', 0), nodeLayout('ambit', 1), nodeLayout('ambit', 2)];
  const on = (node: string, owner?: string): PlacedPod => (owner === undefined ? { node } : { node, owner });

  test.each<{
    what: string;
    pod: { nodeName?: string; owner?: string };
    placed: PlacedPod[];
    expected: string | undefined;
  }>([
    { what: 'empty cluster: lowest index', pod: {}, placed: [], expected: 'node-0' },
    {
      what: 'nodeName pins the pod even to the busiest node',
      pod: { nodeName: 'node-2', owner: 'Deployment/web' },
      placed: [on('node-2', 'Deployment/web'), on('node-2'), on('node-2')],
      expected: 'node-2',
    },
    {
      what: 'nodeName of an unknown node places nowhere',
      pod: { nodeName: 'node-9' },
      placed: [],
      expected: undefined,
    },
    {
      what: 'fewest pods overall',
      pod: {},
      placed: [on('node-0'), on('node-0'), on('node-1'), on('node-2'), on('node-2')],
      expected: 'node-1',
    },
    {
      what: 'replicas spread before total load counts',
      pod: { owner: 'Deployment/web' },
      placed: [
        on('node-0', 'Deployment/web'),
        on('node-1'),
        on('node-1'),
        on('node-1'),
        on('node-2', 'Deployment/web'),
      ],
      expected: 'node-1',
    },
    {
      what: 'other owners do not count as the same owner',
      pod: { owner: 'Deployment/web' },
      placed: [
        on('node-0', 'Deployment/api'),
        on('node-0', 'Deployment/api'),
        on('node-1', 'Deployment/web'),
      ],
      expected: 'node-2',
    },
    {
      what: 'a pod without owner ignores owners and takes the least loaded node',
      pod: {},
      placed: [on('node-0', 'Deployment/web'), on('node-1'), on('node-1'), on('node-2'), on('node-2')],
      expected: 'node-0',
    },
    {
      what: 'same-owner tie broken by total pods',
      pod: { owner: 'Deployment/web' },
      placed: [
        on('node-0', 'Deployment/web'),
        on('node-1', 'Deployment/web'),
        on('node-1'),
        on('node-2', 'Deployment/web'),
      ],
      expected: 'node-0',
    },
    {
      what: 'full tie broken by lowest index',
      pod: { owner: 'Deployment/web' },
      placed: [on('node-1'), on('node-2'), on('node-0')],
      expected: 'node-0',
    },
    {
      what: 'pods on nodes not in the list are ignored',
      pod: {},
      placed: [on('node-7'), on('node-0')],
      expected: 'node-1',
    },
  ])('$what', ({ pod, placed, expected }) => {
    expect(pickNode(pod, nodes, placed)?.name).toBe(expected);
  });

  test('ties go to the lowest index, not the first in the list', () => {
    expect(pickNode({}, [...nodes].reverse(), [])?.name).toBe('node-0');
  });

  test('no nodes: nowhere', () => {
    expect(pickNode({}, [], [])).toBeUndefined();
  });

  test('placing replicas one by one spreads them round the nodes', () => {
    const placed: PlacedPod[] = [on('node-0'), on('node-0')];
    const chosen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const node = pickNode({ owner: 'Deployment/web' }, nodes, placed);
      expect(node).toBeDefined();
      if (node === undefined) return;
      chosen.push(node.name);
      placed.push(on(node.name, 'Deployment/web'));
    }
    expect(chosen).toEqual(['node-1', 'node-2', 'node-0', 'node-1', 'node-2', 'node-0']);
  });
});

describe('allocate', () => {
  test.each<{ used: number[]; min: number; max: number; expected: number | undefined }>([
    { used: [], min: 2, max: 254, expected: 2 },
    { used: [2, 3, 4], min: 2, max: 254, expected: 5 },
    { used: [2, 4], min: 2, max: 254, expected: 3 },
    { used: [1, 5], min: 2, max: 254, expected: 2 },
    { used: [10, 11], min: 10, max: 11, expected: undefined },
    { used: [10], min: 10, max: 11, expected: 11 },
    { used: [], min: 5, max: 4, expected: undefined },
  ])('used $used in [$min, $max] -> $expected', ({ used, min, max, expected }) => {
    expect(allocate(new Set(used), min, max)).toBe(expected);
  });
});
