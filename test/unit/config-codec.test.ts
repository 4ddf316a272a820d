import { describe, expect, test } from 'vitest';
import {
  type ConfigUpdate,
  diffConfig,
  encodeUpdate,
  isEmptyDelta,
  type PushedConfig,
} from '../../src/api/config-codec.js';
import { applyUpdate } from '../../src/api/config-decode.js';
import { services } from '../../src/api/grpc.js';
import { type MeshRoute, routeKey } from '../../src/gateway-api/types.js';
import type { MeshService, MeshWaypoint, Workload } from '../../src/mesh/view.js';
import { type MeshPolicy, NEVER_MATCHING_RULE, policyKey } from '../../src/policy/types.js';

const w = (name: string, over: Partial<Workload> = {}): Workload => ({
  uid: `uid-${name}`,
  namespace: 'shop',
  name,
  serviceAccount: name,
  node: 'node-1',
  ips: ['10.244.1.2', 'fd00:10:244:1::2'],
  labels: { app: name },
  app: name,
  workloadName: name,
  captured: true,
  identity: `spiffe://cluster.local/ns/shop/sa/${name}`,
  ready: true,
  ...over,
});

const svc = (name: string, over: Partial<MeshService> = {}): MeshService => ({
  namespace: 'shop',
  name,
  hostname: `${name}.shop.svc.cluster.local`,
  vips: ['10.96.0.10'],
  ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP', appProtocol: 'http' }],
  labels: {},
  endpoints: [{ workloadUid: 'uid-web', ready: true, ports: { http: 8080 } }],
  ...over,
});

const deny: MeshPolicy = {
  kind: 'AuthorizationPolicy',
  namespace: 'shop',
  name: 'deny',
  selector: { app: 'web' },
  action: 'DENY',
  rules: [
    {
      from: [{ principals: ['cluster.local/ns/shop/sa/bad'], notIpBlocks: ['10.0.0.0/8'] }],
      to: [{ ports: [8080], notPorts: [9090] }],
      when: [{ key: 'source.namespace', values: ['shop'], notValues: ['x*'] }],
    },
    // An ALLOW rule with HTTP attributes becomes "matches nothing": an empty `from`, which must survive.
    NEVER_MATCHING_RULE,
    {},
  ],
};
const strict: MeshPolicy = {
  kind: 'PeerAuthentication',
  namespace: 'shop',
  name: 'strict',
  selector: { app: 'web' },
  mode: 'STRICT',
  portLevel: { '9000': 'PERMISSIVE' },
};

