import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { type PodRedirectConfig, workloadId } from '../../src/bpf/redirect-maps.js';
import type { Enrollment } from '../../src/node-agent/redirection/enrollment.js';
import { type EnrollmentTarget, syncEnrollment } from '../../src/node-agent/redirection/enrollment-sync.js';
import { createRootLogger } from '../../src/telemetry/logger.js';

const log = createRootLogger({ name: 't', level: 'fatal' });

/** The kernel map, in memory. */
class FakeTarget implements EnrollmentTarget {
  readonly map = new Map<bigint, PodRedirectConfig>();
  readonly calls: string[] = [];
  enrolled(): Map<bigint, PodRedirectConfig> {
    return new Map(this.map);
  }
  enroll(id: bigint, config: PodRedirectConfig): void {
    this.calls.push(`enroll ${id}`);
    this.map.set(id, config);
  }
  unenroll(id: bigint): void {
    this.calls.push(`unenroll ${id}`);
    this.map.delete(id);
  }
}

type Exclusions = Omit<PodRedirectConfig, 'workloadId'>;
const NONE: Exclusions = { excludedPorts: [], excludedCidrs: [] };
const DB: Exclusions = { excludedPorts: [5432], excludedCidrs: ['10.0.0.0/8'] };
/** An id that no directory of the test has: a pod whose cgroup is gone. */
const GONE = 0x7fff_ffff_ffff_fff0n;

/** The config of pod `name` (uid `uid-<name>`), as desiredEnrollments makes it. */
function config(name: string, exclusions: Exclusions = NONE): PodRedirectConfig {
  return { workloadId: workloadId(`uid-${name}`), ...exclusions };
}

function enrollment(name: string, exclusions: Exclusions = NONE): Enrollment {
  return {
    pod: `shop/${name}`,
    uid: `uid-${name}`,
    cgroup: `pods/${name}`,
    ips: [`10.0.0.${name.length}`],
    config: config(name, exclusions),
    warnings: [],
  };
}

let base: string;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'ambit-sync-'));
  mkdirSync(join(base, 'pods'));
});
afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

/**
 * Runs a sync with cgroup paths written relative to the test's folder (the agent's layout resolves
 * absolute ones).
 */
function sync(
  target: EnrollmentTarget,
  input: { desired: readonly Enrollment[]; knownPods: readonly string[] },
) {
  return syncEnrollment(
    target,
    {
      desired: input.desired.map((e) => ({ ...e, cgroup: join(base, e.cgroup) })),
      knownPods: input.knownPods.map((p) => join(base, p)),
      podsCgroup: join(base, 'pods'),
    },
    log,
  );
}

/** Creates the cgroup directories (relative to the base) and returns their ids by path. */
function cgroups(paths: readonly string[]): Map<string, bigint> {
  const ids = new Map<string, bigint>();
  for (const p of paths) {
    mkdirSync(join(base, p), { recursive: true });
    ids.set(p, statSync(join(base, p), { bigint: true }).ino);
  }
  return ids;
}

