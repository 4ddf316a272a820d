import { describe, expect, test } from 'vitest';
import { nodeLayout, podAddresses, podHostVeth, serviceAddresses } from '../../src/local/layout.js';
import { cgroup2Mounts, detectCgroup2Root } from '../../src/os/cgroup.js';

// /proc/self/mountinfo of a systemd "hybrid" host: v1 controllers under /sys/fs/cgroup, v2 at unified.
const HYBRID = `22 28 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
28 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
31 22 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 31 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
36 31 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
37 31 0:32 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,net_cls,net_prio
`;

// A pure cgroup v2 host (current distributions, Kubernetes nodes).
const UNIFIED = `24 29 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
29 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
31 24 0:7 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:12 - bpf bpf rw,mode=700
`;

describe('cgroup2Mounts', () => {
  test.each([
    { host: 'hybrid host', mountinfo: HYBRID, mounts: ['/sys/fs/cgroup/unified'] },
    { host: 'pure v2 host', mountinfo: UNIFIED, mounts: ['/sys/fs/cgroup'] },
    {
      host: 'extra v2 mount after the root one, with optional fields',
      mountinfo: `${UNIFIED}90 30 0:26 /ambit /run/ambit-cgroup2 rw,relatime shared:40 master:9 - cgroup2 none rw\n`,
      mounts: ['/sys/fs/cgroup', '/run/ambit-cgroup2'],
    },
    {
      host: 'mount point with an escaped space',
      mountinfo: '90 1 0:50 / /mnt/my\\040cgroup rw,relatime - cgroup2 cgroup2 rw\n',
      mounts: ['/mnt/my cgroup'],
    },
    {
      host: 'cgroup v1 only',
      mountinfo: HYBRID.split('\n')
        .filter((l) => !l.includes('cgroup2'))
        .join('\n'),
      mounts: [],
    },
    { host: 'empty text', mountinfo: '', mounts: [] },
    { host: 'no trailing newline', mountinfo: UNIFIED.trimEnd(), mounts: ['/sys/fs/cgroup'] },
  ])('$host', ({ mountinfo, mounts }) => {
    expect(cgroup2Mounts(mountinfo)).toEqual(mounts);
  });
});

describe('detectCgroup2Root', () => {
  test.each<{ what: string; configured: string | undefined; mounts: string[]; root: string | undefined }>([
    { what: 'configured wins', configured: '/custom', mounts: ['/sys/fs/cgroup'], root: '/custom' },
    {
      what: 'empty configuration is ignored',
      configured: '',
      mounts: ['/sys/fs/cgroup'],
      root: '/sys/fs/cgroup',
    },
    {
      what: '/sys/fs/cgroup is preferred wherever it is listed',
      configured: undefined,
      mounts: ['/run/ambit-cgroup2', '/sys/fs/cgroup'],
      root: '/sys/fs/cgroup',
    },
    {
      what: 'else the first v2 mount (hybrid)',
      configured: undefined,
      mounts: cgroup2Mounts(HYBRID),
      root: '/sys/fs/cgroup/unified',
    },
    { what: 'pure v2 host', configured: undefined, mounts: cgroup2Mounts(UNIFIED), root: '/sys/fs/cgroup' },
    { what: 'none', configured: undefined, mounts: [], root: undefined },
  ])('$what', ({ configured, mounts, root }) => {
    expect(detectCgroup2Root(configured, mounts)).toBe(root);
  });
});

describe('nodeLayout', () => {
  test.each([
    {
      index: 0,
      layout: {
        name: 'node-0',
        index: 0,
        netns: 'ambit.node-0',
        ip4: '172.18.0.1',
        ip6: 'fd00:18::1',
        podCidr4: '10.244.0.0/24',
        podCidr6: 'fd00:10:244:0::/64',
        gateway4: '10.244.0.1',
        gateway6: 'fd00:10:244:0::1',
        proxy4: '10.244.0.254',
        proxy6: 'fd00:10:244:0::fe',
        podsCgroup: 'nodes/node-0/kubepods.slice',
        systemCgroup: 'nodes/node-0/system',
      },
    },
    {
      index: 10,
      layout: {
        name: 'node-10',
        index: 10,
        netns: 'ambit.node-10',
        ip4: '172.18.0.11',
        ip6: 'fd00:18::b',
        podCidr4: '10.244.10.0/24',
        podCidr6: 'fd00:10:244:a::/64',
        gateway4: '10.244.10.1',
        gateway6: 'fd00:10:244:a::1',
        proxy4: '10.244.10.254',
        proxy6: 'fd00:10:244:a::fe',
        podsCgroup: 'nodes/node-10/kubepods.slice',
        systemCgroup: 'nodes/node-10/system',
      },
    },
    {
      index: 15,
      layout: expect.objectContaining({
        ip4: '172.18.0.16',
        ip6: 'fd00:18::10',
        podCidr6: 'fd00:10:244:f::/64',
      }),
    },
  ])('node $index', ({ index, layout }) => {
    expect(nodeLayout('ambit', index)).toEqual(layout);
  });

  test('the cluster name only changes the namespace names', () => {
    const a = nodeLayout('ambit', 3);
    const b = nodeLayout('dev', 3);
    expect(b.netns).toBe('dev.node-3');
    expect({ ...b, netns: a.netns }).toEqual(a);
  });

  test.each([
    [0, 2, '10.244.0.2', 'fd00:10:244:0::2'],
    [1, 254, '10.244.1.254', 'fd00:10:244:1::fe'],
    [11, 17, '10.244.11.17', 'fd00:10:244:b::11'],
  ])('pod on node %i, host %i: %s and %s', (node, host, ip4, ip6) => {
    expect(podAddresses(nodeLayout('ambit', node), host)).toEqual({ ip4, ip6 });
  });

  test.each([
    [10, '10.96.0.10', 'fd00:10:96::a'],
    [256, '10.96.1.0', 'fd00:10:96::100'],
    [65534, '10.96.255.254', 'fd00:10:96::fffe'],
  ])('Service VIP %i: %s and %s', (n, ip4, ip6) => {
    expect(serviceAddresses(n)).toEqual({ ip4, ip6 });
  });
});

describe('podHostVeth', () => {
  test.each([
    ['default', 'client'],
    ['shop', 'backend-7c9f8d5b6d-x2kqz'],
    ['a-very-long-namespace-name-that-goes-on', 'a-very-long-pod-name-with-a-replica-suffix-abcde'],
    ['x', 'y'],
  ])('%s/%s fits an interface name', (namespace, pod) => {
    const name = podHostVeth(namespace, pod);
    expect(name.length).toBeLessThanOrEqual(15);
    expect(name).toMatch(/^veth[0-9a-f]{8}$/);
    expect(podHostVeth(namespace, pod)).toBe(name);
  });

  test('different pods get different names, also when namespace and name split differently', () => {
    const names = [
      podHostVeth('shop', 'web-1'),
      podHostVeth('shop', 'web-2'),
      podHostVeth('other', 'web-1'),
      podHostVeth('a-b', 'c'),
      podHostVeth('a', 'b-c'),
    ];
    expect(new Set(names).size).toBe(names.length);
  });
});