/** A route that uses every field the wire carries, so that a field dropped on the way shows. */
const canary: MeshRoute = {
  kind: 'HTTPRoute',
  route: {
    namespace: 'shop',
    name: 'canary',
    labels: { team: 'web' },
    parentRefs: [
      { group: '', kind: 'Service', name: 'web', port: 80 },
      { group: '', kind: 'Service', namespace: 'shop', name: 'web-admin', sectionName: 'admin' },
    ],
    hostnames: ['web.shop.svc.cluster.local'],
    rules: [
      {
        name: 'v2-for-a',
        matches: [
          {
            path: { type: 'PathPrefix', value: '/api' },
            headers: [{ name: 'x-user', match: { type: 'Exact', value: 'a' } }],
            queryParams: [{ name: 'Debug', match: { type: 'RegularExpression', value: '^(1|yes)$' } }],
            method: 'POST',
          },
        ],
        filters: [
          {
            type: 'RequestHeaderModifier',
            headers: {
              set: [{ name: 'x-a', value: '1' }],
              add: [{ name: 'x-b', value: '2' }],
              remove: ['x-c'],
            },
          },
          {
            type: 'URLRewrite',
            rewrite: { hostname: 'web-v2', path: { type: 'ReplacePrefixMatch', value: '/v2' } },
          },
          {
            type: 'RequestMirror',
            mirror: { backendRef: { group: '', kind: 'Service', name: 'shadow', port: 80 }, fraction: 0.25 },
          },
        ],
        backendRefs: [
          {
            group: '',
            kind: 'Service',
            name: 'web-v2',
            port: 80,
            weight: 90,
            filters: [
              {
                type: 'ResponseHeaderModifier',
                headers: { set: [], add: [{ name: 'x-v', value: '2' }], remove: [] },
              },
            ],
          },
          {
            group: '',
            kind: 'Service',
            name: 'web-v1',
            namespace: 'shop',
            port: 8080,
            weight: 0,
            filters: [],
          },
        ],
        timeouts: { requestMs: 5000, backendRequestMs: 1000 },
        retry: { codes: [500, 503], attempts: 3, backoffMs: 50 },
      },
      {
        matches: [{ path: { type: 'Exact', value: '/old' }, headers: [], queryParams: [] }],
        filters: [
          {
            type: 'RequestRedirect',
            redirect: {
              scheme: 'https',
              hostname: 'new.example',
              port: 8443,
              path: { type: 'ReplaceFullPath', value: '/new' },
              statusCode: 301,
            },
          },
        ],
        backendRefs: [],
      },
    ],
  },
};
const rpc: MeshRoute = {
  kind: 'GRPCRoute',
  route: {
    namespace: 'shop',
    name: 'rpc',
    labels: {},
    parentRefs: [{ group: '', kind: 'Service', name: 'echo' }],
    hostnames: [],
    rules: [
      {
        matches: [
          {
            method: { type: 'Exact', service: 'ambit.test.Echo', method: 'Unary' },
            headers: [{ name: 'x-user', match: { type: 'Exact', value: 'a' } }],
          },
          { method: { type: 'RegularExpression', service: 'ambit\\.test\\..*' }, headers: [] },
        ],
        filters: [
          {
            type: 'RequestHeaderModifier',
            headers: { set: [{ name: 'x-r', value: '1' }], add: [], remove: [] },
          },
        ],
        backendRefs: [{ group: '', kind: 'Service', name: 'echo-v2', port: 50051, weight: 1, filters: [] }],
      },
      { matches: [], filters: [], backendRefs: [] },
    ],
  },
};
const waypoint: MeshWaypoint = {
  namespace: 'shop',
  name: 'waypoint',
  for: 'service',
  identity: 'spiffe://cluster.local/ns/shop/sa/waypoint',
  service: 'shop/waypoint',
};

function config(
  over: Partial<{
    workloads: Workload[];
    services: MeshService[];
    policies: MeshPolicy[];
    bundle: string[];
    nodes: { name: string; ips: string[] }[];
    rejections: PushedConfig['rejections'];
    routes: MeshRoute[];
    waypoints: MeshWaypoint[];
  }> = {},
): PushedConfig {
  return {
    view: {
      revision: '1',
      trustDomain: 'cluster.local',
      nodes: over.nodes ?? [{ name: 'node-1', ips: ['172.18.0.2'] }],
      workloads: over.workloads ?? [w('web'), w('client')],
      services: over.services ?? [svc('web', { waypoint: { namespace: 'shop', name: 'waypoint' } })],
      waypoints: over.waypoints ?? [waypoint],
    },
    trustBundle: over.bundle ?? ['-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n'],
    rejections: over.rejections ?? [],
    policies: new Map((over.policies ?? [deny, strict]).map((p) => [policyKey(p), p])),
    routes: new Map((over.routes ?? [canary, rpc]).map((r) => [routeKey(r), r])),
  };
}

/** Through real protobuf bytes, as grpc-js sends the update. */
function wire(u: ConfigUpdate): ConfigUpdate {
  const method = services().config.service.StreamConfig!;
  return method.responseDeserialize(method.responseSerialize(u)) as ConfigUpdate;
}

/** What a proxy that had `prev` holds after the update from prev to next. */
function roundTrip(prev: PushedConfig | undefined, next: PushedConfig): PushedConfig {
  const had =
    prev === undefined
      ? undefined
      : applyUpdate(undefined, wire(encodeUpdate(diffConfig(undefined, prev), 1n))).config;
  const { config: got, problems } = applyUpdate(had, wire(encodeUpdate(diffConfig(prev, next), 2n)));
  expect(problems).toEqual([]);
  return got;
}

