import { describe, expect, test } from 'vitest';
import { keptOutOfManifests } from '../../src/local/kube-api/controller-objects.js';
import {
  collectGarbage,
  type Dependent,
  dependentsOf,
  type OwnerReference,
  propagationPolicy,
  withoutOwner,
} from '../../src/local/kube-api/garbage-collector.js';

const ref = (name: string, uid: string): OwnerReference => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'Gateway',
  name,
  uid,
  controller: true,
  blockOwnerDeletion: true,
});

const dep = (key: string, ...refs: OwnerReference[]): Dependent => ({
  key,
  namespace: 'shop',
  ownerReferences: refs,
});

/** Owners that exist now: name -> uid. */
const owners = (live: Record<string, string>) => (r: OwnerReference) => live[r.name];

describe('collectGarbage', () => {
  test.each([
    ['the owner exists with that UID: kept', [dep('d', ref('gw', 'u1'))], { gw: 'u1' }, [], []],
    ['the owner is gone: deleted', [dep('d', ref('gw', 'u1'))], {}, ['d'], []],
    [
      'an owner of that name but another UID (re-created): deleted',
      [dep('d', ref('gw', 'u1'))],
      { gw: 'u2' },
      ['d'],
      [],
    ],
    [
      'one of two owners gone: its reference is stripped',
      [dep('d', ref('gw', 'u1'), ref('other', 'u9'))],
      { other: 'u9' },
      [],
      [{ key: 'd', uids: ['u1'] }],
    ],
    ["no owners at all: not the collector's", [dep('d')], {}, [], []],
  ])('%s', (_what, dependents, live, del, strip) => {
    expect(collectGarbage(dependents, owners(live))).toEqual({ delete: del, strip });
  });
});

describe('deletes with a propagation policy', () => {
  test.each([
    [undefined, '', 'Background'],
    [{ kind: 'DeleteOptions', propagationPolicy: 'Orphan' }, '', 'Orphan'],
    [{ propagationPolicy: 'Foreground' }, '', 'Foreground'],
    [undefined, 'propagationPolicy=Orphan', 'Orphan'],
    [{ orphanDependents: true }, '', 'Orphan'],
    [{ propagationPolicy: 'Sometimes' }, '', { invalid: 'Sometimes' }],
  ])('DeleteOptions %j, query %j -> %j', (body, query, policy) => {
    expect(propagationPolicy(body, new URLSearchParams(query))).toEqual(policy);
  });

  test('the dependents of an owner are those that name its UID', () => {
    const all = [dep('a', ref('gw', 'u1')), dep('b', ref('gw', 'u2')), dep('c')];
    expect(dependentsOf('u1', all).map((d) => d.key)).toEqual(['a']);
  });

  test('orphaning strips the reference, and the field when none is left', () => {
    const o = {
      kind: 'Service',
      metadata: { name: 'gw', ownerReferences: [ref('gw', 'u1'), ref('x', 'u2')] },
    };
    expect(withoutOwner(o, ['u1']).metadata).toEqual({ name: 'gw', ownerReferences: [ref('x', 'u2')] });
    expect(withoutOwner(o, ['u1', 'u2']).metadata).toEqual({ name: 'gw' });
  });
});

describe("keptOutOfManifests: which new objects local mode keeps out of the user's manifests", () => {
  const owned = {
    kind: 'Deployment',
    metadata: {
      name: 'wp',
      ownerReferences: [
        {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'Gateway',
          name: 'wp',
          uid: 'u',
          controller: true,
        },
      ],
    },
  };
  const plain = { kind: 'ConfigMap', metadata: { name: 'ambit-ca-root-cert', namespace: 'shop' } };
  const user = { canWrite: true };
  const daemon = { canWrite: false };
  test.each<[string, Record<string, unknown> | undefined, { canWrite: boolean } | undefined, boolean]>([
    ["a controller's object, from a daemon", owned, daemon, true],
    ["a controller's object, from the user (kubectl apply of one)", owned, user, true],
    ['an object without an owner, from a daemon (the CA root ConfigMap)', plain, daemon, true],
    ['an object without an owner, from the user', plain, user, false],
    ['an object without an owner, from nobody known', plain, undefined, false],
    ['a delete (no object)', undefined, daemon, false],
  ])('%s', (_what, o, by, kept) => {
    expect(keptOutOfManifests(o, by)).toBe(kept);
  });
});
