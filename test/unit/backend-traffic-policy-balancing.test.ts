import { describe, expect, test } from 'vitest';
import {
  decodeTrafficPolicy,
  encodeTrafficPolicy,
  type WireTrafficPolicy,
} from '../../src/api/config-traffic-policy.js';
import { PASSIVE_HEALTH_CHECK_DEFAULTS } from '../../src/traffic-policy/balancing.js';
import { describeTrafficPolicy } from '../../src/traffic-policy/describe.js';
import type { AppliedTrafficPolicy } from '../../src/traffic-policy/types.js';
import { loadTrafficPolicy, overTheWire, TARGET_WEB } from './traffic-policy-fixtures.js';

describe('BackendTrafficPolicy loadBalancer and healthCheck parsing', () => {
  test.each([
    { spec: 'loadBalancer: {type: RoundRobin}', want: { type: 'RoundRobin' } },
    { spec: 'loadBalancer: {type: Random}', want: { type: 'Random' } },
    { spec: 'loadBalancer: {type: LeastRequest}', want: { type: 'LeastRequest' } },
    {
      spec: 'loadBalancer: {type: ConsistentHash, consistentHash: {type: Header, header: {name: X-User}}}',
      want: { type: 'ConsistentHash', hashOn: { type: 'Header', name: 'x-user' }, tableSize: 65537 },
    },
    {
      spec: 'loadBalancer: {type: ConsistentHash, consistentHash: {type: Cookie, cookie: {name: session, ttl: 1h, attributes: {SameSite: Strict}}, tableSize: 101}}',
      want: {
        type: 'ConsistentHash',
        hashOn: { type: 'Cookie', name: 'session', ttlMs: 3_600_000, attributes: { SameSite: 'Strict' } },
        tableSize: 101,
      },
    },
    {
      spec: 'loadBalancer: {type: ConsistentHash, consistentHash: {type: SourceIP}}',
      want: { type: 'ConsistentHash', hashOn: { type: 'SourceIP' }, tableSize: 65537 },
    },
    {
      spec: 'loadBalancer: {type: ConsistentHash, consistentHash: {type: SourceIdentity}}',
      want: { type: 'ConsistentHash', hashOn: { type: 'SourceIdentity' }, tableSize: 65537 },
    },
  ])('$spec', ({ spec, want }) => {
    const r = loadTrafficPolicy(`${TARGET_WEB}\n${spec}`);
    expect(r.errors).toEqual([]);
    expect(r.value?.loadBalancer).toEqual(want);
  });

  test('healthCheck.panicThreshold goes with the passive check', () => {
    const r = loadTrafficPolicy(`${TARGET_WEB}\nhealthCheck: {panicThreshold: 0, passive: {}}`);
    expect(r.errors).toEqual([]);
    expect(r.value?.passiveHealthCheck).toEqual({ ...PASSIVE_HEALTH_CHECK_DEFAULTS, panicThreshold: 0 });
  });

  test("healthCheck.passive: Envoy Gateway's defaults for what is unset", () => {
    const r = loadTrafficPolicy(
      `${TARGET_WEB}\nhealthCheck: {passive: {consecutive5XxErrors: 3, baseEjectionTime: 5s}}`,
    );
    expect(r.errors).toEqual([]);
    expect(r.value?.passiveHealthCheck).toEqual({
      ...PASSIVE_HEALTH_CHECK_DEFAULTS,
      consecutive5xxErrors: 3,
      baseEjectionTimeMs: 5000,
    });
    expect(PASSIVE_HEALTH_CHECK_DEFAULTS).toEqual({
      consecutive5xxErrors: 5,
      consecutiveGatewayErrors: 0,
      consecutiveLocalOriginFailures: 5,
      splitExternalLocalOriginErrors: false,
      intervalMs: 3000,
      baseEjectionTimeMs: 30_000,
      maxEjectionPercent: 10,
      alwaysEjectOneEndpoint: false,
      panicThreshold: 50,
    });
  });

  test.each([
    {
      spec: 'loadBalancer: {type: Fastest}',
      issue:
        /p\.yaml:8 spec\.loadBalancer\.type: "Fastest" is not one of RoundRobin, LeastRequest, Random, ConsistentHash/,
    },
    { spec: 'loadBalancer: {}', issue: /spec\.loadBalancer\.type: is required/ },
    {
      spec: 'loadBalancer: {type: ConsistentHash}',
      issue: /spec\.loadBalancer\.consistentHash: is required with type ConsistentHash/,
    },
    {
      spec: 'loadBalancer: {type: RoundRobin, consistentHash: {type: SourceIP}}',
      issue: /spec\.loadBalancer\.consistentHash: is only allowed with type ConsistentHash/,
    },
    {
      spec: 'loadBalancer: {type: ConsistentHash, consistentHash: {type: Header}}',
      issue: /spec\.loadBalancer\.consistentHash\.header: is required/,
    },
    {
      spec: 'loadBalancer: {type: ConsistentHash, consistentHash: {type: SourceIP, header: {name: x}}}',
      issue: /spec\.loadBalancer\.consistentHash\.header: is only allowed with type Header/,
    },
    {
      spec: 'loadBalancer: {type: ConsistentHash, consistentHash: {type: SourceIP, tableSize: 100}}',
      issue: /spec\.loadBalancer\.consistentHash\.tableSize: 100 is not a prime number/,
    },
    {
      spec: 'loadBalancer: {type: ConsistentHash, consistentHash: {type: SourceIP, tableSize: 5000012}}',
      issue: /spec\.loadBalancer\.consistentHash\.tableSize: /,
    },
    {
      spec: 'loadBalancer: {type: ConsistentHash, consistentHash: {type: Cookie, cookie: {name: "a b"}}}',
      issue: /spec\.loadBalancer\.consistentHash\.cookie\.name: "a b" is not a cookie name/,
    },
    {
      spec: 'loadBalancer: {type: ConsistentHash, consistentHash: {type: Cookie, cookie: {name: s, attributes: {Path: "/; x"}}}}',
      issue: /spec\.loadBalancer\.consistentHash\.cookie\.attributes\.Path: .*must not contain/,
    },
    {
      spec: 'loadBalancer: {type: RoundRobin, slowStart: {window: 10s}}',
      issue: /spec\.loadBalancer\.slowStart: is not supported by Ambit yet/,
    },
    {
      spec: 'healthCheck: {active: {type: HTTP}}',
      issue:
        /spec\.healthCheck\.active: is not supported by Ambit yet \(supported: passive, panicThreshold\)/,
    },
    { spec: 'healthCheck: {}', issue: /spec\.healthCheck: needs passive/ },
    { spec: 'healthCheck: {panicThreshold: 101, passive: {}}', issue: /spec\.healthCheck\.panicThreshold: / },
    {
      spec: 'healthCheck: {passive: {maxEjectionPercent: 120}}',
      issue: /p\.yaml:8 spec\.healthCheck\.passive\.maxEjectionPercent: /,
    },
    {
      spec: 'healthCheck: {passive: {interval: 0s}}',
      issue: /spec\.healthCheck\.passive\.interval: must be longer than 0s/,
    },
    {
      spec: 'healthCheck: {passive: {consecutive5xxErrors: 3}}',
      issue: /spec\.healthCheck\.passive\.consecutive5xxErrors: unknown field/,
    },
    {
      spec: 'healthCheck: {passive: {splitExternalLocalOriginErrors: "yes"}}',
      issue: /splitExternalLocalOriginErrors: "yes" is not a boolean/,
    },
  ])('$spec is rejected: $issue', ({ spec, issue }) => {
    const r = loadTrafficPolicy(`${TARGET_WEB}\n${spec}`);
    expect(r.value).toBeUndefined();
    expect(r.errors.join('\n')).toMatch(issue);
  });
});

