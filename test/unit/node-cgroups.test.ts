import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { AmbitError, ErrorCode } from '../../src/errors.js';
import {
  type NodeCgroupSettings,
  resolveNodeCgroups,
  subdirectories,
} from '../../src/node-agent/node-cgroups.js';
import { type Mount, mounts, requireUnifiedCgroup } from '../../src/os/cgroup.js';

const v2 = (mountPoint: string): Mount => ({ mountPoint, fstype: 'cgroup2' });
const v1 = (controller: string): Mount => ({ mountPoint: `/sys/fs/cgroup/${controller}`, fstype: 'cgroup' });
const SYS_TMPFS: Mount = { mountPoint: '/sys/fs/cgroup', fstype: 'tmpfs' };
const UNIFIED = [v2('/sys/fs/cgroup')];
const HYBRID = [SYS_TMPFS, v2('/sys/fs/cgroup/unified'), v1('systemd'), v1('memory')];
const LEGACY = [SYS_TMPFS, v1('systemd'), v1('memory'), v1('cpu,cpuacct')];

function thrown(fn: () => unknown): AmbitError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AmbitError);
    return err as AmbitError;
  }
  throw new Error('expected an error');
}

describe('requireUnifiedCgroup: cluster mode needs cgroup v2 at /sys/fs/cgroup', () => {
  test('a unified host', () => {
    expect(requireUnifiedCgroup(UNIFIED)).toBe('/sys/fs/cgroup');
  });

  test('read from mountinfo text', () => {
    const text = '30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n';
    expect(requireUnifiedCgroup(mounts(text))).toBe('/sys/fs/cgroup');
  });

  test.each([
    {
      what: 'hybrid',
      all: HYBRID,
      says: [
        '/sys/fs/cgroup is tmpfs',
        'a hybrid host (2 cgroup v1 hierarchies, cgroup2 at /sys/fs/cgroup/unified)',
      ],
    },
    {
      what: 'cgroup v1 only',
      all: LEGACY,
      says: ['/sys/fs/cgroup is tmpfs', 'a cgroup v1 host (3 cgroup v1'],
    },
    {
      what: 'nothing mounted',
      all: [],
      says: ['nothing is mounted at /sys/fs/cgroup', 'no cgroup hierarchy'],
    },
    {
      what: 'cgroup2 elsewhere only',
      all: [v2('/run/ambit-cgroup2')],
      says: ['nothing is mounted at /sys/fs/cgroup', 'cgroup2 only at /run/ambit-cgroup2'],
    },
  ])('$what: refused, naming what was found and what is needed', ({ all, says }) => {
    const err = thrown(() => requireUnifiedCgroup(all));
    expect(err.code).toBe(ErrorCode.PRECONDITION);
    expect(err.message).toContain('needs the unified cgroup v2 hierarchy at /sys/fs/cgroup');
    for (const s of says) expect(err.message).toContain(s);
  });
});

const UID = '5f3c2a1e-8b7d-4c6e-9a0b-1c2d3e4f5a6b';
const UID_ = UID.replaceAll('-', '_');
const KIND_ROOT = '/kubelet.slice/kubelet-kubepods.slice';
const AGENT_PATH = `${KIND_ROOT}/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod${UID_}.slice/cri-containerd-${'b'.repeat(64)}.scope`;
const AGENT_PROC = `0::${AGENT_PATH}\n`;
/** A host tree with nothing in it: the agent's own /proc/self/cgroup must do. */
const NONE = (): string[] => [];

