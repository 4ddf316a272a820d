import { describe, expect, test } from 'vitest';
import { AmbitError, ErrorCode } from '../../src/errors.js';
import { parseAgentConfig, proxyTargetsOf } from '../../src/node-agent/config.js';
import { parseNodeProxyConfig as parseProxyConfig } from '../../src/node-proxy/config.js';

/** The problems listed by the one usage error `fn` throws. */
function usageProblems(fn: () => unknown): string[] {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(AmbitError);
  expect((err as AmbitError).code).toBe(ErrorCode.USAGE);
  const [head, ...lines] = (err as AmbitError).message.split('\n');
  expect(head).toMatch(/^node (agent|proxy) configuration:$/);
  return lines.map((l) => l.replace(/^ {2}/, ''));
}

const agentFlags = [
  '--node',
  'node-0',
  '--cgroup-root',
  '/sys/fs/cgroup',
  '--pods-cgroup',
  '/sys/fs/cgroup/pods',
  '--bpf-dir',
  '/sys/fs/bpf/ambit',
  '--proxy-ip4',
  '10.244.0.1',
  '--proxy-ip6',
  'fd00:10:244::1',
  '--kubeconfig',
  '/etc/ambit/kubeconfig',
];

const agentEnv = {
  AMBIT_NODE_NAME: 'node-env',
  AMBIT_CGROUP2_ROOT: '/cg',
  AMBIT_PODS_CGROUP: '/cg/pods',
  AMBIT_BPF_DIR: '/bpf',
  AMBIT_PROXY_IP4: '10.0.0.1',
  AMBIT_PROXY_IP6: 'fd00::1',
  KUBERNETES_SERVICE_HOST: '10.96.0.1',
  KUBERNETES_SERVICE_PORT: '443',
};

describe("proxyTargetsOf: where pods' connections are redirected", () => {
  test.each<[string, string[], string | undefined, string | undefined, { ip4?: string; ip6?: string }]>([
    ['an IPv4-only node: no IPv6 target', ['10.0.0.7'], undefined, undefined, { ip4: '10.0.0.7' }],
    ['a dual-stack node', ['10.0.0.7', 'fd00::7'], undefined, undefined, { ip4: '10.0.0.7', ip6: 'fd00::7' }],
    ['IPv6 listed first', ['fd00::7', '10.0.0.7'], undefined, undefined, { ip4: '10.0.0.7', ip6: 'fd00::7' }],
    [
      'given addresses win (local mode)',
      ['10.0.0.7', 'fd00::7'],
      '10.1.0.1',
      'fd01::1',
      { ip4: '10.1.0.1', ip6: 'fd01::1' },
    ],
    ["'' turns IPv6 off", ['10.0.0.7', 'fd00::7'], undefined, '', { ip4: '10.0.0.7' }],
    ['an IPv6-only node has no IPv4 target', ['fd00::7'], undefined, undefined, { ip6: 'fd00::7' }],
    ['nothing known', [], undefined, undefined, {}],
  ])('%s', (_what, hostIps, ip4, ip6, out) => {
    expect(proxyTargetsOf(hostIps, ip4, ip6)).toEqual({ ip4: out.ip4, ip6: out.ip6 });
  });

  test('--host-ips (HOST_IPS) without an IPv4 address, or with a bad one, is a usage error', () => {
    const base = ['--node', 'n', '--pods-cgroup', '/cg', '--bpf-dir', '/bpf'];
    expect(usageProblems(() => parseAgentConfig([...base, '--host-ips', 'fd00::7'], {}))).toEqual([
      '--host-ips fd00::7: the node has no IPv4 address (give --proxy-ip4)',
    ]);
    expect(usageProblems(() => parseAgentConfig(base, { HOST_IPS: '10.0.0.7,nope' }))).toEqual([
      '--host-ips nope: not an IP address',
    ]);
    expect(parseAgentConfig(base, { HOST_IPS: '10.0.0.7,fd00::7' })).toMatchObject({
      proxyIp4: '10.0.0.7',
      proxyIp6: 'fd00::7',
    });
  });
});

