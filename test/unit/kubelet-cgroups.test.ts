import { describe, expect, test } from 'vitest';
import type { QosClass } from '../../src/config/kube-types.js';
import { AmbitError, ErrorCode } from '../../src/errors.js';
import {
  type CgroupDriver,
  type ContainerRuntime,
  containerCgroupName,
  findPodCgroup,
  layoutFromOwnPod,
  layoutFromPodCgroup,
  layoutFromPodRoot,
  podCgroupPath,
  probePodCgroup,
} from '../../src/os/kubelet-cgroups.js';

const UID = '5f3c2a1e-8b7d-4c6e-9a0b-1c2d3e4f5a6b';
const UID_ = UID.replaceAll('-', '_');
const CID = 'a'.repeat(64);
const MOUNT = '/sys/fs/cgroup';

/**
 * The kubelet's naming, written out independently of the code under test: a cgroup name is a list of
 * parts; cgroupfs makes each a directory, systemd makes each a slice named by every part so far joined
 * with "-" (a "-" inside a part escaped as "_").
 */
function kubeletPath(driver: CgroupDriver, cgroupRoot: readonly string[], qos: QosClass): string[] {
  const name = [...cgroupRoot, 'kubepods', ...(qos === 'Guaranteed' ? [] : [qos.toLowerCase()]), `pod${UID}`];
  if (driver === 'cgroupfs') return name;
  return name.map(
    (_, i) =>
      `${name
        .slice(0, i + 1)
        .map((p) => p.replaceAll('-', '_'))
        .join('-')}.slice`,
  );
}

function containerPart(driver: CgroupDriver, runtime: ContainerRuntime): string {
  if (runtime === 'containerd') return driver === 'systemd' ? `cri-containerd-${CID}.scope` : CID;
  return driver === 'systemd' ? `crio-${CID}.scope` : `crio-${CID}`;
}

const NESTINGS = [
  { nesting: 'plain', root: [] as string[] },
  { nesting: 'kind (cgroupRoot /kubelet)', root: ['kubelet'] },
];

const CASES = (['systemd', 'cgroupfs'] as const).flatMap((driver) =>
  (['containerd', 'cri-o'] as const).flatMap((runtime) =>
    (['Guaranteed', 'Burstable', 'BestEffort'] as const).flatMap((qos) =>
      NESTINGS.flatMap(({ nesting, root }) =>
        [UID, UID_].map((uid) => {
          const pod = kubeletPath(driver, root, qos);
          const podRootParts = pod.slice(0, qos === 'Guaranteed' ? -1 : -2);
          return {
            what: `${driver} ${runtime} ${qos} ${nesting} uid ${uid === UID ? 'dashes' : 'underscores'}`,
            driver,
            runtime,
            qos,
            uid,
            procPath: `/${[...pod, containerPart(driver, runtime)].join('/')}`,
            podCgroup: `${MOUNT}/${pod.join('/')}`,
            podRoot: `${MOUNT}/${podRootParts.join('/')}`,
          };
        }),
      ),
    ),
  ),
);

describe('kubelet cgroup layout: drivers x runtimes x QoS x nesting x UID spellings', () => {
  test('the table has every combination', () => {
    expect(CASES.length).toBe(48);
  });

  test.each(CASES)('$what', ({ driver, runtime, qos, uid, procPath, podCgroup, podRoot }) => {
    const facts = layoutFromPodCgroup(procPath, uid, MOUNT);
    expect(facts.layout.driver).toBe(driver);
    expect(facts.layout.podRoot).toBe(podRoot);
    expect(facts.qosClass).toBe(qos);
    expect(facts.podCgroup).toBe(podCgroup);
    expect(facts.container).toEqual({ runtime, id: CID });
    // Every pod of the node, in every QoS class, follows from the layout: the agent's own and others.
    expect(podCgroupPath(facts.layout, { uid, qosClass: qos })).toBe(podCgroup);
    expect(`${podCgroup}/${containerCgroupName(driver, runtime, CID)}`).toBe(`${MOUNT}${procPath}`);
    // Before the API says the QoS class, the one directory that exists is found.
    expect(probePodCgroup(facts.layout, uid, (p) => p === podCgroup)).toMatchObject({
      path: podCgroup,
      qosClass: qos,
    });
  });
});

