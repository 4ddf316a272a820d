import { describe, expect, test } from 'vitest';
import {
  containerProcess,
  expandVars,
  type PodFacts,
  serviceLinkEnv,
} from '../../src/local/container-env.js';
import { buildService, hostsFile, nftServiceRules } from '../../src/local/services.js';
import type { EndpointState, PodState, ServiceState } from '../../src/local/state.js';
import { parseManifestTexts } from '../../src/manifests/load-manifests.js';
import type { Container, ServiceObject } from '../../src/manifests/model.js';

function service(spec: string, meta = 'name: web\n  namespace: shop'): ServiceObject {
  const text = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\napiVersion: v1\nkind: Service\nmetadata:\n  ${meta}\nspec:\n${spec}`;
  const { manifests, issues } = parseManifestTexts([{ file: 'm.yaml', text }], { requireCommand: true });
  expect(issues).toEqual([]);
  const svc = manifests.services[0];
  if (svc === undefined) throw new Error('no Service parsed');
  return svc;
}

function pod(name: string, over: Partial<PodState> = {}): PodState {
  return {
    namespace: 'shop',
    name,
    uid: `uid-${name}`,
    node: 'node-0',
    netns: `ambit.pod.shop.${name}`,
    ip4: '10.244.0.2',
    ip6: 'fd00:10:244:0::2',
    cgroup: `nodes/node-0/pods/shop_${name}`,
    serviceAccount: 'default',
    labels: { app: 'web' },
    annotations: {},
    phase: 'Running',
    ready: true,
    containers: [],
    ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
    createdAt: '2024-01-01T00:00:00Z',
    ...over,
  };
}

describe('buildService', () => {
  const svc = service(
    '  selector: {app: web}\n  ports:\n    - {name: http, port: 80, targetPort: http}\n    - {name: admin, port: 9000, targetPort: 9901}\n',
  );

  test('selects Running pods of its namespace whose labels match, sorted by name, with each port resolved', () => {
    const state = buildService(
      svc,
      ['10.96.0.10'],
      [
        pod('web-b', { ip4: '10.244.1.3', ip6: 'fd00:10:244:1::3', node: 'node-1' }),
        pod('web-a', { ready: false }),
        pod('pending', { phase: 'Pending' }),
        pod('terminating', { phase: 'Terminating' }),
        pod('failed', { phase: 'Failed' }),
        pod('other-ns', { namespace: 'kube-system' }),
        pod('other-app', { labels: { app: 'api' } }),
        pod('no-labels', { labels: {} }),
      ],
    );
    expect(state).toEqual({
      namespace: 'shop',
      name: 'web',
      labels: {},
      annotations: {},
      vips: ['10.96.0.10'],
      ports: svc.ports,
      selector: { app: 'web' },
      endpoints: [
        {
          pod: 'web-a',
          node: 'node-0',
          ip4: '10.244.0.2',
          ip6: 'fd00:10:244:0::2',
          ready: false,
          ports: { http: 8080, admin: 9901 },
        },
        {
          pod: 'web-b',
          node: 'node-1',
          ip4: '10.244.1.3',
          ip6: 'fd00:10:244:1::3',
          ready: true,
          ports: { http: 8080, admin: 9901 },
        },
      ],
    });
  });

  test.each<{ what: string; ports: PodState['ports']; expected: Record<string, number> }>([
    {
      what: 'the named port of each pod',
      ports: [{ name: 'http', containerPort: 3000, protocol: 'TCP' }],
      expected: { http: 3000, admin: 9901 },
    },
    { what: 'a pod without the named port leaves that port out', ports: [], expected: { admin: 9901 } },
    {
      what: 'a named port of another protocol does not match',
      ports: [{ name: 'http', containerPort: 3000, protocol: 'UDP' }],
      expected: { admin: 9901 },
    },
  ])('named targetPort: $what', ({ ports, expected }) => {
    expect(buildService(svc, [], [pod('web-a', { ports })]).endpoints[0]?.ports).toEqual(expected);
  });

  test('an unnamed port is keyed by its number', () => {
    const single = service('  selector: {app: web}\n  ports:\n    - port: 80\n');
    expect(buildService(single, [], [pod('web-a')]).endpoints[0]?.ports).toEqual({ '80': 80 });
  });

  test('a Service without selector has no endpoints and no selector', () => {
    const manual = service('  ports:\n    - port: 80\n');
    const state = buildService(manual, ['10.96.0.11'], [pod('web-a')]);
    expect(state.endpoints).toEqual([]);
    expect(state).not.toHaveProperty('selector');
  });
});

function endpoint(podName: string, ip: number, ports: Record<string, number>, ready = true): EndpointState {
  return { pod: podName, node: 'node-0', ip4: `10.244.0.${ip}`, ip6: `fd00:10:244:0::${ip}`, ready, ports };
}

function svcState(name: string, over: Partial<ServiceState> = {}): ServiceState {
  return {
    namespace: 'shop',
    name,
    labels: {},
    annotations: {},
    vips: ['10.96.0.10'],
    ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }],
    endpoints: [],
    ...over,
  };
}

/** The rule lines of one chain of the ruleset. */
function chain(rules: string, name: string): string[] {
  const lines = rules.split('\n');
  const start = lines.indexOf(`  chain ${name} {`);
  const end = lines.indexOf('  }', start);
  return lines.slice(start + 1, end).filter((l) => !l.includes(' hook ') && !l.includes('jump '));
}

describe('nftServiceRules', () => {
  test('replaces the whole table atomically', () => {
    const rules = nftServiceRules([]);
    expect(rules.split('\n').slice(0, 3)).toEqual([
      'table inet ambit_services',
      'delete table inet ambit_services',
      'table inet ambit_services {',
    ]);
    expect(rules.endsWith('}\n')).toBe(true);
    expect(chain(rules, 'services')).toEqual([]);
    expect(chain(rules, 'postrouting')).toEqual([]);
    expect(chain(rules, 'no_endpoints')).toEqual([]);
  });

  test.each<{
    what: string;
    svc: ServiceState;
    services: string[];
    postrouting: string[];
    noEndpoints: string[];
  }>([
    {
      what: 'ready endpoints get a round-robin DNAT map and hairpin masquerade',
      svc: svcState('web', {
        endpoints: [endpoint('a', 2, { '80': 8080 }), endpoint('b', 3, { '80': 8080 })],
      }),
      services: [
        '    ip daddr 10.96.0.10 tcp dport 80 dnat ip to numgen inc mod 2 map { 0 : 10.244.0.2 . 8080, 1 : 10.244.0.3 . 8080 }',
      ],
      postrouting: [
        '    ip saddr 10.244.0.2 ip daddr 10.244.0.2 masquerade',
        '    ip saddr 10.244.0.3 ip daddr 10.244.0.3 masquerade',
      ],
      noEndpoints: [],
    },
    {
      what: 'endpoints that are not ready or lack the port are left out',
      svc: svcState('web', {
        endpoints: [
          endpoint('a', 2, { '80': 8080 }, false),
          endpoint('b', 3, {}),
          endpoint('c', 4, { '80': 8081 }),
        ],
      }),
      services: [
        '    ip daddr 10.96.0.10 tcp dport 80 dnat ip to numgen inc mod 1 map { 0 : 10.244.0.4 . 8081 }',
      ],
      postrouting: ['    ip saddr 10.244.0.4 ip daddr 10.244.0.4 masquerade'],
      noEndpoints: [],
    },
    {
      what: 'no ready endpoint: TCP is reset',
      svc: svcState('web', { endpoints: [endpoint('a', 2, { '80': 8080 }, false)] }),
      services: [],
      postrouting: [],
      noEndpoints: ['    ip daddr 10.96.0.10 tcp dport 80 reject with tcp reset'],
    },
    {
      what: 'no ready endpoint: UDP is rejected',
      svc: svcState('dns', { ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
      services: [],
      postrouting: [],
      noEndpoints: ['    ip daddr 10.96.0.10 udp dport 53 reject'],
    },
    {
      what: 'SCTP ports are not handled',
      svc: svcState('sig', {
        ports: [{ port: 3868, targetPort: 3868, protocol: 'SCTP' }],
        endpoints: [endpoint('a', 2, { '3868': 3868 })],
      }),
      services: [],
      postrouting: [],
      noEndpoints: [],
    },
    {
      what: 'both families, each with its own addresses',
      svc: svcState('web', {
        vips: ['10.96.0.10', 'fd00:10:96::a'],
        ports: [
          { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
          { name: 'dns', port: 53, targetPort: 53, protocol: 'UDP' },
        ],
        endpoints: [endpoint('a', 2, { http: 8080, dns: 53 })],
      }),
      services: [
        '    ip daddr 10.96.0.10 tcp dport 80 dnat ip to numgen inc mod 1 map { 0 : 10.244.0.2 . 8080 }',
        '    ip daddr 10.96.0.10 udp dport 53 dnat ip to numgen inc mod 1 map { 0 : 10.244.0.2 . 53 }',
        '    ip6 daddr fd00:10:96::a tcp dport 80 dnat ip6 to numgen inc mod 1 map { 0 : fd00:10:244:0::2 . 8080 }',
        '    ip6 daddr fd00:10:96::a udp dport 53 dnat ip6 to numgen inc mod 1 map { 0 : fd00:10:244:0::2 . 53 }',
      ],
      postrouting: [
        '    ip saddr 10.244.0.2 ip daddr 10.244.0.2 masquerade',
        '    ip6 saddr fd00:10:244:0::2 ip6 daddr fd00:10:244:0::2 masquerade',
      ],
      noEndpoints: [],
    },
    {
      what: 'a headless Service has no VIP and no rules',
      svc: svcState('db', { vips: [], endpoints: [endpoint('a', 2, { '80': 8080 })] }),
      services: [],
      postrouting: [],
      noEndpoints: [],
    },
  ])('$what', ({ svc, services, postrouting, noEndpoints }) => {
    const rules = nftServiceRules([svc]);
    expect(chain(rules, 'services')).toEqual(services);
    expect(chain(rules, 'postrouting')).toEqual(postrouting);
    expect(chain(rules, 'no_endpoints')).toEqual(noEndpoints);
  });

  test('a pod behind two Services is masqueraded once', () => {
    const ep = endpoint('a', 2, { '80': 8080 });
    const rules = nftServiceRules([
      svcState('web', { endpoints: [ep] }),
      svcState('web2', { vips: ['10.96.0.11'], endpoints: [ep] }),
    ]);
    expect(chain(rules, 'services')).toHaveLength(2);
    expect(chain(rules, 'postrouting')).toEqual(['    ip saddr 10.244.0.2 ip daddr 10.244.0.2 masquerade']);
  });
});

describe('hostsFile', () => {
  const client = { namespace: 'shop', name: 'client', ip4: '10.244.0.9', ip6: 'fd00:10:244:0::9' };

  test('lists the pod itself, then Services; short names only in the same namespace', () => {
    const text = hostsFile(client, [
      svcState('web', { vips: ['10.96.0.10', 'fd00:10:96::a'] }),
      svcState('dns', { namespace: 'kube-system', vips: ['10.96.0.2'] }),
    ]);
    expect(text.split('\n')).toEqual([
      '# Written by ambit local; Service names of the local cluster.',
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      '10.244.0.9\tclient',
      'fd00:10:244:0::9\tclient',
      '10.96.0.2\tdns.kube-system dns.kube-system.svc dns.kube-system.svc.cluster.local',
      '10.96.0.10\tweb web.shop web.shop.svc web.shop.svc.cluster.local',
      'fd00:10:96::a\tweb web.shop web.shop.svc web.shop.svc.cluster.local',
      '',
    ]);
  });

  test('a headless Service resolves to its ready endpoints', () => {
    const text = hostsFile(client, [
      svcState('db', {
        vips: [],
        endpoints: [endpoint('db-0', 5, {}), endpoint('db-1', 6, {}, false), endpoint('db-2', 7, {})],
      }),
    ]);
    const names = 'db db.shop db.shop.svc db.shop.svc.cluster.local';
    expect(text.split('\n').slice(5, -1)).toEqual([
      `10.244.0.5\t${names}`,
      `fd00:10:244:0::5\t${names}`,
      `10.244.0.7\t${names}`,
      `fd00:10:244:0::7\t${names}`,
    ]);
  });

  test('a headless Service without ready endpoints resolves to nothing', () => {
    const text = hostsFile(client, [
      svcState('db', { vips: [], endpoints: [endpoint('db-0', 5, {}, false)] }),
    ]);
    expect(text).not.toContain('db.shop');
  });
});

describe('expandVars', () => {
  const vars = { HOST: 'web.shop', PORT: '80', EMPTY: '', 'my.var-1': 'x' };
  test.each([
    ['$(HOST):$(PORT)', 'web.shop:80'],
    ['http://$(HOST)/', 'http://web.shop/'],
    ['$(UNKNOWN)', '$(UNKNOWN)'],
    ['a$(EMPTY)b', 'ab'],
    ['$$(HOST)', '$(HOST)'],
    ['$$$(HOST)', '$web.shop'],
    ['cost: $$5', 'cost: $5'],
    ['$HOST', '$HOST'],
    ['$(HOST', '$(HOST'],
    ['$(my.var-1)', 'x'],
    ['$(1X)', '$(1X)'],
    ['no vars', 'no vars'],
  ])('%s -> %s', (text, expected) => {
    expect(expandVars(text, vars)).toBe(expected);
  });
});

describe('serviceLinkEnv', () => {
  test('Services of the namespace with a VIP and ports become variables', () => {
    const env = serviceLinkEnv('shop', [
      svcState('my-backend', {
        vips: ['10.96.0.20', 'fd00:10:96::14'],
        ports: [
          { name: 'http-alt', port: 8080, targetPort: 8080, protocol: 'TCP' },
          { name: 'grpc', port: 9090, targetPort: 9090, protocol: 'TCP' },
        ],
      }),
      svcState('plain', { vips: ['10.96.0.21'] }),
      svcState('elsewhere', { namespace: 'kube-system' }),
      svcState('headless', { vips: [] }),
      svcState('portless', { ports: [] }),
    ]);
    expect(env).toEqual({
      MY_BACKEND_SERVICE_HOST: '10.96.0.20',
      MY_BACKEND_SERVICE_PORT: '8080',
      MY_BACKEND_SERVICE_PORT_HTTP_ALT: '8080',
      MY_BACKEND_SERVICE_PORT_GRPC: '9090',
      PLAIN_SERVICE_HOST: '10.96.0.21',
      PLAIN_SERVICE_PORT: '80',
    });
  });
});

describe('containerProcess', () => {
  const facts: PodFacts = {
    name: 'web-abc',
    namespace: 'shop',
    uid: '1234-5678',
    node: 'node-1',
    serviceAccount: 'web-sa',
    ip4: '10.244.1.5',
    hostIp: '172.18.0.2',
  };
  const services = [
    svcState('backend', { vips: ['10.96.0.30'], ports: [{ port: 80, targetPort: 80, protocol: 'TCP' }] }),
  ];
  const container = (over: Partial<Container>): Container => ({
    name: 'c',
    command: [],
    args: [],
    env: [],
    ports: [],
    ...over,
  });

  test('env: PATH, HOME, HOSTNAME, service links, then the container variables in order', () => {
    const { env } = containerProcess(
      container({
        env: [
          { name: 'B', value: 'second' },
          { name: 'A', value: 'first' },
        ],
      }),
      facts,
      services,
      '/usr/bin:/bin',
    );
    expect(Object.entries(env)).toEqual([
      ['PATH', '/usr/bin:/bin'],
      ['HOME', '/root'],
      ['HOSTNAME', 'web-abc'],
      ['BACKEND_SERVICE_HOST', '10.96.0.30'],
      ['BACKEND_SERVICE_PORT', '80'],
      ['B', 'second'],
      ['A', 'first'],
    ]);
  });

  test('a variable sees earlier ones and service links, not later ones', () => {
    const { env } = containerProcess(
      container({
        env: [
          { name: 'URL', value: 'http://$(BACKEND_SERVICE_HOST):$(PORT)/$(POD)' },
          { name: 'POD', fieldRef: 'metadata.name' },
          { name: 'SELF', value: '$(POD).$(NS)' },
          { name: 'NS', fieldRef: 'metadata.namespace' },
          { name: 'RAW', value: '$$(POD)' },
        ],
      }),
      facts,
      services,
      '/bin',
    );
    expect(env.URL).toBe('http://10.96.0.30:$(PORT)/$(POD)');
    expect(env.SELF).toBe('web-abc.$(NS)');
    expect(env.RAW).toBe('$(POD)');
  });

  test('a container variable may override a built-in one', () => {
    const { env } = containerProcess(
      container({ env: [{ name: 'HOME', value: '/home/app' }] }),
      facts,
      [],
      '/bin',
    );
    expect(env.HOME).toBe('/home/app');
  });

  test.each([
    ['metadata.name', 'web-abc'],
    ['metadata.namespace', 'shop'],
    ['metadata.uid', '1234-5678'],
    ['spec.nodeName', 'node-1'],
    ['spec.serviceAccountName', 'web-sa'],
    ['status.podIP', '10.244.1.5'],
    ['status.hostIP', '172.18.0.2'],
  ])('fieldRef %s -> %s', (fieldRef, value) => {
    const { env } = containerProcess(container({ env: [{ name: 'V', fieldRef }] }), facts, [], '/bin');
    expect(env.V).toBe(value);
  });

  test('argv is command then args, expanded with the final environment', () => {
    const { argv } = containerProcess(
      container({
        command: ['sh', '-c'],
        args: ['echo $(MSG) from $(HOSTNAME) to $(BACKEND_SERVICE_HOST) costs $$(MSG) $(NOPE)'],
        env: [{ name: 'MSG', value: 'hi' }],
      }),
      facts,
      services,
      '/bin',
    );
    expect(argv).toEqual(['sh', '-c', 'echo hi from web-abc to 10.96.0.30 costs $(MSG) $(NOPE)']);
  });
});
