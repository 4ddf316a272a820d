import { describe, expect, test } from 'vitest';
import type { ClusterPod } from '../../src/cluster/resources.js';
import type { Labels } from '../../src/config/kube-types.js';
import { desiredEnrollments, type Excluded } from '../../src/node-agent/redirection/enrollment.js';
import {
  type ExclusionContext,
  type ExclusionReason,
  enrollmentExclusion,
} from '../../src/node-agent/redirection/enrollment-exclusion.js';
import { AMBIENT_NS, snapPod } from './cluster-fixtures.js';

const ROOT = '/sys/fs/cgroup/kubepods.slice';
const POD = `${ROOT}/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice`;
/** The agent runs in a pod of its own, below the same root (it is a DaemonSet pod). */
const AGENT_POD = `${ROOT}/kubepods-burstable.slice/kubepods-burstable-podagent.slice`;
const AGENT = `${AGENT_POD}/cri-containerd-${'a'.repeat(64)}.scope`;
const CTX: ExclusionContext = { node: 'node-0', podsCgroup: ROOT, ownCgroup: AGENT };
const AMBIT = { 'app.kubernetes.io/part-of': 'ambit' };

describe('enrollmentExclusion: why a pod is not enrolled', () => {
  test.each<{
    what: string;
    pod?: Partial<ClusterPod>;
    ns?: Labels;
    /** The pod's cgroup as the layout resolves it (POD when not given; null: cannot be placed). */
    cgroup?: string | null;
    ctx?: Partial<ExclusionContext>;
    /** The whole context, instead of CTX with `ctx` over it. */
    only?: ExclusionContext;
    reason: ExclusionReason | undefined;
  }>([
    { what: 'a Running pod of an enrolled namespace, below the attach point', reason: undefined },
    { what: 'a pod of another node', pod: { node: 'node-1' }, reason: 'other-node' },
    { what: 'a Pending pod', pod: { phase: 'Pending' }, reason: 'not-running' },
    { what: 'a pod being deleted', pod: { terminating: true }, reason: 'terminating' },
    { what: 'a namespace not in the mesh', ns: {}, reason: 'not-ambient' },
    {
      what: 'a pod opted out',
      pod: { labels: { 'ambit.dev/dataplane-mode': 'none' } },
      reason: 'not-ambient',
    },
    // Loop safety: these hold even for pods the labels put in the mesh.
    {
      what: 'a hostNetwork pod in an enrolled namespace',
      pod: { hostNetwork: true },
      reason: 'host-network',
    },
    {
      what: 'a hostNetwork pod that asks for ambient itself',
      pod: { hostNetwork: true, labels: AMBIENT_NS },
      ns: {},
      reason: 'host-network',
    },
    {
      what: "one of Ambit's pods in an enrolled namespace",
      pod: { labels: AMBIT },
      reason: 'ambit-component',
    },
    {
      what: "one of Ambit's pods that asks for ambient itself",
      pod: { labels: { ...AMBIT, ...AMBIENT_NS } },
      ns: {},
      reason: 'ambit-component',
    },
    {
      what: 'part-of another project is just a label',
      pod: { labels: { 'app.kubernetes.io/part-of': 'shop' } },
      reason: undefined,
    },
    {
      what: "the agent's own pod cgroup (labels notwithstanding)",
      cgroup: AGENT_POD,
      reason: 'agent-cgroup',
    },
    { what: "the agent's own container cgroup", cgroup: AGENT, reason: 'agent-cgroup' },
    {
      what: 'a pod beside the agent is fine',
      cgroup: `${ROOT}/kubepods-burstable.slice/kubepods-burstable-podother.slice`,
      reason: undefined,
    },
    { what: 'a cgroup that is the attach point itself', cgroup: ROOT, reason: 'outside-attach-point' },
    {
      what: 'a cgroup above the attach point',
      cgroup: '/sys/fs/cgroup',
      reason: 'outside-attach-point',
    },
    {
      what: 'a cgroup beside the attach point',
      cgroup: '/sys/fs/cgroup/system.slice/sshd.service',
      reason: 'outside-attach-point',
    },
    {
      what: 'a cgroup whose name only starts like the attach point',
      cgroup: `${ROOT}-other/pod`,
      reason: 'outside-attach-point',
    },
    {
      what: 'an attach point narrowed to one QoS class leaves the others out',
      cgroup: `${ROOT}/kubepods-pod99.slice`,
      ctx: { podsCgroup: `${ROOT}/kubepods-besteffort.slice` },
      reason: 'outside-attach-point',
    },
    { what: 'a pod the layout cannot place', cgroup: null, reason: 'no-cgroup' },
    {
      what: 'an agent whose own cgroup is unknown',
      cgroup: AGENT_POD,
      only: { node: 'node-0', podsCgroup: ROOT },
      reason: undefined,
    },
  ])('$what: $reason', ({ pod, ns, cgroup, ctx, only, reason }) => {
    const c: ExclusionContext = only ?? { ...CTX, ...ctx };
    const path = cgroup === null ? undefined : (cgroup ?? POD);
    expect(enrollmentExclusion(snapPod('web', pod), ns ?? AMBIENT_NS, path, c)).toBe(reason);
  });
});

describe('desiredEnrollments reports the pods loop safety keeps out', () => {
  test('hostNetwork and Ambit pods of an enrolled namespace are listed with their reason; others are not', () => {
    const excluded: Excluded[] = [];
    const pods = [
      snapPod('web', { uid: 'web' }),
      snapPod('host-agent', { uid: 'host', hostNetwork: true }),
      snapPod('ambit-proxy', { uid: 'ambit', labels: AMBIT }),
      snapPod('opted-out', { uid: 'out', labels: { 'ambit.dev/dataplane-mode': 'none' } }),
      snapPod('elsewhere', { uid: 'far', node: 'node-1' }),
    ];
    const enrolled = desiredEnrollments(
      pods,
      () => AMBIENT_NS,
      CTX,
      { resolve: (p) => `${ROOT}/kubepods-pod${p.uid}.slice` },
      excluded,
    );
    expect(enrolled.map((e) => e.pod)).toEqual(['shop/web']);
    expect(excluded).toEqual([
      { pod: 'shop/host-agent', reason: 'host-network' },
      { pod: 'shop/ambit-proxy', reason: 'ambit-component' },
    ]);
  });
});
