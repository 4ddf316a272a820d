import { describe, expect, test } from 'vitest';
import { workloadId } from '../../src/bpf/redirect-maps.js';
import type { ClusterPod } from '../../src/cluster/resources.js';
import type { Labels } from '../../src/config/kube-types.js';
import type { PodCgroupResolver } from '../../src/node-agent/pod-cgroups.js';
import { desiredEnrollments } from '../../src/node-agent/redirection/enrollment.js';
import { AMBIENT_NS, type Snapshot, snapPod, snapshot } from './cluster-fixtures.js';

const PORTS = 'ambit.dev/exclude-outbound-ports';
const CIDRS = 'ambit.dev/exclude-outbound-cidrs';
/** The workload id of `enrollOne`'s pod (snapPod('web') has the uid 'uid-web'). */
const WEB = workloadId('uid-web');

/** A layout that places every pod but one whose name says it has no cgroup. */
const cgroups: PodCgroupResolver = {
  resolve: (p) => (p.name === 'no-cgroup' ? undefined : `/cg/pods/${p.namespace}_${p.name}`),
};

function desired(snap: Snapshot, node: string) {
  return desiredEnrollments(
    snap.pods,
    (ns) => snap.namespaces.get(ns)?.labels,
    { node, podsCgroup: '/cg/pods' },
    cgroups,
  );
}

function enrollOne(pod: Partial<ClusterPod>, nsLabels: Labels = AMBIENT_NS) {
  return desired(
    snapshot({ namespaces: [{ name: 'shop', labels: nsLabels }], pods: [snapPod('web', pod)] }),
    'node-0',
  );
}

describe('desiredEnrollments: which pods', () => {
  test.each<{ what: string; pod: Partial<ClusterPod>; ns?: Labels; enrolled: boolean }>([
    { what: 'Running pod of this node in an ambient namespace', pod: {}, enrolled: true },
    { what: 'pod of another node', pod: { node: 'node-1' }, enrolled: false },
    { what: 'Pending pod', pod: { phase: 'Pending' }, enrolled: false },
    { what: 'Succeeded pod', pod: { phase: 'Succeeded' }, enrolled: false },
    { what: 'pod being deleted', pod: { terminating: true }, enrolled: false },
    { what: 'hostNetwork pod', pod: { hostNetwork: true }, enrolled: false },
    { what: 'pod the layout cannot place', pod: { name: 'no-cgroup' }, enrolled: false },
    { what: 'namespace not in the mesh', pod: {}, ns: {}, enrolled: false },
    {
      what: 'pod opted out',
      pod: { labels: { 'ambit.dev/dataplane-mode': 'none' } },
      enrolled: false,
    },
    { what: 'pod-level ambient in a plain namespace', pod: { labels: AMBIENT_NS }, ns: {}, enrolled: true },
    { what: 'not ready but Running', pod: { ready: false }, enrolled: true },
  ])('$what: $enrolled', ({ pod, ns, enrolled }) => {
    expect(enrollOne(pod, ns).map((e) => e.pod)).toEqual(enrolled ? ['shop/web'] : []);
  });

  test('an enrollment names the pod, its uid and cgroup (from the layout); no annotations means no exclusions', () => {
    expect(enrollOne({ uid: 'u-1' })).toEqual([
      {
        pod: 'shop/web',
        uid: 'u-1',
        cgroup: '/cg/pods/shop_web',
        ips: ['10.244.0.2', 'fd00:10:244::2'],
        config: { workloadId: workloadId('u-1'), excludedPorts: [], excludedCidrs: [] },
        warnings: [],
      },
    ]);
  });

  test('only the pods of the given node, in snapshot order', () => {
    const snap = snapshot({
      namespaces: [
        { name: 'shop', labels: AMBIENT_NS },
        { name: 'plain', labels: {} },
      ],
      pods: [
        snapPod('b'),
        snapPod('x', { node: 'node-1' }),
        snapPod('a'),
        snapPod('p', { namespace: 'plain' }),
      ],
    });
    expect(desired(snap, 'node-0').map((e) => e.pod)).toEqual(['shop/b', 'shop/a']);
    expect(desired(snap, 'node-1').map((e) => e.pod)).toEqual(['shop/x']);
  });

  test("each enrollment carries its own pod's workload id, from the pod uid", () => {
    const snap = snapshot({
      namespaces: [{ name: 'shop', labels: AMBIENT_NS }],
      pods: [snapPod('a', { uid: 'uid-1' }), snapPod('b', { uid: 'uid-2' })],
    });
    const ids = desired(snap, 'node-0').map((e) => e.config.workloadId);
    expect(ids).toEqual([workloadId('uid-1'), workloadId('uid-2')]);
    expect(ids[0]).not.toBe(ids[1]);
  });
});