describe('parseAgentConfig', () => {
  test('flags with defaults for the rest; the result is frozen', () => {
    const cfg = parseAgentConfig(agentFlags, {});
    expect(cfg).toMatchObject({
      node: 'node-0',
      cgroupRoot: '/sys/fs/cgroup',
      podsCgroup: '/sys/fs/cgroup/pods',
      cgroupLayout: 'kubelet',
      bpfDir: '/sys/fs/bpf/ambit',
      proxyIp4: '10.244.0.1',
      proxyIp6: 'fd00:10:244::1',
      outboundPort: 15001,
      kube: { kubeconfig: '/etc/ambit/kubeconfig', inCluster: {} },
      logLevel: 'info',
      uninstall: false,
      inboundPort: 15006,
      readyFile: '/var/run/ambit/agent-ready.json',
    });
    expect(cfg.bpfObject).toMatch(/\/bpf\/redirect\.bpf\.o$/);
    // The CNI as the DaemonSet mounts it from the host, and the plugin next to the build output.
    expect(cfg).toMatchObject({
      cniSocket: '/var/run/ambit/cni.sock',
      cniBinDir: '/opt/cni/bin',
      cniConfDir: '/etc/cni/net.d',
    });
    expect(cfg.cniPlugin).toMatch(/\/build\/cni\/ambit-cni$/);
    expect(cfg).not.toHaveProperty('statusFile');
    expect(Object.isFrozen(cfg)).toBe(true);
  });

  test('environment fallbacks for every required setting and the optional ones', () => {
    const cfg = parseAgentConfig([], {
      ...agentEnv,
      AMBIT_CGROUP_LAYOUT: 'kubelet',
      POD_UID: '5f3c2a1e-8b7d-4c6e-9a0b-1c2d3e4f5a6b',
      AMBIT_BPF_OBJECT: '/opt/redirect.bpf.o',
      AMBIT_LOG_LEVEL: 'debug',
      AMBIT_CNI_SOCKET: '/run/ambit/cni.sock',
      AMBIT_READY_FILE: '/run/ambit/ready.json',
      AMBIT_CNI_BIN_DIR: '/host/opt/cni/bin',
      AMBIT_CNI_CONF_DIR: '/host/etc/cni/net.d',
      AMBIT_CNI_PLUGIN: '/opt/ambit/ambit-cni',
      AMBIT_CNI_EXCLUDE_NAMESPACES: 'kube-system,infra',
      AMBIT_RESYNC_INTERVAL: '1m',
    });
    expect(cfg).toEqual({
      node: 'node-env',
      cgroupRoot: '/cg',
      podsCgroup: '/cg/pods',
      podUid: '5f3c2a1e-8b7d-4c6e-9a0b-1c2d3e4f5a6b',
      cgroupLayout: 'kubelet',
      bpfDir: '/bpf',
      bpfObject: '/opt/redirect.bpf.o',
      proxyIp4: '10.0.0.1',
      proxyIp6: 'fd00::1',
      outboundPort: 15001,
      kube: { inCluster: { host: '10.96.0.1', port: '443' } },
      logLevel: 'debug',
      uninstall: false,
      inboundPort: 15006,
      cniSocket: '/run/ambit/cni.sock',
      readyFile: '/run/ambit/ready.json',
      cniBinDir: '/host/opt/cni/bin',
      cniConfDir: '/host/etc/cni/net.d',
      cniPlugin: '/opt/ambit/ambit-cni',
      cniExcludeNamespaces: ['kube-system', 'infra'],
      resyncSeconds: 60,
    });
  });

  test("the CNI's excluded namespaces default to kube-system and the agent's own namespace", () => {
    expect(parseAgentConfig(agentFlags, { POD_NAMESPACE: 'mesh-sys' }).cniExcludeNamespaces).toEqual([
      'kube-system',
      'mesh-sys',
    ]);
    expect(parseAgentConfig(agentFlags, {}).cniExcludeNamespaces).toEqual(['kube-system', 'ambit-system']);
    expect(
      parseAgentConfig([...agentFlags, '--cni-exclude-namespaces', 'a', '--cni-exclude-namespaces', 'b'], {})
        .cniExcludeNamespaces,
    ).toEqual(['a', 'b']);
  });

  test("--ready-file '' claims no readiness (no file is written)", () => {
    expect(parseAgentConfig([...agentFlags, '--ready-file', ''], {}).readyFile).toBeUndefined();
    expect(parseAgentConfig([...agentFlags, '--ready-file', '/r.json'], {}).readyFile).toBe('/r.json');
  });

  test('flags win over the environment', () => {
    const cfg = parseAgentConfig(
      [
        '--node',
        'node-flag',
        '--log-level',
        'warn',
        '--cni-socket',
        '/flag.sock',
        '--status-file',
        '/status.json',
        '--outbound-port',
        '16001',
      ],
      {
        ...agentEnv,
        AMBIT_LOG_LEVEL: 'debug',
        AMBIT_CNI_SOCKET: '/env.sock',
      },
    );
    expect(cfg).toMatchObject({
      node: 'node-flag',
      logLevel: 'warn',
      cniSocket: '/flag.sock',
      statusFile: '/status.json',
      outboundPort: 16001,
    });
  });

  test('--uninstall needs only the bpf dir', () => {
    expect(parseAgentConfig(['--uninstall', '--bpf-dir', '/bpf'], {})).toMatchObject({
      uninstall: true,
      bpfDir: '/bpf',
      node: '',
    });
    expect(usageProblems(() => parseAgentConfig(['--uninstall'], {}))).toEqual([
      '--bpf-dir (or AMBIT_BPF_DIR) is required',
    ]);
  });

  test('every missing setting is reported in one error', () => {
    expect(usageProblems(() => parseAgentConfig([], {}))).toEqual([
      '--bpf-dir (or AMBIT_BPF_DIR) is required',
      '--node (or AMBIT_NODE_NAME) is required',
      '--pods-cgroup or the pod UID (--pod-uid, env POD_UID from the downward API) is required',
      '--proxy-ip4 (or AMBIT_PROXY_IP4) or --host-ips (env HOST_IPS, downward API status.hostIPs) is required',
    ]);
  });

  test('cluster mode: no --cgroup-root and no --pods-cgroup, the pod UID from the downward API', () => {
    const { AMBIT_CGROUP2_ROOT: _r, AMBIT_PODS_CGROUP: _p, ...env } = agentEnv;
    const cfg = parseAgentConfig([], { ...env, POD_UID: '5f3c2a1e-8b7d-4c6e-9a0b-1c2d3e4f5a6b' });
    expect(cfg).not.toHaveProperty('cgroupRoot');
    expect(cfg).not.toHaveProperty('podsCgroup');
    expect(cfg.podUid).toBe('5f3c2a1e-8b7d-4c6e-9a0b-1c2d3e4f5a6b');
  });

  test.each([
    [['--cgroup-layout', 'local'], '--cgroup-layout local: use one of kubelet'],
    [['--pod-uid', 'web-0'], '--pod-uid web-0: is not a pod UID (a UUID)'],
  ])('%j is refused', (flags, problem) => {
    expect(usageProblems(() => parseAgentConfig([...agentFlags, ...flags], {}))).toEqual([problem]);
  });

  test('an empty environment variable counts as missing', () => {
    expect(usageProblems(() => parseAgentConfig([], { ...agentEnv, AMBIT_NODE_NAME: '' }))).toEqual([
      '--node (or AMBIT_NODE_NAME) is required',
    ]);
  });

  test('missing and invalid settings together in one error', () => {
    expect(
      usageProblems(() =>
        parseAgentConfig(
          [
            '--proxy-ip4',
            'fd00::1',
            '--proxy-ip6',
            '10.0.0.1',
            '--outbound-port',
            '70000',
            '--log-level',
            'loud',
          ],
          { AMBIT_BPF_DIR: '/bpf' },
        ),
      ),
    ).toEqual([
      '--node (or AMBIT_NODE_NAME) is required',
      '--pods-cgroup or the pod UID (--pod-uid, env POD_UID from the downward API) is required',
      '--proxy-ip4 fd00::1: not an IPv4 address',
      '--proxy-ip6 10.0.0.1: not an IPv6 address',
      '--outbound-port 70000: not a port number',
      '--log-level loud: use one of fatal, error, warn, info, debug, trace',
    ]);
  });

  test.each([
    ['0', false],
    ['1', true],
    ['65535', true],
    ['65536', false],
    ['-1', false],
    ['abc', false],
    ['80.5', false],
    ['', false],
  ])('--outbound-port %j valid: %s', (value, valid) => {
    const parse = () => parseAgentConfig([...agentFlags, `--outbound-port=${value}`], {});
    if (valid) expect(parse().outboundPort).toBe(Number(value));
    else
      expect(usageProblems(parse)).toEqual([
        `--outbound-port ${value === '' ? '""' : value}: not a port number`,
      ]);
  });

  test.each([
    ['--proxy-ip4', 'not-an-ip', '--proxy-ip4 not-an-ip: not an IPv4 address'],
    ['--proxy-ip4', '10.0.0.256', '--proxy-ip4 10.0.0.256: not an IPv4 address'],
    ['--proxy-ip6', 'fd00::g', '--proxy-ip6 fd00::g: not an IPv6 address'],
    ['--log-level', 'INFO', '--log-level INFO: use one of fatal, error, warn, info, debug, trace'],
  ])('%s %s is refused', (flag, value, problem) => {
    expect(usageProblems(() => parseAgentConfig([...agentFlags, flag, value], {}))).toEqual([problem]);
  });

  test('an invalid log level from the environment is reported', () => {
    expect(usageProblems(() => parseAgentConfig(agentFlags, { AMBIT_LOG_LEVEL: 'verbose' }))).toEqual([
      '--log-level verbose: use one of fatal, error, warn, info, debug, trace',
    ]);
  });
});

