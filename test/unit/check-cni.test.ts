import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  type CiliumConfigFact,
  type CniFacts,
  ciliumBpfHostRouting,
  ciliumConfigFact,
  ciliumSocketLbInPods,
  evaluateCni,
  parseCgroupShow,
  parseConfigMapData,
  parseNetShow,
  primaryCni,
} from '../../src/ctl/check-cni.js';
import type { CheckResult } from '../../src/ctl/check-result.js';

/** Fixtures recorded from real tools (test/fixtures/check/README.md says which and how). */
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'check');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const conf = (file: string) => ({ file, text: fixture(file) });
const globals = (name: string): string[] =>
  fixture(name)
    .split('\n')
    .filter((l) => l !== '');
const configMap = (name: string): CiliumConfigFact => ({
  state: 'found',
  data: parseConfigMapData(fixture(name)),
});
const NOT_READ: CiliumConfigFact = {
  state: 'not-read',
  why: 'no --kubeconfig and kubectl has no current context',
};

describe('parsers of recorded tool output', () => {
  test('bpftool -j cgroup show: Cilium socket LB attached as multi', () => {
    expect(parseCgroupShow(fixture('cgroup-show-cilium-multi.stdout'))).toEqual([
      { id: 160, attachType: 'cgroup_inet4_connect', attachFlags: 'multi', name: 'cil_sock4_connect' },
      { id: 162, attachType: 'cgroup_inet6_connect', attachFlags: 'multi', name: 'cil_sock6_connect' },
      { id: 163, attachType: 'cgroup_udp4_sendmsg', attachFlags: 'multi', name: 'cil_sock4_sendmsg' },
      { id: 164, attachType: 'cgroup_udp4_recvmsg', attachFlags: 'multi', name: 'cil_sock4_recvmsg' },
      {
        id: 165,
        attachType: 'cgroup_inet4_getpeername',
        attachFlags: 'multi',
        name: 'cil_sock4_getpeername',
      },
    ]);
  });

  test('bpftool -j cgroup show prints nothing at all for a cgroup without programs', () => {
    expect(fixture('cgroup-show-empty.stdout').trim()).toBe('');
    expect(parseCgroupShow(fixture('cgroup-show-empty.stdout'))).toEqual([]);
  });

  test('bpftool -j net show: clsact filters (the filter suffix dropped) and tcx links', () => {
    expect(parseNetShow(fixture('net-show-cilium.stdout'))).toEqual([
      { device: 'eth0', kind: 'clsact/ingress', name: 'cil_from_netdev' },
      { device: 'eth0', kind: 'clsact/egress', name: 'cil_to_netdev' },
      { device: 'cilium_host', kind: 'clsact/ingress', name: 'cil_to_host' },
      { device: 'cilium_host', kind: 'clsact/egress', name: 'cil_from_host' },
    ]);
    expect(
      parseNetShow(fixture('net-show-cilium-tcx.stdout')).map((p) => `${p.kind} ${p.name}@${p.device}`),
    ).toEqual([
      'tcx/ingress cil_from_netdev@eth0',
      'tcx/egress cil_to_netdev@eth0',
      'tcx/ingress cil_to_host@cilium_host',
      'tcx/egress cil_from_host@cilium_host',
      'tcx/ingress cil_from_container@lxc8d3bd5ab1e7c',
    ]);
    expect(parseNetShow(fixture('net-show-none.stdout'))).toEqual([]);
  });

  test('kubectl get configmap -o json: the data; anything else is refused', () => {
    expect(parseConfigMapData(fixture('cilium-config-kpr.stdout'))).toMatchObject({
      'kube-proxy-replacement': 'true',
      'enable-bpf-masquerade': 'true',
      'enable-host-legacy-routing': 'false',
      'cni-exclusive': 'true',
    });
    expect(() => parseConfigMapData('{"kind":"Status","status":"Failure"}')).toThrow(/expected a ConfigMap/);
  });

  test('kubectl outcomes: the ConfigMap, NotFound (no Cilium config), other failures', () => {
    expect(ciliumConfigFact({ stdout: fixture('cilium-config-kpr.stdout') })).toMatchObject({
      state: 'found',
      data: { 'kube-proxy-replacement': 'true' },
    });
    const notFound = `\`kubectl -n kube-system get configmap cilium-config -o json\` failed: ${fixture('kubectl-get-cilium-config-notfound.txt').trim()}`;
    expect(ciliumConfigFact({ error: notFound })).toEqual({ state: 'absent' });
    const refused = '`kubectl get configmap` failed: The connection to the server 10.0.0.1:6443 was refused';
    expect(ciliumConfigFact({ error: refused })).toEqual({ state: 'error', message: refused });
    expect(ciliumConfigFact({ stdout: '{"kind":"Status"}' })).toMatchObject({
      state: 'error',
      message: expect.stringMatching(/^unexpected kubectl output: expected a ConfigMap/),
    });
  });

  test.each([
    {
      what: 'the first by name wins (05-cilium before 10-calico)',
      files: ['10-calico.conflist', '05-cilium.conflist'],
      primary: { file: '05-cilium.conflist', name: 'cilium', plugins: ['cilium-cni'], isList: true },
    },
    {
      what: 'Calico with its chained plugins',
      files: ['10-calico.conflist'],
      primary: {
        file: '10-calico.conflist',
        name: 'k8s-pod-network',
        plugins: ['calico', 'portmap', 'bandwidth'],
        isList: true,
      },
    },
    {
      what: 'a single-plugin .conf',
      files: ['10-flannel.conf'],
      primary: { file: '10-flannel.conf', name: 'cbr0', plugins: ['flannel'], isList: false },
    },
  ])('primary CNI: $what', ({ files, primary }) => {
    expect(primaryCni(files.map(conf))).toEqual(primary);
  });

  test('primary CNI: files that are not CNI configs, and configs that do not parse, are skipped', () => {
    expect(
      primaryCni([
        { file: '00-broken.conflist', text: '{"plugins": [' },
        { file: '01-readme.txt', text: 'hello' },
        { file: 'calico-kubeconfig', text: 'apiVersion: v1' },
        conf('10-kindnet.conflist'),
      ]),
    ).toMatchObject({ file: '10-kindnet.conflist', plugins: ['ptp', 'portmap'] });
    expect(primaryCni([])).toBeUndefined();
  });
});