describe('resolveNodeCgroups', () => {
  test('cluster mode: the layout and attach point from the agent pod, on a unified host', () => {
    expect(
      resolveNodeCgroups({ podUid: UID }, { mounts: UNIFIED, procSelfCgroup: AGENT_PROC, subdirs: NONE }),
    ).toEqual({
      cgroupRoot: '/sys/fs/cgroup',
      podsCgroup: `/sys/fs/cgroup${KIND_ROOT}`,
      layout: { driver: 'systemd', podRoot: `/sys/fs/cgroup${KIND_ROOT}`, slicePrefix: 'kubelet-kubepods' },
      ownCgroup: `/sys/fs/cgroup${AGENT_PATH}`,
      discoveredFrom: 'own pod (/proc/self/cgroup)',
    });
  });

  test('cluster mode on a hybrid host fails at start, before anything is discovered', () => {
    const err = thrown(() =>
      resolveNodeCgroups({ podUid: UID }, { mounts: HYBRID, procSelfCgroup: AGENT_PROC, subdirs: NONE }),
    );
    expect(err.code).toBe(ErrorCode.PRECONDITION);
    expect(err.message).toContain('hybrid host');
  });

  test('--cgroup-root given (local mode) accepts a hybrid host', () => {
    const r = resolveNodeCgroups(
      {
        cgroupRoot: '/sys/fs/cgroup/unified',
        podsCgroup: '/sys/fs/cgroup/unified/ambit/c/nodes/node-0/kubepods.slice',
      },
      { mounts: HYBRID, procSelfCgroup: '0::/ambit/c/nodes/node-0/system\n', subdirs: NONE },
    );
    expect(r).toEqual({
      cgroupRoot: '/sys/fs/cgroup/unified',
      podsCgroup: '/sys/fs/cgroup/unified/ambit/c/nodes/node-0/kubepods.slice',
      layout: {
        driver: 'systemd',
        podRoot: '/sys/fs/cgroup/unified/ambit/c/nodes/node-0/kubepods.slice',
        slicePrefix: 'kubepods',
      },
      ownCgroup: '/sys/fs/cgroup/unified/ambit/c/nodes/node-0/system',
      discoveredFrom: 'pods-cgroup flag',
    });
  });

  test.each<{ what: string; settings: NodeCgroupSettings; ok: boolean }>([
    { what: 'the discovered root itself', settings: { podsCgroup: `/sys/fs/cgroup${KIND_ROOT}` }, ok: true },
    {
      what: 'a QoS slice below the root',
      settings: { podsCgroup: `/sys/fs/cgroup${KIND_ROOT}/kubelet-kubepods-besteffort.slice` },
      ok: true,
    },
    { what: 'the cgroup root', settings: { podsCgroup: '/sys/fs/cgroup' }, ok: false },
    {
      what: 'kubelet.slice, above the pod root',
      settings: { podsCgroup: '/sys/fs/cgroup/kubelet.slice' },
      ok: false,
    },
    {
      what: 'a sibling whose name starts like the root',
      settings: { podsCgroup: `/sys/fs/cgroup${KIND_ROOT}x` },
      ok: false,
    },
  ])('--pods-cgroup with the pod UID: $what is accepted: $ok', ({ settings, ok }) => {
    const run = () =>
      resolveNodeCgroups(
        { ...settings, podUid: UID },
        { mounts: UNIFIED, procSelfCgroup: AGENT_PROC, subdirs: NONE },
      );
    if (ok) expect(run().podsCgroup).toBe(settings.podsCgroup);
    else {
      const err = thrown(run);
      expect(err.code).toBe(ErrorCode.PRECONDITION);
      expect(err.message).toContain(`is not the kubelet's pod root /sys/fs/cgroup${KIND_ROOT} or below it`);
    }
  });

  test('the pod UID not in /proc/self/cgroup says which file and what it looked for', () => {
    const err = thrown(() =>
      resolveNodeCgroups(
        { podUid: UID },
        { mounts: UNIFIED, procSelfCgroup: '0::/system.slice/ambit-agent.service\n', subdirs: NONE },
      ),
    );
    expect(err.message).toContain('/proc/self/cgroup');
    expect(err.message).toContain('0::/system.slice/ambit-agent.service');
    expect(err.message).toContain(`-pod${UID_}.slice`);
  });

  test('a --pods-cgroup outside the cgroup mount is refused', () => {
    const err = thrown(() =>
      resolveNodeCgroups(
        { cgroupRoot: '/sys/fs/cgroup', podsCgroup: '/tmp/pods' },
        { mounts: UNIFIED, procSelfCgroup: '', subdirs: NONE },
      ),
    );
    expect(err.message).toContain('--pods-cgroup /tmp/pods is not below the cgroup v2 mount /sys/fs/cgroup');
  });
});