const proxyFlags = [
  '--node',
  'node-0',
  '--outbound-ip',
  '10.244.0.1',
  '--bpf-dir',
  '/sys/fs/bpf/ambit',
  '--control-plane',
  '172.18.0.1:15012',
  '--ca-bundle',
  '/run/ambit/ca/trust-bundle.pem',
  '--token-file',
  '/run/ambit/token',
];

const proxyEnv = { AMBIT_CONTROL_PLANE: 'cp:15012', AMBIT_CA_BUNDLE: '/b.pem', AMBIT_TOKEN_FILE: '/t' };

describe('parseProxyConfig', () => {
  test('flags with defaults for the rest; the result is frozen', () => {
    const cfg = parseProxyConfig(proxyFlags, {});
    expect(cfg).toEqual({
      node: 'node-0',
      trustDomain: 'cluster.local',
      outboundIps: ['10.244.0.1'],
      outboundPort: 15001,
      metricsPort: 15020,
      readinessPort: 15021,
      adminPort: 15000,
      bpfDir: '/sys/fs/bpf/ambit',
      controlPlane: '172.18.0.1:15012',
      caBundle: '/run/ambit/ca/trust-bundle.pem',
      tokenFile: '/run/ambit/token',
      hboneIps: ['::'],
      inboundPort: 15006,
      hbonePort: 15008,
      certTtlSeconds: 0,
      logLevel: 'info',
    });
    expect(Object.isFrozen(cfg)).toBe(true);
  });

  test('--agent-ready-file (or AMBIT_AGENT_READY_FILE) makes readiness wait for the node agent', () => {
    expect(parseProxyConfig([...proxyFlags, '--agent-ready-file', '/a.json'], {}).agentReadyFile).toBe(
      '/a.json',
    );
    expect(
      parseProxyConfig(proxyFlags, { AMBIT_AGENT_READY_FILE: '/var/run/ambit/agent-ready.json' })
        .agentReadyFile,
    ).toBe('/var/run/ambit/agent-ready.json');
  });

  test('environment fallbacks', () => {
    expect(
      parseProxyConfig([], {
        AMBIT_NODE_NAME: 'node-env',
        AMBIT_OUTBOUND_IPS: '10.244.0.1,fd00:10:244::1,',
        AMBIT_TRUST_DOMAIN: 'example.org',
        AMBIT_BPF_DIR: '/bpf',
        AMBIT_LOG_LEVEL: 'trace',
        AMBIT_CERT_TTL: '10m',
        ...proxyEnv,
      }),
    ).toMatchObject({
      node: 'node-env',
      outboundIps: ['10.244.0.1', 'fd00:10:244::1'],
      trustDomain: 'example.org',
      bpfDir: '/bpf',
      controlPlane: 'cp:15012',
      caBundle: '/b.pem',
      tokenFile: '/t',
      certTtlSeconds: 600,
      logLevel: 'trace',
    });
  });

  test('flags win over the environment; --outbound-ip and --hbone-ip repeat', () => {
    expect(
      parseProxyConfig(
        [
          ...proxyFlags,
          '--outbound-ip',
          'fd00:10:244::1',
          '--trust-domain',
          'flag.org',
          '--log-level',
          'error',
          '--outbound-port',
          '16001',
          '--metrics-port',
          '9090',
          '--readiness-port',
          '9091',
          '--admin-port',
          '9092',
          '--hbone-ip',
          '172.18.0.2',
          '--hbone-ip',
          'fd00:18::2',
          '--hbone-port',
          '16008',
          '--cert-ttl',
          '1h',
        ],
        {
          AMBIT_NODE_NAME: 'node-env',
          AMBIT_OUTBOUND_IPS: '10.9.9.9',
          AMBIT_TRUST_DOMAIN: 'env.org',
          AMBIT_LOG_LEVEL: 'debug',
          AMBIT_CERT_TTL: '10m',
        },
      ),
    ).toMatchObject({
      node: 'node-0',
      outboundIps: ['10.244.0.1', 'fd00:10:244::1'],
      trustDomain: 'flag.org',
      logLevel: 'error',
      outboundPort: 16001,
      metricsPort: 9090,
      readinessPort: 9091,
      adminPort: 9092,
      hboneIps: ['172.18.0.2', 'fd00:18::2'],
      hbonePort: 16008,
      certTtlSeconds: 3600,
    });
  });

  test('every missing setting is reported in one error', () => {
    expect(usageProblems(() => parseProxyConfig([], {}))).toEqual([
      '--outbound-ip (or AMBIT_OUTBOUND_IPS) is required',
      '--node (or AMBIT_NODE_NAME) is required',
      '--bpf-dir (or AMBIT_BPF_DIR) is required',
      '--control-plane (or AMBIT_CONTROL_PLANE) is required',
      '--ca-bundle (or AMBIT_CA_BUNDLE) is required',
      '--token-file (or AMBIT_TOKEN_FILE) is required',
    ]);
  });

  test('missing and invalid settings together in one error', () => {
    expect(
      usageProblems(() =>
        parseProxyConfig(
          [
            '--outbound-ip',
            'nope',
            '--outbound-ip',
            '10.0.0.1',
            '--log-level',
            'chatty',
            '--metrics-port',
            'x',
            '--admin-port',
            '65536',
            '--hbone-ip',
            'here',
            '--cert-ttl',
            'forever',
          ],
          { AMBIT_BPF_DIR: '/bpf', ...proxyEnv },
        ),
      ),
    ).toEqual([
      '--outbound-ip nope: not an IP address',
      '--hbone-ip here: not an IP address',
      '--node (or AMBIT_NODE_NAME) is required',
      '--metrics-port x: not a port number',
      '--admin-port 65536: not a port number',
      '--cert-ttl forever: not a duration (e.g. 30s, 10m, 24h)',
      '--log-level chatty: use one of fatal, error, warn, info, debug, trace',
    ]);
  });

  test.each([
    ['--outbound-port', '0', true],
    ['--outbound-port', '65535', true],
    ['--outbound-port', '-1', false],
    ['--metrics-port', '1.5', false],
    ['--readiness-port', 'ready', false],
    ['--admin-port', '99999', false],
    ['--hbone-port', '70000', false],
  ])('%s %s valid: %s', (flag, value, valid) => {
    const parse = () => parseProxyConfig([...proxyFlags, `${flag}=${value}`], {});
    if (valid) expect(() => parse()).not.toThrow();
    else expect(usageProblems(parse)).toEqual([`${flag} ${value}: not a port number`]);
  });

  test('an invalid address in AMBIT_OUTBOUND_IPS is named', () => {
    expect(
      usageProblems(() =>
        parseProxyConfig([], {
          AMBIT_NODE_NAME: 'n',
          AMBIT_BPF_DIR: '/bpf',
          AMBIT_OUTBOUND_IPS: '10.0.0.1,10.0.0.300',
          ...proxyEnv,
        }),
      ),
    ).toEqual(['--outbound-ip 10.0.0.300: not an IP address']);
  });
});

describe('flag syntax errors are usage errors', () => {
  test.each([
    [
      'agent, unknown flag',
      () => parseAgentConfig(['--bogus'], {}),
      /node agent configuration: Unknown option '--bogus'/,
    ],
    [
      'agent, flag without value',
      () => parseAgentConfig(['--node'], {}),
      /node agent configuration: .*--node/,
    ],
    [
      'proxy, unknown flag',
      () => parseProxyConfig(['--bogus'], {}),
      /node proxy configuration: Unknown option '--bogus'/,
    ],
    [
      'proxy, empty port',
      () => parseProxyConfig(['--admin-port='], {}),
      /--admin-port "": not a port number/,
    ],
  ])('%s', (_name, parse, message) => {
    let err: unknown;
    try {
      parse();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AmbitError);
    expect((err as AmbitError).code).toBe(ErrorCode.USAGE);
    expect((err as AmbitError).message).toMatch(message);
  });
});