const content = (c: PushedConfig) => ({
  nodes: c.view.nodes,
  workloads: [...c.view.workloads].sort((a, b) => a.uid.localeCompare(b.uid)),
  services: c.view.services,
  bundle: c.trustBundle,
  rejections: c.rejections,
  policies: [...c.policies].sort(([a], [b]) => a.localeCompare(b)),
  waypoints: c.view.waypoints,
  routes: [...c.routes].sort(([a], [b]) => a.localeCompare(b)),
});

describe('diffConfig: what a version changes', () => {
  const base = config();
  test.each<{ what: string; next: PushedConfig; delta: Record<string, unknown> }>([
    { what: 'nothing', next: config(), delta: { empty: true } },
    {
      what: 'a workload turns not ready',
      next: config({ workloads: [w('web', { ready: false }), w('client')] }),
      delta: { workloads: ['web'] },
    },
    {
      what: 'a workload goes away',
      next: config({ workloads: [w('web')] }),
      delta: { removedWorkloads: ['uid-client'] },
    },
    {
      what: 'a service endpoint changes',
      next: config({ services: [svc('web', { endpoints: [] })] }),
      delta: { services: ['web'] },
    },
    { what: 'a service goes away', next: config({ services: [] }), delta: { removedServices: ['shop/web'] } },
    {
      what: 'a policy changes',
      next: config({ policies: [{ ...deny, action: 'ALLOW' }, strict] }),
      delta: { policies: ['AuthorizationPolicy/shop/deny'] },
    },
    {
      what: 'a policy goes away',
      next: config({ policies: [strict] }),
      delta: { removedPolicies: ['AuthorizationPolicy/shop/deny'] },
    },
    { what: 'the trust bundle rotates', next: config({ bundle: ['a', 'b'] }), delta: { trustBundle: 2 } },
    {
      what: 'a node address',
      next: config({ nodes: [{ name: 'node-1', ips: ['172.18.0.9'] }] }),
      delta: { nodes: 1 },
    },
    {
      what: 'a rejection appears',
      next: config({
        rejections: [
          {
            kind: 'AuthorizationPolicy',
            namespace: 'shop',
            name: 'x',
            file: 'x.yaml',
            line: 1,
            path: 'spec',
            message: 'bad',
          },
        ],
      }),
      delta: { rejections: 1 },
    },
    {
      what: 'a route changes',
      next: config({ routes: [{ ...canary, route: { ...canary.route, hostnames: [] } }, rpc] }),
      delta: { routes: ['HTTPRoute/shop/canary'] },
    },
    {
      what: 'a route goes away',
      next: config({ routes: [canary] }),
      delta: { removedRoutes: ['GRPCRoute/shop/rpc'] },
    },
    {
      what: 'a waypoint goes away, and with it the Service binding',
      next: config({ waypoints: [], services: [svc('web')] }),
      delta: { waypoints: 0, services: ['web'] },
    },
  ])('$what', ({ next, delta }) => {
    const d = diffConfig(base, next);
    const summary: Record<string, unknown> = {};
    if (isEmptyDelta(d)) summary.empty = true;
    if (d.workloads.length > 0) summary.workloads = d.workloads.map((x) => x.name);
    if (d.removedWorkloads.length > 0) summary.removedWorkloads = d.removedWorkloads;
    if (d.services.length > 0) summary.services = d.services.map((x) => x.name);
    if (d.removedServices.length > 0) summary.removedServices = d.removedServices;
    if (d.policies.length > 0) summary.policies = d.policies.map(policyKey);
    if (d.removedPolicies.length > 0) summary.removedPolicies = d.removedPolicies;
    if (d.trustBundle !== undefined) summary.trustBundle = d.trustBundle.length;
    if (d.nodes !== undefined) summary.nodes = d.nodes.length;
    if (d.rejections !== undefined) summary.rejections = d.rejections.length;
    if (d.routes.length > 0) summary.routes = d.routes.map(routeKey);
    if (d.removedRoutes.length > 0) summary.removedRoutes = d.removedRoutes;
    if (d.waypoints !== undefined) summary.waypoints = d.waypoints.length;
    expect(summary).toEqual(delta);
    // Whatever changed, a proxy that applies the update over protobuf holds exactly the new config.
    expect(content(roundTrip(base, next))).toEqual(content(next));
  });

  test('a new stream gets everything; over the wire every policy field survives, rule presence included', () => {
    const next = config();
    const got = roundTrip(undefined, next);
    expect(content(got)).toEqual(content(next));
    const rules = got.policies.get('AuthorizationPolicy/shop/deny');
    expect(rules?.kind === 'AuthorizationPolicy' && rules.rules[1]).toEqual({ from: [] });
    expect(rules?.kind === 'AuthorizationPolicy' && rules.rules[2]).toEqual({});
    // Every route field, optional ones included, and the Service's waypoint binding.
    expect(got.routes.get('HTTPRoute/shop/canary')).toEqual(canary);
    expect(got.routes.get('GRPCRoute/shop/rpc')).toEqual(rpc);
    expect(got.view.services[0]?.waypoint).toEqual({ namespace: 'shop', name: 'waypoint' });
  });

  test('a required waypoint and a fail-closed stand-in survive the wire', () => {
    const closed: MeshPolicy = {
      kind: 'AuthorizationPolicy',
      namespace: 'shop',
      name: 'broken',
      selector: { app: 'db' },
      action: 'DENY',
      rules: [{}],
      failClosed: 'spec.action: "DENNY" is not one of ALLOW, DENY',
    };
    const ref = { namespace: 'shop', name: 'waypoint' };
    const next = config({
      services: [svc('web', { waypoint: ref, requiredWaypoint: ref }), svc('free', { vips: ['10.96.0.11'] })],
      policies: [deny, strict, closed],
    });
    const got = roundTrip(undefined, next);
    expect(content(got)).toEqual(content(next));
    expect(got.policies.get('AuthorizationPolicy/shop/broken')).toEqual(closed);
    expect(got.policies.get('AuthorizationPolicy/shop/deny')).not.toHaveProperty('failClosed');
    expect(got.view.services.find((x) => x.name === 'web')?.requiredWaypoint).toEqual(ref);
    expect(got.view.services.find((x) => x.name === 'free')).not.toHaveProperty('requiredWaypoint');
  });
});