describe('syncEnrollment', () => {
  test.each<{
    what: string;
    /** Cgroup directories that exist. */
    dirs: string[];
    /** What the kernel map holds before the sync: cgroup path (or 'gone') -> config. */
    before: [string, PodRedirectConfig][];
    desired: Enrollment[];
    knownPods: string[];
    /** What the kernel map holds after. */
    after: [string, PodRedirectConfig][];
    enrolled: string[];
    updated: string[];
    unenrolled: number;
  }>([
    {
      what: 'a new pod is enrolled with its config',
      dirs: ['pods/a'],
      before: [],
      desired: [enrollment('a', DB)],
      knownPods: ['pods/a'],
      after: [['pods/a', config('a', DB)]],
      enrolled: ['shop/a'],
      updated: [],
      unenrolled: 0,
    },
    {
      what: 'an enrolled pod with the same config is left alone',
      dirs: ['pods/a'],
      before: [['pods/a', config('a', DB)]],
      desired: [enrollment('a', DB)],
      knownPods: ['pods/a'],
      after: [['pods/a', config('a', DB)]],
      enrolled: [],
      updated: [],
      unenrolled: 0,
    },
    {
      what: 'a changed config is updated in place',
      dirs: ['pods/a'],
      before: [['pods/a', config('a')]],
      desired: [enrollment('a', DB)],
      knownPods: ['pods/a'],
      after: [['pods/a', config('a', DB)]],
      enrolled: [],
      updated: ['shop/a'],
      unenrolled: 0,
    },
    {
      what: 'a changed workload id is a changed config: updated in place',
      dirs: ['pods/a'],
      before: [['pods/a', { ...config('a', DB), workloadId: workloadId('uid-earlier') }]],
      desired: [enrollment('a', DB)],
      knownPods: ['pods/a'],
      after: [['pods/a', config('a', DB)]],
      enrolled: [],
      updated: ['shop/a'],
      unenrolled: 0,
    },
    {
      what: 'a known pod that is no longer desired is removed',
      dirs: ['pods/a', 'pods/b'],
      before: [
        ['pods/a', config('a')],
        ['pods/b', config('b')],
      ],
      desired: [enrollment('a')],
      knownPods: ['pods/a', 'pods/b'],
      after: [['pods/a', config('a')]],
      enrolled: [],
      updated: [],
      unenrolled: 1,
    },
    {
      what: 'an id whose cgroup is gone is removed',
      dirs: ['pods/a'],
      before: [
        ['pods/a', config('a')],
        ['gone', config('gone', DB)],
      ],
      desired: [enrollment('a')],
      knownPods: ['pods/a'],
      after: [['pods/a', config('a')]],
      enrolled: [],
      updated: [],
      unenrolled: 1,
    },
    {
      what: 'a pod the cluster view does not know yet stays enrolled (CNI enrolled it)',
      dirs: ['pods/a', 'pods/new'],
      before: [['pods/new', config('new', DB)]],
      desired: [enrollment('a')],
      knownPods: ['pods/a'],
      after: [
        ['pods/new', config('new', DB)],
        ['pods/a', config('a')],
      ],
      enrolled: ['shop/a'],
      updated: [],
      unenrolled: 0,
    },
    {
      what: 'an unknown nested container cgroup below the attach point stays enrolled',
      dirs: ['pods/new/c1'],
      before: [['pods/new/c1', config('new')]],
      desired: [],
      knownPods: [],
      after: [['pods/new/c1', config('new')]],
      enrolled: [],
      updated: [],
      unenrolled: 0,
    },
    {
      what: 'an unknown cgroup outside the attach point is removed',
      dirs: ['system/agent'],
      before: [['system/agent', config('agent')]],
      desired: [],
      knownPods: [],
      after: [],
      enrolled: [],
      updated: [],
      unenrolled: 1,
    },
    {
      what: 'a desired pod whose cgroup does not exist yet is skipped',
      dirs: ['pods/a'],
      before: [],
      desired: [enrollment('missing', DB), enrollment('a')],
      knownPods: ['pods/a', 'pods/missing'],
      after: [['pods/a', config('a')]],
      enrolled: ['shop/a'],
      updated: [],
      unenrolled: 0,
    },
    {
      what: 'everything at once',
      dirs: ['pods/keep', 'pods/add', 'pods/change', 'pods/drop', 'pods/cni'],
      before: [
        ['pods/keep', config('keep')],
        ['pods/change', config('change')],
        ['pods/drop', config('drop')],
        ['pods/cni', config('cni')],
        ['gone', config('gone')],
      ],
      desired: [enrollment('keep'), enrollment('add'), enrollment('change', DB), enrollment('late')],
      knownPods: ['pods/keep', 'pods/add', 'pods/change', 'pods/drop', 'pods/late'],
      after: [
        ['pods/keep', config('keep')],
        ['pods/change', config('change', DB)],
        ['pods/cni', config('cni')],
        ['pods/add', config('add')],
      ],
      enrolled: ['shop/add'],
      updated: ['shop/change'],
      unenrolled: 2,
    },
  ])('$what', ({ dirs, before, desired, knownPods, after, enrolled, updated, unenrolled }) => {
    const ids = cgroups(dirs);
    const idOf = (p: string): bigint => (p === 'gone' ? GONE : ids.get(p)!);
    const target = new FakeTarget();
    for (const [p, c] of before) target.map.set(idOf(p), c);

    const result = sync(target, { desired, knownPods });

    expect([...target.map]).toEqual(after.map(([p, c]) => [idOf(p), c]));
    expect(result.enrolled).toEqual(enrolled);
    expect(result.updated).toEqual(updated);
    expect(result.unenrolled).toBe(unenrolled);
    const named = desired.filter((e) => ids.has(e.cgroup));
    expect(result.names).toEqual(new Map(named.map((e) => [ids.get(e.cgroup)!, e.pod])));
  });

  test('a second sync with nothing changed touches nothing', () => {
    const ids = cgroups(['pods/a', 'pods/b']);
    const target = new FakeTarget();
    const input = { desired: [enrollment('a', DB), enrollment('b')], knownPods: ['pods/a', 'pods/b'] };
    sync(target, input);
    expect(target.calls).toEqual([`enroll ${ids.get('pods/a')}`, `enroll ${ids.get('pods/b')}`]);
    const again = sync(target, input);
    expect(target.calls).toHaveLength(2);
    expect(again).toMatchObject({ enrolled: [], updated: [], unenrolled: 0 });
  });

  test('a pod whose cgroup is removed after enrollment is unenrolled on the next sync', () => {
    const ids = cgroups(['pods/a']);
    const target = new FakeTarget();
    const input = { desired: [enrollment('a')], knownPods: ['pods/a'] };
    sync(target, input);
    rmSync(join(base, 'pods/a'), { recursive: true });
    const result = sync(target, { desired: [], knownPods: [] });
    expect(result.unenrolled).toBe(1);
    expect(target.calls).toEqual([`enroll ${ids.get('pods/a')}`, `unenroll ${ids.get('pods/a')}`]);
    expect(target.map.size).toBe(0);
  });
});