describe('kubelet cgroup layout: literal paths', () => {
  test.each([
    {
      what: 'kind, BestEffort, containerd',
      path: `/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UID_}.slice/cri-containerd-${CID}.scope`,
      podRoot: '/sys/fs/cgroup/kubelet.slice/kubelet-kubepods.slice',
      slicePrefix: 'kubelet-kubepods',
      qos: 'BestEffort',
    },
    {
      what: 'systemd, Guaranteed directly under kubepods.slice',
      path: `/kubepods.slice/kubepods-pod${UID_}.slice/crio-${CID}.scope`,
      podRoot: '/sys/fs/cgroup/kubepods.slice',
      slicePrefix: 'kubepods',
      qos: 'Guaranteed',
    },
    {
      what: 'cgroupfs, Burstable',
      path: `/kubepods/burstable/pod${UID}/${CID}`,
      podRoot: '/sys/fs/cgroup/kubepods',
      qos: 'Burstable',
    },
    {
      what: 'cgroupfs, Guaranteed under kubepods',
      path: `/kubepods/pod${UID}`,
      podRoot: '/sys/fs/cgroup/kubepods',
      qos: 'Guaranteed',
    },
    {
      what: 'local mode: the kubelet systemd layout below a node cgroup',
      path: `/ambit/c1/nodes/node-0/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${CID}.scope`,
      podRoot: '/sys/fs/cgroup/ambit/c1/nodes/node-0/kubepods.slice',
      slicePrefix: 'kubepods',
      qos: 'Burstable',
    },
  ])('$what', ({ path, podRoot, slicePrefix, qos }) => {
    const facts = layoutFromPodCgroup(path, UID, MOUNT);
    expect(facts.layout).toEqual({
      driver: slicePrefix === undefined ? 'cgroupfs' : 'systemd',
      podRoot,
      ...(slicePrefix === undefined ? {} : { slicePrefix }),
    });
    expect(facts.qosClass).toBe(qos);
  });

  test('a pod root given by its path: a .slice is the systemd driver, anything else cgroupfs', () => {
    expect(layoutFromPodRoot('/cg/kubelet.slice/kubelet-kubepods.slice')).toEqual({
      driver: 'systemd',
      podRoot: '/cg/kubelet.slice/kubelet-kubepods.slice',
      slicePrefix: 'kubelet-kubepods',
    });
    expect(layoutFromPodRoot('/cg/kubepods')).toEqual({ driver: 'cgroupfs', podRoot: '/cg/kubepods' });
  });

  test('probing names every candidate when no pod directory exists', () => {
    const r = probePodCgroup({ driver: 'cgroupfs', podRoot: '/cg/kubepods' }, UID, () => false);
    expect(r.path).toBeUndefined();
    expect(r.tried).toEqual([
      `/cg/kubepods/pod${UID}`,
      `/cg/kubepods/burstable/pod${UID}`,
      `/cg/kubepods/besteffort/pod${UID}`,
    ]);
  });
});

function thrown(fn: () => unknown): AmbitError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AmbitError);
    return err as AmbitError;
  }
  throw new Error('expected an error');
}

describe('kubelet cgroup layout: errors', () => {
  test.each([
    {
      what: 'a /proc/self/cgroup without the UID says which file and what was searched',
      proc: '0::/system.slice/containerd.service\n',
      message: [
        '/proc/self/cgroup',
        '"0::/system.slice/containerd.service"',
        `pod${UID}`,
        `-pod${UID_}.slice`,
      ],
    },
    {
      what: 'a private cgroup namespace ("0::/") is named as the likely cause',
      proc: '0::/\n',
      message: [
        '/proc/self/cgroup',
        '"0::/"',
        'private cgroup namespace',
        'within 6 levels below /sys/fs/cgroup',
        "the host's cgroup v2 mount",
      ],
    },
    {
      what: 'a file with only cgroup v1 lines',
      proc: '12:pids:/kubepods/pod1\n1:name=systemd:/\n',
      message: ['/proc/self/cgroup', 'no cgroup v2 line'],
    },
    {
      what: 'a pod slice outside its QoS slice',
      proc: `0::/kubepods.slice/kubepods-burstable-pod${UID_}.slice\n`,
      message: ['not inside kubepods-burstable.slice'],
    },
    {
      what: 'a cgroupfs pod with no pod root above it',
      proc: `0::/pod${UID}\n`,
      message: ['no kubelet pod root above it'],
    },
  ])('$what', ({ proc, message }) => {
    const err = thrown(() => layoutFromOwnPod(proc, UID, MOUNT, () => []));
    expect(err.code).toBe(ErrorCode.PRECONDITION);
    for (const m of message) expect(err.message).toContain(m);
  });

  test('a UID that is not a UUID is refused', () => {
    expect(() =>
      podCgroupPath({ driver: 'cgroupfs', podRoot: '/k' }, { uid: 'web', qosClass: 'Guaranteed' }),
    ).toThrow(/pod UID "web" is not a UUID/);
  });
});