describe('waypoint AuthorizationPolicies over the wire', () => {
  const l7: MeshPolicy = {
    kind: 'AuthorizationPolicy',
    namespace: 'shop',
    name: 'l7',
    targetRefs: [
      { kind: 'Service', name: 'web' },
      { kind: 'Gateway', name: 'waypoint' },
    ],
    action: 'AUDIT',
    rules: [
      {
        from: [
          { requestPrincipals: ['https://issuer/*'], notRequestPrincipals: ['x/y'], namespaces: ['shop'] },
        ],
        to: [
          {
            ports: [8080],
            hosts: ['web.shop'],
            notHosts: ['evil'],
            methods: ['GET'],
            notMethods: ['POST'],
            paths: ['/api/*'],
            notPaths: ['*.php'],
          },
        ],
        when: [
          { key: 'request.headers[x-user]', values: ['alice'] },
          { key: 'request.auth.claims[groups]', notValues: ['guest'] },
          { key: 'request.auth.principal', values: ['*'] },
        ],
      },
    ],
  };

  test('every field survives: targetRefs, AUDIT, hosts, methods, paths, request principals and request.* keys', () => {
    const got = roundTrip(undefined, config({ policies: [deny, strict, l7] }));
    expect(got.policies.get('AuthorizationPolicy/shop/l7')).toEqual(l7);
  });

  test('request.* keys and AUDIT are refused in a policy without targetRefs (a node proxy policy)', () => {
    const { targetRefs: _, ...l4 } = l7 as Extract<MeshPolicy, { kind: 'AuthorizationPolicy' }>;
    const u = encodeUpdate(diffConfig(undefined, config({ policies: [{ ...l4, action: 'DENY' }] })), 1n);
    const r = applyUpdate(undefined, wire(u));
    expect(r.problems.join('\n')).toMatch(/when.key "request.headers\[x-user\]" is not an L4 key/);
  });
});