const sixteen = Array.from({ length: 16 }, (_, i) => 1000 + i);
const eight = Array.from({ length: 8 }, (_, i) => `10.${i}.0.0/16`);

describe('desiredEnrollments: exclude-outbound-ports', () => {
  test.each<{ what: string; value: string; ports: number[]; warnings: string[] }>([
    { what: 'one port', value: '5432', ports: [5432], warnings: [] },
    { what: 'a list', value: '5432,6379,1', ports: [5432, 6379, 1], warnings: [] },
    { what: 'whitespace and empty entries', value: ' 5432 , ,6379,  ', ports: [5432, 6379], warnings: [] },
    { what: 'empty value', value: '', ports: [], warnings: [] },
    { what: 'highest port', value: '65535', ports: [65535], warnings: [] },
    {
      what: 'zero',
      value: '0,80',
      ports: [80],
      warnings: ['annotation ambit.dev/exclude-outbound-ports: "0" is not a port number (1-65535); ignored'],
    },
    {
      what: 'too large',
      value: '65536',
      ports: [],
      warnings: [
        'annotation ambit.dev/exclude-outbound-ports: "65536" is not a port number (1-65535); ignored',
      ],
    },
    {
      what: 'names, signs, ranges and decimals',
      value: 'http,-1,80-90,8.5,443',
      ports: [443],
      warnings: [
        'annotation ambit.dev/exclude-outbound-ports: "http" is not a port number (1-65535); ignored',
        'annotation ambit.dev/exclude-outbound-ports: "-1" is not a port number (1-65535); ignored',
        'annotation ambit.dev/exclude-outbound-ports: "80-90" is not a port number (1-65535); ignored',
        'annotation ambit.dev/exclude-outbound-ports: "8.5" is not a port number (1-65535); ignored',
      ],
    },
    {
      what: 'hex is not a port',
      value: '0x50',
      ports: [],
      warnings: [
        'annotation ambit.dev/exclude-outbound-ports: "0x50" is not a port number (1-65535); ignored',
      ],
    },
    { what: 'exactly 16 ports', value: sixteen.join(','), ports: sixteen, warnings: [] },
    {
      what: 'more than 16 ports: the rest are dropped',
      value: [...sixteen, 2000, 2001].join(','),
      ports: sixteen,
      warnings: [
        'annotation ambit.dev/exclude-outbound-ports: more than 16 ports; 2000 and later are ignored',
      ],
    },
    {
      what: 'invalid entries do not count towards the limit',
      value: ['x', ...sixteen].join(','),
      ports: sixteen,
      warnings: ['annotation ambit.dev/exclude-outbound-ports: "x" is not a port number (1-65535); ignored'],
    },
  ])('$what', ({ value, ports, warnings }) => {
    const [e] = enrollOne({ annotations: { [PORTS]: value } });
    expect(e?.config).toEqual({ workloadId: WEB, excludedPorts: ports, excludedCidrs: [] });
    expect(e?.warnings).toEqual(warnings);
  });
});

