import { describe, expect, test } from 'vitest';
import {
  bundleText,
  CA_ROOT_LABELS,
  caRootConfigMap,
  caRootDrift,
  caRootNamespaces,
  type ObservedNamespace,
  observedNamespace,
  planCaRoots,
} from '../../src/control-plane/ca-root-plan.js';

type Json = Record<string, unknown>;

const OLD = '-----BEGIN CERTIFICATE-----\nOLD\n-----END CERTIFICATE-----\n';
const NEW = '-----BEGIN CERTIFICATE-----\nNEW\n-----END CERTIFICATE-----\n';

/** An observed ConfigMap; `labels` null: it has none. */
const cm = (data: Json | undefined, labels: Json | null = CA_ROOT_LABELS): Json => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'ambit-ca-root-cert', namespace: 'shop', ...(labels === null ? {} : { labels }) },
  ...(data === undefined ? {} : { data }),
});

describe('caRootConfigMap: what the control plane applies', () => {
  test("the bundle under root-cert.pem, the signing root first, labelled as the control plane's", () => {
    expect(caRootConfigMap('shop', [NEW, OLD])).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'ambit-ca-root-cert',
        namespace: 'shop',
        labels: { 'app.kubernetes.io/managed-by': 'ambit-control-plane' },
      },
      data: { 'root-cert.pem': NEW + OLD },
    });
  });

  test.each([
    [[OLD], OLD],
    [[OLD.trimEnd(), NEW.trimEnd()], OLD + NEW],
  ])('bundleText(%j) ends every PEM with a newline', (bundle, text) => {
    expect(bundleText(bundle)).toBe(text);
  });
});

describe('caRootNamespaces: every namespace that is not being deleted, system ones included', () => {
  test.each<[string, ObservedNamespace[], string[]]>([
    ['none', [], []],
    [
      'user, Ambit and system namespaces',
      [
        { name: 'shop', phase: 'Active' },
        { name: 'ambit-system', phase: 'Active' },
        { name: 'kube-system', phase: 'Active' },
        { name: 'kube-public' },
        { name: 'kube-node-lease' },
        { name: 'default' },
      ],
      ['ambit-system', 'default', 'kube-node-lease', 'kube-public', 'kube-system', 'shop'],
    ],
    ['a Terminating namespace', [{ name: 'old', phase: 'Terminating' }, { name: 'shop' }], ['shop']],
    ['a namespace with a deletionTimestamp', [{ name: 'old', deleting: true }], []],
  ])('%s', (_what, namespaces, out) => {
    expect(caRootNamespaces(namespaces)).toEqual(out);
  });

  test.each<[string, Json, ObservedNamespace | undefined]>([
    ['active', { metadata: { name: 'a' }, status: { phase: 'Active' } }, { name: 'a', phase: 'Active' }],
    [
      'being deleted',
      {
        metadata: { name: 'a', deletionTimestamp: '2026-01-01T00:00:00Z' },
        status: { phase: 'Terminating' },
      },
      { name: 'a', phase: 'Terminating', deleting: true },
    ],
    ['without status', { metadata: { name: 'a' } }, { name: 'a' }],
    ['without a name', { metadata: {} }, undefined],
  ])('observedNamespace: %s', (_what, o, out) => {
    expect(observedNamespace(o)).toEqual(out);
  });
});

describe('caRootDrift: whether an observed ConfigMap must be applied again', () => {
  const desired = caRootConfigMap('shop', [NEW, OLD]);
  test.each<[string, Json | undefined, string | undefined]>([
    ['missing (deleted, or a new namespace)', undefined, 'missing'],
    ['as applied', cm({ 'root-cert.pem': NEW + OLD }), undefined],
    [
      'another key and label besides ours are left alone',
      cm({ 'root-cert.pem': NEW + OLD, extra: 'x' }, { ...CA_ROOT_LABELS, team: 'a' }),
      undefined,
    ],
    ['the old bundle (before a rotation)', cm({ 'root-cert.pem': OLD }), 'root-cert.pem differs'],
    ['edited by hand', cm({ 'root-cert.pem': 'garbage' }), 'root-cert.pem differs'],
    ['its key removed', cm({ other: 'x' }), 'root-cert.pem is missing'],
    ['no data at all', cm(undefined), 'root-cert.pem is missing'],
    [
      'the label removed',
      cm({ 'root-cert.pem': NEW + OLD }, null),
      'label app.kubernetes.io/managed-by is not ambit-control-plane',
    ],
    [
      'the label changed',
      cm({ 'root-cert.pem': NEW + OLD }, { 'app.kubernetes.io/managed-by': 'me' }),
      'label app.kubernetes.io/managed-by is not ambit-control-plane',
    ],
  ])('%s', (_what, observed, why) => {
    expect(caRootDrift(desired, observed)).toBe(why);
  });
});

describe('planCaRoots: the ConfigMaps to apply now', () => {
  const namespaces: ObservedNamespace[] = [
    { name: 'shop' },
    { name: 'ambit-system' },
    { name: 'gone', phase: 'Terminating' },
  ];
  const current = new Map<string, Json>([
    ['shop', cm({ 'root-cert.pem': OLD })],
    ['ambit-system', cm({ 'root-cert.pem': OLD })],
  ]);
  test.each<[string, readonly string[] | undefined, Map<string, Json>, string[]]>([
    ['nothing before the bundle is known', undefined, new Map(), []],
    ['nothing for an empty bundle', [], new Map(), []],
    ['every namespace at first', [OLD], new Map(), ['ambit-system: missing', 'shop: missing']],
    ['nothing when every one is current', [OLD], current, []],
    [
      'every one after a rotation',
      [NEW, OLD],
      current,
      ['ambit-system: root-cert.pem differs', 'shop: root-cert.pem differs'],
    ],
    ['only the deleted one', [OLD], new Map([...current].filter(([ns]) => ns !== 'shop')), ['shop: missing']],
  ])('%s', (_what, bundle, observed, out) => {
    expect(
      planCaRoots(namespaces, bundle, observed).map((p) => `${p.object.metadata.namespace}: ${p.why}`),
    ).toEqual(out);
  });
});
