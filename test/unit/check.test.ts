import { describe, expect, test } from 'vitest';
import { type CheckResult, evaluate, fsTypeAt, type MachineFacts } from '../../src/ctl/check.js';

const ALL_CAPS = (1n << 12n) | (1n << 21n) | (1n << 38n) | (1n << 39n);

const good: MachineFacts = {
  kernel: '6.1.0-18-amd64',
  btf: true,
  capEff: 0x1ffffffffffn,
  cgroup2: ['/sys/fs/cgroup'],
  bpffs: ['/sys/fs/bpf'],
  libbpf: '1.1.2',
  bpfObject: true,
  bpfLoad: undefined,
  tools: { ip: true, nft: true, bpftool: true },
};

describe('evaluate', () => {
  test('a good machine: every check ok, in a fixed order, without fixes', () => {
    expect(evaluate(good)).toEqual([
      { name: 'kernel', status: 'ok', detail: 'Linux 6.1.0-18-amd64' },
      { name: 'btf', status: 'ok', detail: '/sys/kernel/btf/vmlinux' },
      { name: 'capabilities', status: 'ok', detail: 'CAP_NET_ADMIN CAP_SYS_ADMIN CAP_PERFMON CAP_BPF' },
      { name: 'cgroup v2', status: 'ok', detail: '/sys/fs/cgroup' },
      { name: 'bpffs', status: 'ok', detail: '/sys/fs/bpf' },
      { name: 'libbpf', status: 'ok', detail: 'libbpf 1.1.2' },
      { name: 'bpf programs', status: 'ok', detail: 'bpf/redirect.bpf.o loads and passes the verifier' },
      { name: 'tools', status: 'ok', detail: 'ip nft bpftool' },
    ]);
  });

  test.each<{ what: string; facts: Partial<MachineFacts>; check: string; expected: Partial<CheckResult> }>([
    {
      what: 'kernel 4.19 is too old',
      facts: { kernel: '4.19.0-26-amd64' },
      check: 'kernel',
      expected: { status: 'fail', detail: 'Linux 4.19.0-26-amd64 is older than 5.10' },
    },
    {
      what: 'kernel 5.4 is too old',
      facts: { kernel: '5.4.0-150-generic' },
      check: 'kernel',
      expected: { status: 'fail', detail: 'Linux 5.4.0-150-generic is older than 5.10' },
    },
    {
      what: 'kernel 5.9 is too old',
      facts: { kernel: '5.9.16' },
      check: 'kernel',
      expected: { status: 'fail', detail: 'Linux 5.9.16 is older than 5.10' },
    },
    {
      what: 'kernel 5.10 is enough',
      facts: { kernel: '5.10.0-28-amd64' },
      check: 'kernel',
      expected: { status: 'ok', detail: 'Linux 5.10.0-28-amd64' },
    },
    {
      what: 'kernel 5.15 (minor above 10)',
      facts: { kernel: '5.15.0-91-generic' },
      check: 'kernel',
      expected: { status: 'ok' },
    },
    { what: 'kernel 6.0', facts: { kernel: '6.0' }, check: 'kernel', expected: { status: 'ok' } },
    {
      what: 'missing BTF',
      facts: { btf: false },
      check: 'btf',
      expected: { status: 'fail', detail: 'no /sys/kernel/btf/vmlinux' },
    },
    {
      what: 'missing CAP_BPF',
      facts: { capEff: ALL_CAPS & ~(1n << 39n) },
      check: 'capabilities',
      expected: { status: 'fail', detail: 'missing CAP_BPF' },
    },
    {
      what: 'exactly the needed capabilities',
      facts: { capEff: ALL_CAPS },
      check: 'capabilities',
      expected: { status: 'ok' },
    },
    {
      what: 'no capabilities at all',
      facts: { capEff: 0n },
      check: 'capabilities',
      expected: { status: 'fail', detail: 'missing CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF' },
    },
    {
      what: 'hybrid host: cgroup v2 at /sys/fs/cgroup/unified',
      facts: { cgroup2: ['/sys/fs/cgroup/unified'] },
      check: 'cgroup v2',
      expected: {
        status: 'ok',
        detail: '/sys/fs/cgroup/unified (hybrid host: v1 controllers at /sys/fs/cgroup)',
      },
    },
    {
      what: '/sys/fs/cgroup is preferred among several cgroup v2 mounts',
      facts: { cgroup2: ['/run/other', '/sys/fs/cgroup'] },
      check: 'cgroup v2',
      expected: { status: 'ok', detail: '/sys/fs/cgroup' },
    },
    {
      what: 'no cgroup v2 is a warning (Ambit mounts one)',
      facts: { cgroup2: [] },
      check: 'cgroup v2',
      expected: { status: 'warn', detail: 'no cgroup v2 hierarchy is mounted' },
    },
    {
      what: 'no cgroup v2 mounted but one configured',
      facts: { cgroup2: [], cgroup2Configured: '/sys/fs/cgroup' },
      check: 'cgroup v2',
      expected: { status: 'ok', detail: '/sys/fs/cgroup' },
    },
    {
      what: 'bpffs not mounted is a warning',
      facts: { bpffs: [] },
      check: 'bpffs',
      expected: { status: 'warn', detail: 'not mounted at /sys/fs/bpf' },
    },
    {
      what: 'bpffs mounted elsewhere only is a warning',
      facts: { bpffs: ['/run/bpf'] },
      check: 'bpffs',
      expected: { status: 'warn', detail: 'not mounted at /sys/fs/bpf' },
    },
    {
      what: 'libbpf 0.8 is too old',
      facts: { libbpf: '0.8.1' },
      check: 'libbpf',
      expected: { status: 'fail', detail: 'libbpf 0.8.1 is older than 1.0' },
    },
    {
      what: 'libbpf 1.0 is enough',
      facts: { libbpf: '1.0.0' },
      check: 'libbpf',
      expected: { status: 'ok', detail: 'libbpf 1.0.0' },
    },
    {
      what: 'libbpf missing',
      facts: { libbpf: undefined },
      check: 'libbpf',
      expected: { status: 'fail', detail: 'libbpf.so.1 not found' },
    },
    {
      what: 'eBPF object not built',
      facts: { bpfObject: false },
      check: 'bpf programs',
      expected: { status: 'fail', detail: 'bpf/redirect.bpf.o is not built', fix: 'make build' },
    },
    {
      what: 'the verifier refuses the object',
      facts: { bpfLoad: 'bpf_object__load: Permission denied' },
      check: 'bpf programs',
      expected: {
        status: 'fail',
        detail: 'the kernel refused bpf/redirect.bpf.o: bpf_object__load: Permission denied',
      },
    },
    {
      what: 'a missing tool',
      facts: { tools: { ip: true, nft: false, bpftool: false } },
      check: 'tools',
      expected: { status: 'fail', detail: 'missing nft, bpftool', fix: 'make deps' },
    },
  ])('$what', ({ facts, check, expected }) => {
    const results = evaluate({ ...good, ...facts });
    expect(results.find((r) => r.name === check)).toMatchObject({ name: check, ...expected });
    expect(results.filter((r) => r.name !== check && r.status !== 'ok')).toEqual([]);
    for (const r of results) {
      if (r.status === 'ok') expect(r.fix).toBeUndefined();
      else expect(r.fix, `${r.name} is ${r.status} without a fix`).toMatch(/\S/);
    }
  });

  test('a machine with everything wrong: every check fails or warns, each with a fix', () => {
    const results = evaluate({
      kernel: '4.14.0',
      btf: false,
      capEff: 0n,
      cgroup2: [],
      bpffs: [],
      libbpf: '0.5.0',
      bpfObject: false,
      bpfLoad: undefined,
      tools: { ip: false },
    });
    expect(results.map((r) => [r.name, r.status])).toEqual([
      ['kernel', 'fail'],
      ['btf', 'fail'],
      ['capabilities', 'fail'],
      ['cgroup v2', 'warn'],
      ['bpffs', 'warn'],
      ['libbpf', 'fail'],
      ['bpf programs', 'fail'],
      ['tools', 'fail'],
    ]);
    for (const r of results) expect(r.fix, r.name).toMatch(/\S/);
  });
});