describe('desiredEnrollments: exclude-outbound-cidrs', () => {
  test.each<{ what: string; value: string; cidrs: string[]; warnings: string[] }>([
    { what: 'one IPv4 CIDR', value: '10.0.0.0/8', cidrs: ['10.0.0.0/8'], warnings: [] },
    {
      what: 'IPv4 and IPv6 with whitespace',
      value: ' 10.0.0.0/8 , fd00::/8 ,',
      cidrs: ['10.0.0.0/8', 'fd00::/8'],
      warnings: [],
    },
    { what: 'bare IPv4 is a /32', value: '169.254.169.254', cidrs: ['169.254.169.254/32'], warnings: [] },
    { what: 'bare IPv6 is a /128', value: 'fd00::1', cidrs: ['fd00::1/128'], warnings: [] },
    { what: '/0 is allowed', value: '0.0.0.0/0,::/0', cidrs: ['0.0.0.0/0', '::/0'], warnings: [] },
    {
      what: 'not an address',
      value: 'example.com/24,10.0.0.0/8',
      cidrs: ['10.0.0.0/8'],
      warnings: [
        'annotation ambit.dev/exclude-outbound-cidrs: "example.com/24" is not a CIDR: the address part is not an IP address; ignored',
      ],
    },
    {
      what: 'IPv4 prefix too long',
      value: '10.0.0.0/33',
      cidrs: [],
      warnings: [
        'annotation ambit.dev/exclude-outbound-cidrs: "10.0.0.0/33" is not a CIDR: prefix length must be 0 to 32; ignored',
      ],
    },
    {
      what: 'IPv6 prefix too long',
      value: 'fd00::/129',
      cidrs: [],
      warnings: [
        'annotation ambit.dev/exclude-outbound-cidrs: "fd00::/129" is not a CIDR: prefix length must be 0 to 128; ignored',
      ],
    },
    {
      what: 'prefix not a number',
      value: '10.0.0.0/x',
      cidrs: [],
      warnings: [
        'annotation ambit.dev/exclude-outbound-cidrs: "10.0.0.0/x" is not a CIDR: prefix length must be 0 to 32; ignored',
      ],
    },
    {
      what: 'two slashes',
      value: '10.0.0.0/8/8',
      cidrs: [],
      warnings: [
        'annotation ambit.dev/exclude-outbound-cidrs: "10.0.0.0/8/8" is not a CIDR (address/bits); ignored',
      ],
    },
    { what: 'exactly 8 CIDRs', value: eight.join(','), cidrs: eight, warnings: [] },
    {
      what: 'more than 8 CIDRs: the rest are dropped',
      value: [...eight, '192.168.0.0/16', '172.16.0.0/12'].join(','),
      cidrs: eight,
      warnings: [
        'annotation ambit.dev/exclude-outbound-cidrs: more than 8 CIDRs; 192.168.0.0/16 and later are ignored',
      ],
    },
  ])('$what', ({ value, cidrs, warnings }) => {
    const [e] = enrollOne({ annotations: { [CIDRS]: value } });
    expect(e?.config).toEqual({ workloadId: WEB, excludedPorts: [], excludedCidrs: cidrs });
    expect(e?.warnings).toEqual(warnings);
  });

  test('bad entries in both annotations: the pod is still enrolled, with both warnings', () => {
    const [e] = enrollOne({ annotations: { [PORTS]: '80,abc', [CIDRS]: 'nope,10.0.0.1' } });
    expect(e?.config).toEqual({ workloadId: WEB, excludedPorts: [80], excludedCidrs: ['10.0.0.1/32'] });
    expect(e?.warnings).toEqual([
      'annotation ambit.dev/exclude-outbound-ports: "abc" is not a port number (1-65535); ignored',
      'annotation ambit.dev/exclude-outbound-cidrs: "nope" is not a CIDR: the address part is not an IP address; ignored',
    ]);
  });
});
