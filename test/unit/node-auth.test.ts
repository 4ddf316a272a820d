import { describe, expect, test } from 'vitest';
import type { ClusterPod } from '../../src/cluster/resources.js';
import { authorizeIdentity } from '../../src/control-plane/node-auth.js';
import { SpiffeId } from '../../src/identity/spiffe-id.js';
import { snapPod } from './cluster-fixtures.js';

const id = (text: string) => SpiffeId.parse(text);
const web = (over: Partial<ClusterPod> = {}) =>
  snapPod('web-1', { serviceAccount: 'web', node: 'node-1', ...over });

describe('authorizeIdentity: a node gets identities of pods on that node only', () => {
  test.each<{
    what: string;
    pods: ClusterPod[];
    node: string;
    identity: string;
    saExists?: boolean;
    refusal?: string;
  }>([
    {
      what: 'no pod runs as it, and the ServiceAccount does not exist: the refusal says so',
      pods: [],
      node: 'node-1',
      identity: 'spiffe://cluster.local/ns/shop/sa/ghost',
      saExists: false,
      refusal: 'no pod runs as shop/ghost (there is no ServiceAccount shop/ghost)',
    },
    {
      what: 'a pod of that service account on the node',
      pods: [web()],
      node: 'node-1',
      identity: 'spiffe://cluster.local/ns/shop/sa/web',
    },
    {
      what: 'several pods, one of them on the node',
      pods: [web({ name: 'web-2', node: 'node-2' }), web()],
      node: 'node-1',
      identity: 'spiffe://cluster.local/ns/shop/sa/web',
    },
    {
      what: 'the pods run on another node',
      pods: [web({ node: 'node-2' })],
      node: 'node-1',
      identity: 'spiffe://cluster.local/ns/shop/sa/web',
      refusal: 'no pod on node-1 runs as shop/web (it runs on node-2)',
    },
    {
      what: 'no pod runs as it',
      pods: [],
      node: 'node-1',
      identity: 'spiffe://cluster.local/ns/shop/sa/web',
      refusal: 'no pod runs as shop/web',
    },
    {
      what: 'a pod of the same name in another namespace does not count',
      pods: [web({ namespace: 'other' })],
      node: 'node-1',
      identity: 'spiffe://cluster.local/ns/shop/sa/web',
      refusal: 'no pod runs as shop/web',
    },
    {
      what: 'a pod with another service account does not count',
      pods: [web({ serviceAccount: 'default' })],
      node: 'node-1',
      identity: 'spiffe://cluster.local/ns/shop/sa/web',
      refusal: 'no pod runs as shop/web',
    },
    {
      what: 'the pods on the node have ended',
      pods: [web({ phase: 'Succeeded' }), web({ name: 'web-2', phase: 'Failed' })],
      node: 'node-1',
      identity: 'spiffe://cluster.local/ns/shop/sa/web',
      refusal: 'the pods of shop/web on node-1 have ended',
    },
    {
      what: 'one ended and one running pod on the node',
      pods: [web({ phase: 'Succeeded' }), web({ name: 'web-2' })],
      node: 'node-1',
      identity: 'spiffe://cluster.local/ns/shop/sa/web',
    },
    {
      what: 'another trust domain',
      pods: [web()],
      node: 'node-1',
      identity: 'spiffe://evil.example/ns/shop/sa/web',
      refusal: 'trust domain evil.example is not cluster.local',
    },
  ])('$what', ({ pods, node, identity, saExists, refusal }) => {
    expect(authorizeIdentity(pods, node, id(identity), 'cluster.local', saExists)).toBe(refusal);
  });
});