describe('what cilium-config means', () => {
  test.each([
    { file: 'cilium-config-kpr.stdout', socketLbInPods: true, bpfHostRouting: true },
    { file: 'cilium-config-ambient-ready.stdout', socketLbInPods: false, bpfHostRouting: false },
    { file: 'cilium-config-kube-proxy.stdout', socketLbInPods: false, bpfHostRouting: false },
  ])('$file', ({ file, socketLbInPods, bpfHostRouting }) => {
    const data = parseConfigMapData(fixture(file));
    expect(ciliumSocketLbInPods(data)).toBe(socketLbInPods);
    expect(ciliumBpfHostRouting(data)).toBe(bpfHostRouting);
  });

  test.each<{ data: Record<string, string>; socketLbInPods: boolean; bpfHostRouting: boolean }>([
    {
      data: { 'kube-proxy-replacement': 'strict', 'enable-bpf-masquerade': 'true' },
      socketLbInPods: true,
      bpfHostRouting: true,
    },
    {
      data: { 'kube-proxy-replacement': 'true', 'enable-bpf-masquerade': 'false' },
      socketLbInPods: true,
      bpfHostRouting: false,
    },
    {
      data: { 'kube-proxy-replacement': 'false', 'bpf-lb-sock': 'true' },
      socketLbInPods: true,
      bpfHostRouting: false,
    },
    { data: { 'kube-proxy-replacement': 'partial' }, socketLbInPods: false, bpfHostRouting: false },
    {
      data: {
        'kube-proxy-replacement': 'true',
        'enable-bpf-masquerade': 'true',
        'enable-host-legacy-routing': 'true',
      },
      socketLbInPods: true,
      bpfHostRouting: false,
    },
    { data: {}, socketLbInPods: false, bpfHostRouting: false },
  ])('$data', ({ data, socketLbInPods, bpfHostRouting }) => {
    expect(ciliumSocketLbInPods(data)).toBe(socketLbInPods);
    expect(ciliumBpfHostRouting(data)).toBe(bpfHostRouting);
  });
});

/** A node with a plain routed CNI (kindnet) and no eBPF dataplane. */
const plain: CniFacts = {
  cgroupRoot: '/sys/fs/cgroup',
  rootPrograms: parseCgroupShow(fixture('cgroup-show-empty.stdout')),
  tcPrograms: parseNetShow(fixture('net-show-none.stdout')),
  tcGlobals: [],
  cniConfDir: '/etc/cni/net.d',
  cniConfigs: [conf('10-kindnet.conflist')],
  ciliumConfig: NOT_READ,
};

/** A kube-proxy-free Cilium node as the node shows it: socket LB at the root, tc programs, pinned maps. */
const ciliumNode: CniFacts = {
  ...plain,
  rootPrograms: parseCgroupShow(fixture('cgroup-show-cilium-multi.stdout')),
  tcPrograms: parseNetShow(fixture('net-show-cilium.stdout')),
  tcGlobals: globals('tc-globals-cilium.txt'),
  cniConfigs: [conf('05-cilium.conflist')],
};