/** A cgroup tree from its leaf paths (relative to MOUNT), as `subdirs` lists it; records what was listed. */
function tree(paths: readonly string[]): { subdirs: (dir: string) => string[]; listed: string[] } {
  const children = new Map<string, Set<string>>();
  for (const p of paths) {
    const parts = p.split('/').filter((x) => x !== '');
    for (let i = 0; i < parts.length; i++) {
      const dir = [MOUNT, ...parts.slice(0, i)].join('/');
      children.set(dir, (children.get(dir) ?? new Set()).add(parts[i] as string));
    }
  }
  const listed: string[] = [];
  return {
    listed,
    subdirs: (dir) => {
      listed.push(dir);
      return [...(children.get(dir) ?? [])];
    },
  };
}

const OTHER = '0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a';
const OTHER_ = OTHER.replaceAll('-', '_');

describe('the agent in a private cgroup namespace ("0::/"): its pod cgroup found by UID in the host tree', () => {
  test.each<{
    what: string;
    host: string[];
    pod: string;
    podRoot: string;
    driver: CgroupDriver;
    qos: QosClass;
  }>([
    {
      what: 'systemd driver, containerd, Burstable',
      host: [
        'system.slice/containerd.service',
        `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${OTHER_}.slice/cri-containerd-${CID}.scope`,
        `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${CID}.scope`,
      ],
      pod: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice`,
      podRoot: '/kubepods.slice',
      driver: 'systemd',
      qos: 'Burstable',
    },
    {
      what: 'cgroupfs driver, CRI-O, Guaranteed',
      host: ['init.scope', `kubepods/pod${OTHER}/crio-${CID}`, `kubepods/pod${UID}/crio-${CID}`],
      pod: `/kubepods/pod${UID}`,
      podRoot: '/kubepods',
      driver: 'cgroupfs',
      qos: 'Guaranteed',
    },
    {
      what: "kind's nested kubelet.slice, BestEffort",
      host: [
        'kubelet.slice/kubelet.service',
        `kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UID_}.slice/cri-containerd-${CID}.scope`,
      ],
      pod: `/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UID_}.slice`,
      podRoot: '/kubelet.slice/kubelet-kubepods.slice',
      driver: 'systemd',
      qos: 'BestEffort',
    },
  ])('$what', ({ host, pod, podRoot, driver, qos }) => {
    const t = tree(host);
    // Either UID spelling finds it.
    for (const uid of [UID, UID_]) {
      const own = layoutFromOwnPod('0::/\n', uid, MOUNT, t.subdirs);
      expect(own).toMatchObject({
        foundBy: 'search',
        qosClass: qos,
        podCgroup: `${MOUNT}${pod}`,
        ownCgroup: `${MOUNT}${pod}`,
        layout: { driver, podRoot: `${MOUNT}${podRoot}` },
      });
    }
    // Other pods' cgroups are never entered.
    expect(t.listed.filter((d) => d.includes(OTHER) || d.includes(OTHER_))).toEqual([]);
  });

  test('the host path in /proc/self/cgroup is used as it is: no search', () => {
    const t = tree([]);
    const path = `/kubepods.slice/kubepods-pod${UID_}.slice/cri-containerd-${CID}.scope`;
    expect(layoutFromOwnPod(`0::${path}\n`, UID, MOUNT, t.subdirs)).toMatchObject({
      foundBy: 'proc-self-cgroup',
      ownCgroup: `${MOUNT}${path}`,
      layout: { driver: 'systemd', podRoot: `${MOUNT}/kubepods.slice` },
    });
    expect(t.listed).toEqual([]);
  });

  test('the search is bounded: a pod 7 levels down is not found', () => {
    const deep = `a/b/c/d/e/f/pod${UID}`;
    expect(findPodCgroup(MOUNT, UID, tree([deep]).subdirs)).toBeUndefined();
    expect(findPodCgroup(MOUNT, UID, tree([deep.replace('a/', '')]).subdirs)).toBe(
      `/${deep.replace('a/', '')}`,
    );
  });
});