describe('cluster mode checks for cgroup v2 whatever --cgroup-root says', () => {
  test.each([
    { what: 'hybrid', all: HYBRID, says: 'a hybrid host' },
    { what: 'cgroup v1', all: LEGACY, says: 'a cgroup v1 host' },
  ])('$what: the DaemonSet (--cgroup-root=/sys/fs/cgroup and a pod UID) is refused', ({ all, says }) => {
    const err = thrown(() =>
      resolveNodeCgroups(
        { cgroupRoot: '/sys/fs/cgroup', podUid: UID },
        { mounts: all, procSelfCgroup: AGENT_PROC, subdirs: NONE },
      ),
    );
    expect(err.code).toBe(ErrorCode.PRECONDITION);
    expect(err.message).toContain('cluster mode (the node agent runs as a pod) needs the unified cgroup v2');
    expect(err.message).toContain(says);
  });

  test('a pod UID with another --cgroup-root still needs /sys/fs/cgroup unified', () => {
    const err = thrown(() =>
      resolveNodeCgroups(
        { cgroupRoot: '/sys/fs/cgroup/unified', podUid: UID },
        { mounts: HYBRID, procSelfCgroup: AGENT_PROC, subdirs: NONE },
      ),
    );
    expect(err.message).toContain('a hybrid host');
  });

  test('--cgroup-root=/sys/fs/cgroup without a pod UID on a hybrid host names the cgroup2 mount to use', () => {
    const err = thrown(() =>
      resolveNodeCgroups(
        { cgroupRoot: '/sys/fs/cgroup', podsCgroup: '/sys/fs/cgroup/kubepods.slice' },
        { mounts: HYBRID, procSelfCgroup: '0::/\n', subdirs: NONE },
      ),
    );
    expect(err.message).toContain('--cgroup-root /sys/fs/cgroup needs the unified cgroup v2 hierarchy');
    expect(err.message).toContain('pass --cgroup-root with a cgroup2 mount (/sys/fs/cgroup/unified)');
  });
});

describe('a private cgroup namespace: the pod cgroup found in the host tree (real directories)', () => {
  const host = mkdtempSync(join(tmpdir(), 'ambit-host-cgroup-'));
  afterAll(() => rmSync(host, { recursive: true, force: true }));
  // The hostPath /sys/fs/cgroup, as the test's folder.
  const subdirs = (dir: string): string[] => subdirectories(join(host, relative('/sys/fs/cgroup', dir)));
  const POD = `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice`;
  mkdirSync(join(host, 'system.slice', 'containerd.service'), { recursive: true });
  mkdirSync(join(host, POD, `cri-containerd-${'c'.repeat(64)}.scope`), { recursive: true });
  const facts = { mounts: UNIFIED, procSelfCgroup: '0::/\n', subdirs };

  test('discovered: the layout, the attach point and the agent pod kept out', () => {
    expect(resolveNodeCgroups({ cgroupRoot: '/sys/fs/cgroup', podUid: UID }, facts)).toEqual({
      cgroupRoot: '/sys/fs/cgroup',
      podsCgroup: '/sys/fs/cgroup/kubepods.slice',
      layout: { driver: 'systemd', podRoot: '/sys/fs/cgroup/kubepods.slice', slicePrefix: 'kubepods' },
      ownCgroup: `/sys/fs/cgroup/${POD}`,
      discoveredFrom: 'own pod (search)',
    });
  });

  test('--pods-cgroup as an override is checked against the discovered root', () => {
    const err = thrown(() =>
      resolveNodeCgroups({ podUid: UID, podsCgroup: '/sys/fs/cgroup/kubepods' }, facts),
    );
    expect(err.message).toBe(
      `--pods-cgroup /sys/fs/cgroup/kubepods is not the kubelet's pod root /sys/fs/cgroup/kubepods.slice or below it (the root above this agent's pod cgroup /sys/fs/cgroup/${POD}, pod ${UID}): redirection attached there would reach processes that are not pods. Drop --pods-cgroup to attach at the discovered root`,
    );
  });

  test("another pod's UID: not found, saying where it looked", () => {
    const other = '0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a';
    const err = thrown(() => resolveNodeCgroups({ podUid: other }, facts));
    expect(err.message).toContain(
      `cannot find the cgroup of this pod ${other}: /proc/self/cgroup reads "0::/"`,
    );
    expect(err.message).toContain('within 6 levels below /sys/fs/cgroup');
  });
});