describe('applyUpdate: every entry is checked; a bad one is left out and named, the rest applies', () => {
  const good = encodeUpdate(diffConfig(undefined, config()), 1n);
  test.each<{ what: string; mutate: (u: ConfigUpdate) => void; problem: RegExp }>([
    {
      what: 'a workload address that is not an IP',
      mutate: (u) => {
        u.workloads[0]!.ips = ['10.0.0.300'];
      },
      problem: /workload shop\/web .*not an IP/,
    },
    {
      what: 'a workload identity that is not a SPIFFE id',
      mutate: (u) => {
        u.workloads[0]!.identity = 'web';
      },
      problem: /is not a SPIFFE id/,
    },
    {
      what: 'a workload without a uid',
      mutate: (u) => {
        u.workloads[0]!.uid = '';
      },
      problem: /uid, name and namespace are required/,
    },
    {
      what: 'a VIP that is not an IP',
      mutate: (u) => {
        u.services[0]!.vips = ['vip'];
      },
      problem: /service shop\/web: a VIP is not an IP/,
    },
    {
      what: 'a service port out of range',
      mutate: (u) => {
        u.services[0]!.ports[0]!.port = 70000;
      },
      problem: /port 70000 is not a port number/,
    },
    {
      what: 'a service protocol Ambit does not know',
      mutate: (u) => {
        u.services[0]!.ports[0]!.protocol = 'QUIC';
      },
      problem: /"QUIC" is not TCP, UDP or SCTP/,
    },
    {
      what: 'a policy action',
      mutate: (u) => {
        u.policies[0]!.authorization!.action = 'AUDIT';
      },
      problem: /policy AuthorizationPolicy\/shop\/deny: action "AUDIT"/,
    },
    {
      what: 'a fail-closed stand-in that would allow',
      mutate: (u) => {
        const a = u.policies[0]!.authorization!;
        a.action = 'ALLOW';
        a.fail_closed = 'broken';
      },
      problem: /policy AuthorizationPolicy\/shop\/deny: a fail-closed stand-in must be a DENY/,
    },
    {
      what: 'the any-target ref outside a fail-closed stand-in',
      mutate: (u) => {
        u.policies[0]!.authorization!.target_refs = [{ kind: 'Service', name: '*' }];
      },
      problem: /targetRefs: "\*" \(any target\) is only for a fail-closed stand-in/,
    },
    {
      what: 'an IP block in a policy',
      mutate: (u) => {
        u.policies[0]!.authorization!.rules[0]!.from!.items[0]!.not_ip_blocks = ['10.0.0.0/40'];
      },
      problem: /notIpBlocks: "10.0.0.0\/40" is not a CIDR/,
    },
    {
      what: 'a condition key',
      mutate: (u) => {
        u.policies[0]!.authorization!.rules[0]!.when!.items[0]!.key = 'request.headers[x]';
      },
      problem: /when.key "request.headers\[x\]" is not an L4 key/,
    },
    {
      what: 'a policy that is neither kind',
      mutate: (u) => {
        u.policies[0]!.authorization = null;
      },
      problem: /exactly one of an AuthorizationPolicy, a PeerAuthentication and a RequestAuthentication/,
    },
    {
      what: 'an mTLS mode',
      mutate: (u) => {
        u.policies[1]!.peer_authentication!.mode = 'LOOSE';
      },
      problem: /mode "LOOSE" is not an mTLS mode/,
    },
    {
      what: 'a route regular expression that does not compile',
      mutate: (u) => {
        const m = u.routes.find((r) => r.kind === 'HTTPRoute')!.http_rules[0]!.matches[0]!;
        m.query_params[0]!.match!.value = '(';
      },
      problem: /HTTPRoute\/shop\/canary.*queryParams.*regular expression/,
    },
    {
      what: 'a backend weight out of range',
      mutate: (u) => {
        u.routes.find((r) => r.kind === 'HTTPRoute')!.http_rules[0]!.backend_refs[0]!.weight = 2_000_000;
      },
      problem: /HTTPRoute\/shop\/canary.*weight/,
    },
  ])('$what', ({ mutate, problem }) => {
    const u = structuredClone(good);
    mutate(u);
    const { config: got, problems } = applyUpdate(undefined, u);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(problem);
    // The rest is there.
    const all = content(config());
    const have = content(got);
    expect(have.workloads.length + have.services.length + have.policies.length + have.routes.length).toBe(
      all.workloads.length + all.services.length + all.policies.length + all.routes.length - 1,
    );
  });
});