const rows = (f: CniFacts): Record<string, Pick<CheckResult, 'status' | 'detail' | 'fix'>> =>
  Object.fromEntries(evaluateCni(f).map(({ name, ...r }) => [name, r]));

describe('evaluateCni (the CNI rows of ambit check --pre)', () => {
  test('a plain node: every row ok', () => {
    expect(evaluateCni(plain)).toEqual([
      {
        name: 'primary cni',
        status: 'ok',
        detail: '10-kindnet.conflist: ptp -> portmap (network "kindnet")',
      },
      {
        name: 'socket lb',
        status: 'ok',
        detail: 'no socket-level load balancer at the root cgroup /sys/fs/cgroup',
      },
      {
        name: 'host routing',
        status: 'ok',
        detail:
          "no eBPF host routing (no Cilium or Calico eBPF programs on the host's devices): pod traffic crosses the host's netfilter",
      },
    ]);
  });

  test('Cilium seen on the node only: socket LB explained; host routing unknown, so STRICT is not promised', () => {
    const r = rows(ciliumNode);
    expect(r['primary cni']).toMatchObject({
      status: 'ok',
      detail: '05-cilium.conflist: cilium-cni (network "cilium")',
    });
    expect(r['socket lb']?.status).toBe('warn');
    expect(r['socket lb']?.detail).toContain(
      'Cilium socket LB serves pods: cil_sock4_connect, cil_sock6_connect, cil_sock4_sendmsg at /sys/fs/cgroup',
    );
    expect(r['socket lb']?.detail).toContain(
      "Ambit's connect hooks on the pods cgroup run before these root hooks (the kernel runs a socket's own cgroup first)",
    );
    expect(r['socket lb']?.fix).toContain('socketLB.hostNamespaceOnly=true');
    expect(r['host routing']).toMatchObject({
      status: 'warn',
      fix: expect.stringContaining('bpf.hostLegacyRouting=true'),
    });
    expect(r['host routing']?.detail).toContain(
      'Cilium runs on this node (cil_from_netdev, cil_to_netdev on eth0; cil_to_host, cil_from_host on cilium_host; 20 cilium_* maps pinned in tc/globals)',
    );
    expect(r['host routing']?.detail).toContain('STRICT inbound cannot be promised on this node');
    expect(r).not.toHaveProperty(['cni chaining']);
  });

  test('Cilium replacing kube-proxy with BPF masquerading (cilium-config read): host routing bypasses netfilter', () => {
    const r = rows({ ...ciliumNode, ciliumConfig: configMap('cilium-config-kpr.stdout') });
    expect(r['host routing']).toEqual({
      status: 'warn',
      detail:
        'Cilium eBPF host routing (kube-proxy-replacement with BPF masquerading, enable-host-legacy-routing not "true"): packets to pods bypass the host\'s netfilter, where Ambit\'s inbound capture (nftables) runs: STRICT inbound cannot be promised on this node (plaintext to enrolled pods is not seen, so not refused)',
      fix: 'install Cilium with bpf.hostLegacyRouting=true (cilium-config: enable-host-legacy-routing: "true")',
    });
    expect(r['socket lb']).toMatchObject({
      status: 'warn',
      detail: expect.stringContaining('cilium-config does not set bpf-lb-sock-hostns-only: "true"'),
    });
    expect(r['cni chaining']).toMatchObject({
      status: 'warn',
      fix: expect.stringContaining('cni.exclusive=false'),
    });
  });

  test("Cilium set up as Istio's ambient guide asks: every row ok", () => {
    const results = evaluateCni({
      ...ciliumNode,
      ciliumConfig: configMap('cilium-config-ambient-ready.stdout'),
    });
    expect(results.map((r) => [r.name, r.status])).toEqual([
      ['primary cni', 'ok'],
      ['socket lb', 'ok'],
      ['host routing', 'ok'],
    ]);
    expect(results[1]?.detail).toBe(
      'Cilium socket LB (cil_sock4_connect, cil_sock6_connect, cil_sock4_sendmsg at /sys/fs/cgroup) serves the host namespace only (bpf-lb-sock-hostns-only: "true")',
    );
  });

  test('Cilium beside kube-proxy: no socket LB at the root, legacy host routing', () => {
    const r = rows({
      ...ciliumNode,
      rootPrograms: [],
      ciliumConfig: configMap('cilium-config-kube-proxy.stdout'),
    });
    expect(r['socket lb']).toMatchObject({
      status: 'ok',
      detail:
        'no socket-level load balancer at the root cgroup /sys/fs/cgroup (Cilium: kube-system/cilium-config)',
    });
    expect(r['host routing']?.status).toBe('ok');
  });

  test('cilium-config enables socket LB in pods though no program is attached yet: still a warning', () => {
    const r = rows({
      ...plain,
      cniConfigs: [conf('05-cilium.conflist')],
      ciliumConfig: configMap('cilium-config-kpr.stdout'),
    });
    expect(r['socket lb']).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/^Cilium socket LB serves pods \(cilium-config\)/),
    });
  });

  test('socket LB attached exclusively at the root: Ambit cannot attach below it', () => {
    const r = rows({
      ...ciliumNode,
      rootPrograms: parseCgroupShow(fixture('cgroup-show-cilium-exclusive.stdout')),
    });
    expect(r['socket lb']).toMatchObject({
      status: 'fail',
      detail:
        'cil_sock4_connect attached to /sys/fs/cgroup without "multi": the kernel refuses every program in the cgroups below, Ambit\'s connect hooks on the pods cgroup included',
    });
  });

  test('Calico eBPF dataplane: connect-time LB and tc forwarding', () => {
    const r = rows({
      ...plain,
      rootPrograms: parseCgroupShow(fixture('cgroup-show-calico.stdout')),
      tcPrograms: parseNetShow(fixture('net-show-calico.stdout')),
      tcGlobals: globals('tc-globals-calico.txt'),
      cniConfigs: [conf('10-calico.conflist')],
    });
    expect(r['socket lb']).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(
        /^Calico eBPF connect-time load balancing: calico_connect_v4 at \/sys\/fs\/cgroup/,
      ),
      fix: expect.stringContaining('bpfConnectTimeLoadBalancing: Disabled'),
    });
    expect(r['host routing']).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(
        /^Calico eBPF dataplane \(cali_tc_preamble on cali1234; 9 cali_\* maps pinned in tc\/globals\).*STRICT inbound cannot be promised/,
      ),
    });
  });

  test.each<{ what: string; facts: Partial<CniFacts>; row: string; expected: Partial<CheckResult> }>([
    {
      what: 'no CNI config folder (not a Kubernetes node yet)',
      facts: { cniConfigs: { error: 'ENOENT' } },
      row: 'primary cni',
      expected: {
        status: 'warn',
        detail: 'no /etc/cni/net.d (ENOENT): no CNI is installed on this node yet',
      },
    },
    {
      what: 'an empty CNI config folder',
      facts: { cniConfigs: [] },
      row: 'primary cni',
      expected: { status: 'warn', detail: 'no CNI network config in /etc/cni/net.d' },
    },
    {
      what: 'a single-plugin .conf: the agent converts it itself (as it does, cni-install)',
      facts: { cniConfigs: [conf('10-flannel.conf')] },
      row: 'primary cni',
      expected: {
        status: 'ok',
        detail: expect.stringContaining('the node agent converts it to a .conflist'),
      },
    },
    {
      what: 'bpftool cannot list the root cgroup',
      facts: { rootPrograms: { error: 'bpftool is not installed (run `make deps`)' } },
      row: 'socket lb',
      expected: { status: 'warn', detail: expect.stringContaining('bpftool is not installed') },
    },
    {
      what: 'bpftool cannot list tc programs',
      facts: { tcPrograms: { error: 'bpftool is not installed (run `make deps`)' } },
      row: 'host routing',
      expected: { status: 'warn', detail: expect.stringContaining('could not list the tc programs') },
    },
    {
      what: 'Cilium found by tcx programs alone',
      facts: { tcPrograms: parseNetShow(fixture('net-show-cilium-tcx.stdout')) },
      row: 'host routing',
      expected: { status: 'warn', detail: expect.stringContaining('cil_from_container on lxc8d3bd5ab1e7c') },
    },
    {
      what: 'the cluster has no cilium-config, yet Cilium maps are pinned: still unknown',
      facts: { tcGlobals: globals('tc-globals-cilium.txt'), ciliumConfig: { state: 'absent' } },
      row: 'host routing',
      expected: {
        status: 'warn',
        detail: expect.stringContaining('the cluster has no kube-system/cilium-config'),
      },
    },
  ])('$what', ({ facts, row, expected }) => {
    const results = evaluateCni({ ...plain, ...facts });
    expect(results.find((r) => r.name === row)).toMatchObject({ name: row, ...expected });
    expect(results.filter((r) => r.name !== row && r.status !== 'ok')).toEqual([]);
    for (const r of results) {
      if (r.status === 'ok') expect(r.fix).toBeUndefined();
      else expect(r.fix, `${r.name} is ${r.status} without a fix`).toMatch(/\S/);
    }
  });
});
