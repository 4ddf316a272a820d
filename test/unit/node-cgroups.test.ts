import { describe, expect, test } from 'vitest';
import { AmbitError, ErrorCode } from '../../src/errors.js';
import { type NodeCgroupSettings, resolveNodeCgroups } from '../../src/node-agent/node-cgroups.js';
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

describe('resolveNodeCgroups', () => {
  test('cluster mode: the layout and attach point from the agent pod, on a unified host', () => {
    expect(resolveNodeCgroups({ podUid: UID }, { mounts: UNIFIED, procSelfCgroup: AGENT_PROC })).toEqual({
      cgroupRoot: '/sys/fs/cgroup',
      podsCgroup: `/sys/fs/cgroup${KIND_ROOT}`,
      layout: { driver: 'systemd', podRoot: `/sys/fs/cgroup${KIND_ROOT}`, slicePrefix: 'kubelet-kubepods' },
      ownCgroup: `/sys/fs/cgroup${AGENT_PATH}`,
      discoveredFrom: 'own pod',
    });
  });

  test('cluster mode on a hybrid host fails at start, before anything is discovered', () => {
    const err = thrown(() =>
      resolveNodeCgroups({ podUid: UID }, { mounts: HYBRID, procSelfCgroup: AGENT_PROC }),
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
      { mounts: HYBRID, procSelfCgroup: '0::/ambit/c/nodes/node-0/system\n' },
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
      resolveNodeCgroups({ ...settings, podUid: UID }, { mounts: UNIFIED, procSelfCgroup: AGENT_PROC });
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
        { mounts: UNIFIED, procSelfCgroup: '0::/system.slice/ambit-agent.service\n' },
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
        { mounts: UNIFIED, procSelfCgroup: '' },
      ),
    );
    expect(err.message).toContain('--pods-cgroup /tmp/pods is not below the cgroup v2 mount /sys/fs/cgroup');
  });
});