describe('evaluate for cluster mode (ambit check --pre)', () => {
  const unified: MachineFacts = { ...good, sysFsCgroup: 'cgroup2' };
  test('a unified node: the same rows, every one ok', () => {
    const results = evaluate(unified, 'cluster');
    expect(results.map((r) => [r.name, r.status])).toEqual(evaluate(good).map((r) => [r.name, 'ok']));
    expect(results.find((r) => r.name === 'cgroup v2')?.detail).toBe('/sys/fs/cgroup (unified hierarchy)');
  });

  test.each<{ what: string; facts: Partial<MachineFacts>; check: string; expected: Partial<CheckResult> }>([
    {
      what: 'a hybrid host (this kind of machine) fails, says why, and that local mode runs',
      facts: { sysFsCgroup: 'tmpfs', cgroup2: ['/sys/fs/cgroup/unified'] },
      check: 'cgroup v2',
      expected: {
        status: 'fail',
        detail:
          "hybrid host: cgroup v2 only at /sys/fs/cgroup/unified, v1 controllers at /sys/fs/cgroup; cluster mode needs the unified hierarchy at /sys/fs/cgroup: the kubelet puts pods in cgroup v2 only there, and Ambit attaches below the kubelet's pod root (local mode runs here: ambit check)",
        fix: expect.stringContaining('systemd.unified_cgroup_hierarchy=1'),
      },
    },
    {
      what: 'a cgroup v1 host fails',
      facts: { sysFsCgroup: 'tmpfs', cgroup2: [] },
      check: 'cgroup v2',
      expected: {
        status: 'fail',
        detail: expect.stringMatching(/^cgroup v1 host: no cgroup v2 at \/sys\/fs\/cgroup;/),
      },
    },
    {
      what: 'a configured cgroup v2 root does not make a hybrid host a cluster node',
      facts: { sysFsCgroup: 'tmpfs', cgroup2: ['/sys/fs/cgroup/unified'], cgroup2Configured: '/run/x' },
      check: 'cgroup v2',
      expected: { status: 'fail' },
    },
    {
      what: 'bpffs not at /sys/fs/bpf fails (the pins would go with the container)',
      facts: { bpffs: ['/run/bpf'] },
      check: 'bpffs',
      expected: {
        status: 'fail',
        detail: expect.stringMatching(/^not mounted at \/sys\/fs\/bpf: the agent's pins/),
      },
    },
  ])('$what', ({ facts, check, expected }) => {
    const results = evaluate({ ...unified, ...facts }, 'cluster');
    expect(results.find((r) => r.name === check)).toMatchObject({ name: check, ...expected });
    expect(results.filter((r) => r.name !== check && r.status !== 'ok')).toEqual([]);
  });

  test('local mode keeps passing on the hybrid host that fails cluster mode', () => {
    const hybrid: MachineFacts = { ...good, sysFsCgroup: 'tmpfs', cgroup2: ['/sys/fs/cgroup/unified'] };
    expect(evaluate(hybrid, 'local').every((r) => r.status === 'ok')).toBe(true);
    expect(
      evaluate(hybrid, 'cluster')
        .filter((r) => r.status !== 'ok')
        .map((r) => r.name),
    ).toEqual(['cgroup v2']);
  });
});

describe('fsTypeAt', () => {
  const hybrid = [
    '25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw',
    '33 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755',
    '34 33 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate',
    '35 33 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd',
  ].join('\n');
  test.each([
    { what: 'hybrid: tmpfs at /sys/fs/cgroup', mountinfo: hybrid, path: '/sys/fs/cgroup', type: 'tmpfs' },
    { what: 'hybrid: the v2 mount', mountinfo: hybrid, path: '/sys/fs/cgroup/unified', type: 'cgroup2' },
    {
      what: 'unified',
      mountinfo: '33 25 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw',
      path: '/sys/fs/cgroup',
      type: 'cgroup2',
    },
    {
      what: 'the last mount over a path is the one in effect',
      mountinfo: `${hybrid}\n40 25 0:40 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw`,
      path: '/sys/fs/cgroup',
      type: 'cgroup2',
    },
    { what: 'nothing mounted there', mountinfo: hybrid, path: '/sys/fs/bpf', type: undefined },
  ])('$what', ({ mountinfo, path, type }) => {
    expect(fsTypeAt(mountinfo, path)).toBe(type);
  });
});