describe('loadBalancer and healthCheck over the wire, and for people', () => {
  const applied: AppliedTrafficPolicy[] = [
    { policy: 'shop/rr', loadBalancer: { type: 'RoundRobin' } },
    {
      policy: 'shop/cookie',
      loadBalancer: {
        type: 'ConsistentHash',
        hashOn: { type: 'Cookie', name: 'session', ttlMs: 60_000, attributes: { SameSite: 'Lax' } },
        tableSize: 65537,
      },
      passiveHealthCheck: { ...PASSIVE_HEALTH_CHECK_DEFAULTS, splitExternalLocalOriginErrors: true },
    },
    {
      policy: 'shop/nottl',
      loadBalancer: {
        type: 'ConsistentHash',
        hashOn: { type: 'Cookie', name: 's', attributes: {} },
        tableSize: 7,
      },
    },
    {
      policy: 'shop/id',
      loadBalancer: { type: 'ConsistentHash', hashOn: { type: 'SourceIdentity' }, tableSize: 65537 },
      passiveHealthCheck: { ...PASSIVE_HEALTH_CHECK_DEFAULTS, panicThreshold: 0 },
    },
  ];
  test.each(applied)('$policy survives protobuf', (a) => {
    expect(overTheWire(a)).toEqual(a);
  });

  test.each([
    {
      change: (w: WireTrafficPolicy) => {
        w.load_balancer!.type = 'Fastest';
      },
      issue: /load_balancer\.type: "Fastest"/,
    },
    {
      change: (w: WireTrafficPolicy) => {
        w.load_balancer!.table_size = 8;
      },
      issue: /load_balancer\.table_size: 8 is not a prime/,
    },
    {
      change: (w: WireTrafficPolicy) => {
        w.health_check!.interval_ms = 0;
      },
      issue: /health_check\.interval_ms: 0/,
    },
  ])('a bad wire value is refused with its field: $issue', ({ change, issue }) => {
    const w = encodeTrafficPolicy(applied[1]!);
    change(w);
    expect(() => decodeTrafficPolicy(w)).toThrow(issue);
  });

  test('described for people', () => {
    expect(describeTrafficPolicy(applied[1]!)).toBe(
      'BackendTrafficPolicy shop/cookie: loadBalancer ConsistentHash on cookie session (set for 60s when absent) (Maglev, table 65537); healthCheck.passive consecutive5XxErrors=5 consecutiveGatewayErrors=off consecutiveLocalOriginFailures=5 (split) interval=3s baseEjectionTime=30s maxEjectionPercent=10 panicThreshold=50',
    );
    expect(describeTrafficPolicy(applied[0]!)).toBe('BackendTrafficPolicy shop/rr: loadBalancer RoundRobin');
  });
});
