import { Counter, Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { decodeTrafficPolicy, encodeTrafficPolicy } from '../../src/api/config-traffic-policy.js';
import type { ConnContext } from '../../src/l7-waypoint/exchange.js';
import { RateLimits } from '../../src/l7-waypoint/rate-limits.js';
import { createRootLogger } from '../../src/telemetry/logger.js';
import { describeTrafficPolicy } from '../../src/traffic-policy/describe.js';
import {
  admitRequest,
  type Bucket,
  type LocalRateLimit,
  type RateLimitRequest,
  type RateLimitRule,
  ruleBuckets,
  ruleKeys,
  takeToken,
} from '../../src/traffic-policy/rate-limit.js';
import type { AppliedTrafficPolicy } from '../../src/traffic-policy/types.js';
import { loadTrafficPolicy, overTheWire, TARGET_WEB } from './traffic-policy-fixtures.js';

const rules = (r: string): string => `${TARGET_WEB}\nrateLimit:\n  type: Local\n  local:\n    rules:\n${r}`;

describe('BackendTrafficPolicy rateLimit parsing', () => {
  test('Envoy Gateway shapes with their defaults, and the sourceIdentity extension', () => {
    const r = loadTrafficPolicy(
      rules(`      - clientSelectors:
          - headers: [{name: X-User, type: Distinct}, {name: x-tier, value: free, invert: true}]
            sourceCIDR: {value: 10.0.0.0/8}
        limit: {requests: 10, unit: Second}
      - clientSelectors: [{sourceIdentity: {type: Distinct}}]
        limit: {requests: 100, unit: Minute}
        shared: true
      - limit: {requests: 5, unit: Day}`),
    );
    expect(r.errors).toEqual([]);
    expect(r.value?.rateLimit).toEqual({
      rules: [
        {
          clientSelectors: [
            {
              headers: [
                { name: 'x-user', type: 'Distinct' },
                { name: 'x-tier', type: 'Exact', value: 'free', invert: true },
              ],
              sourceCIDR: { type: 'Exact', cidr: '10.0.0.0/8' },
            },
          ],
          limit: { requests: 10, unit: 'Second' },
          shared: false,
        },
        {
          clientSelectors: [{ headers: [], sourceIdentity: { type: 'Distinct' } }],
          limit: { requests: 100, unit: 'Minute' },
          shared: true,
        },
        { clientSelectors: [], limit: { requests: 5, unit: 'Day' }, shared: false },
      ],
    });
  });

  test('local without the deprecated type is the same', () => {
    const r = loadTrafficPolicy(
      `${TARGET_WEB}\nrateLimit: {local: {rules: [{limit: {requests: 1, unit: Hour}}]}}`,
    );
    expect(r.errors).toEqual([]);
    expect(r.value?.rateLimit?.rules).toHaveLength(1);
  });

  test.each([
    {
      rule: 'Global (no rate-limit service)',
      spec: `${TARGET_WEB}\nrateLimit: {type: Global, global: {rules: []}}`,
      issue:
        /p\.yaml:8 spec\.rateLimit\.global: Global rate limits need a rate-limit service, which Ambit does not have/,
    },
    {
      rule: 'type Global alone',
      spec: `${TARGET_WEB}\nrateLimit: {type: Global}`,
      issue: /spec\.rateLimit\.type: Global rate limits need a rate-limit service/,
    },
    {
      rule: 'an unknown type',
      spec: `${TARGET_WEB}\nrateLimit: {type: Both, local: {rules: [{limit: {requests: 1, unit: Second}}]}}`,
      issue: /spec\.rateLimit\.type: "Both" is not one of Local, Global/,
    },
    {
      rule: 'no local',
      spec: `${TARGET_WEB}\nrateLimit: {type: Local}`,
      issue: /spec\.rateLimit\.local: is required/,
    },
    {
      rule: 'no rules',
      spec: `${TARGET_WEB}\nrateLimit: {local: {rules: []}}`,
      issue: /spec\.rateLimit\.local\.rules: must not be empty/,
    },
    {
      rule: 'a unit only Global has',
      spec: rules('      - limit: {requests: 1, unit: Month}'),
      issue:
        /p\.yaml:12 spec\.rateLimit\.local\.rules\[0\]\.limit\.unit: "Month" is only for Global rate limits/,
    },
    {
      rule: 'zero requests',
      spec: rules('      - limit: {requests: 0, unit: Second}'),
      issue: /spec\.rateLimit\.local\.rules\[0\]\.limit\.requests: /,
    },
    {
      rule: 'no limit',
      spec: rules('      - clientSelectors: [{sourceIdentity: {type: Distinct}}]'),
      issue: /spec\.rateLimit\.local\.rules\[0\]\.limit: is required/,
    },
    {
      rule: 'a Distinct header with a value',
      spec: rules(
        '      - clientSelectors: [{headers: [{name: x-user, type: Distinct, value: a}]}]\n        limit: {requests: 1, unit: Second}',
      ),
      issue: /rules\[0\]\.clientSelectors\[0\]\.headers\[0\]\.value: must not be set with type Distinct/,
    },
    {
      rule: 'a bad regex',
      spec: rules(
        '      - clientSelectors: [{headers: [{name: x-user, type: RegularExpression, value: "a("}]}]\n        limit: {requests: 1, unit: Second}',
      ),
      issue: /headers\[0\]\.value: "a\(" is not a valid regular expression/,
    },
    {
      rule: 'a CIDR without a prefix length',
      spec: rules(
        '      - clientSelectors: [{sourceCIDR: {type: Distinct, value: 10.0.0.1}}]\n        limit: {requests: 1, unit: Second}',
      ),
      issue: /clientSelectors\[0\]\.sourceCIDR\.value: "10\.0\.0\.1" is not a CIDR/,
    },
    {
      rule: 'an identity that is not a workload identity',
      spec: rules(
        '      - clientSelectors: [{sourceIdentity: {value: alice}}]\n        limit: {requests: 1, unit: Second}',
      ),
      issue: /sourceIdentity\.value: "alice" is not a workload identity/,
    },
    {
      rule: 'an empty client selector',
      spec: rules('      - clientSelectors: [{}]\n        limit: {requests: 1, unit: Second}'),
      issue: /clientSelectors\[0\]: needs at least one of headers, sourceCIDR or sourceIdentity/,
    },
    {
      rule: 'methods (not enforced yet)',
      spec: rules(
        '      - clientSelectors: [{methods: [{value: GET}]}]\n        limit: {requests: 1, unit: Second}',
      ),
      issue: /clientSelectors\[0\]\.methods: is not supported by Ambit yet/,
    },
    {
      rule: 'cost (not enforced yet)',
      spec: rules(
        '      - limit: {requests: 1, unit: Second}\n        cost: {request: {from: Number, number: 2}}',
      ),
      issue: /rules\[0\]\.cost: is not supported by Ambit yet/,
    },
    {
      rule: 'a typo',
      spec: rules('      - limits: {requests: 1, unit: Second}'),
      issue: /rules\[0\]\.limits: unknown field/,
    },
  ])('$rule is rejected with its field path', ({ spec, issue }) => {
    const r = loadTrafficPolicy(spec);
    expect(r.value).toBeUndefined();
    expect(r.errors.join('\n')).toMatch(issue);
  });
});

const A = 'spiffe://cluster.local/ns/shop/sa/a';
const B = 'spiffe://cluster.local/ns/shop/sa/b';
const req = (
  over: Partial<RateLimitRequest> & { headers?: Record<string, string> } = {},
): RateLimitRequest => ({
  header: (n) => over.headers?.[n],
  sourceIp: '10.0.0.5',
  identity: A,
  service: 'web.shop.svc.cluster.local',
  ...over,
});
const rule = (clientSelectors: RateLimitRule['clientSelectors'], shared = false): RateLimitRule => ({
  clientSelectors,
  limit: { requests: 10, unit: 'Second' },
  shared,
});
const keysOf = (rl: LocalRateLimit, r: RateLimitRequest): string[] =>
  ruleBuckets('shop/p', rl, r).map((b) => b.key);

describe('which rules select a request, and the bucket each counts against', () => {
  const perIdentity: LocalRateLimit = {
    rules: [rule([{ headers: [], sourceIdentity: { type: 'Distinct' } }])],
  };
  test.each([
    {
      name: 'Distinct identity: a bucket per identity',
      rl: perIdentity,
      a: req(),
      b: req({ identity: B }),
      same: false,
    },
    {
      name: 'Distinct identity, same identity from another address: one bucket',
      rl: perIdentity,
      a: req(),
      b: req({ sourceIp: '10.0.0.9' }),
      same: true,
    },
    {
      name: 'Exact CIDR: every address in it shares a bucket',
      rl: { rules: [rule([{ headers: [], sourceCIDR: { type: 'Exact', cidr: '10.0.0.0/24' } }])] },
      a: req(),
      b: req({ sourceIp: '10.0.0.9' }),
      same: true,
    },
    {
      name: 'Distinct CIDR: a bucket per address',
      rl: { rules: [rule([{ headers: [], sourceCIDR: { type: 'Distinct', cidr: '10.0.0.0/24' } }])] },
      a: req(),
      b: req({ sourceIp: '10.0.0.9' }),
      same: false,
    },
    {
      name: 'not shared: a bucket per route',
      rl: { rules: [rule([])] },
      a: req({ route: 'HTTPRoute/shop/a' }),
      b: req({ route: 'HTTPRoute/shop/b' }),
      same: false,
    },
    {
      name: 'shared: one bucket for every Service and route',
      rl: { rules: [rule([], true)] },
      a: req({ route: 'HTTPRoute/shop/a' }),
      b: req({ service: 'api.shop.svc.cluster.local' }),
      same: true,
    },
    {
      name: 'Distinct header: a bucket per value',
      rl: { rules: [rule([{ headers: [{ name: 'x-user', type: 'Distinct' }] }])] },
      a: req({ headers: { 'x-user': 'ann' } }),
      b: req({ headers: { 'x-user': 'bob' } }),
      same: false,
    },
  ])('$name', ({ rl, a, b, same }) => {
    const [ka] = keysOf(rl, a);
    const [kb] = keysOf(rl, b);
    expect(ka).toBeDefined();
    expect(kb).toBeDefined();
    expect(ka === kb).toBe(same);
  });

  test.each([
    {
      name: 'Exact identity, the other identity',
      sel: { headers: [], sourceIdentity: { type: 'Exact' as const, value: B } },
      r: req(),
      hits: 0,
    },
    {
      name: 'Exact identity in principal form',
      sel: { headers: [], sourceIdentity: { type: 'Exact' as const, value: 'cluster.local/ns/shop/sa/a' } },
      r: req(),
      hits: 1,
    },
    {
      name: 'CIDR outside',
      sel: { headers: [], sourceCIDR: { type: 'Distinct' as const, cidr: '10.1.0.0/16' } },
      r: req(),
      hits: 0,
    },
    {
      name: 'Distinct header absent',
      sel: { headers: [{ name: 'x-user', type: 'Distinct' as const }] },
      r: req(),
      hits: 0,
    },
    {
      name: 'Exact header matches',
      sel: { headers: [{ name: 'x-tier', type: 'Exact' as const, value: 'free', invert: false }] },
      r: req({ headers: { 'x-tier': 'free' } }),
      hits: 1,
    },
    {
      name: 'inverted Exact header: the matching value is not selected',
      sel: { headers: [{ name: 'x-tier', type: 'Exact' as const, value: 'free', invert: true }] },
      r: req({ headers: { 'x-tier': 'free' } }),
      hits: 0,
    },
    {
      name: 'inverted Exact header: an absent header is selected',
      sel: { headers: [{ name: 'x-tier', type: 'Exact' as const, value: 'free', invert: true }] },
      r: req(),
      hits: 1,
    },
    {
      name: 'RegularExpression matches the whole value',
      sel: { headers: [{ name: 'x-tier', type: 'RegularExpression' as const, value: 'fr', invert: false }] },
      r: req({ headers: { 'x-tier': 'free' } }),
      hits: 0,
    },
  ])('$name: selected $hits', ({ sel, r, hits }) => {
    expect(keysOf({ rules: [rule([sel])] }, r)).toHaveLength(hits);
  });

  test('a changed limit gets a fresh bucket', () => {
    const [k1] = keysOf({ rules: [rule([])] }, req());
    const [k2] = keysOf({ rules: [{ ...rule([]), limit: { requests: 20, unit: 'Second' } }] }, req());
    expect(k1).not.toBe(k2);
  });
});

describe('token bucket arithmetic (10 per second, refilled evenly)', () => {
  const ten = { requests: 10, unit: 'Second' } as const;
  test.each([
    { name: 'a new bucket is full', bucket: undefined, now: 0, allowed: true, remaining: 9, reset: 1 },
    { name: 'the last token', bucket: { tokens: 1, at: 0 }, now: 0, allowed: true, remaining: 0, reset: 1 },
    { name: 'empty', bucket: { tokens: 0.5, at: 0 }, now: 0, allowed: false, remaining: 0, reset: 1 },
    {
      name: 'refilled by time (100 ms is one token)',
      bucket: { tokens: 0, at: 0 },
      now: 100,
      allowed: true,
      remaining: 0,
      reset: 1,
    },
    {
      name: 'never above the size',
      bucket: { tokens: 0, at: 0 },
      now: 60_000,
      allowed: true,
      remaining: 9,
      reset: 1,
    },
    {
      name: 'a clock that went back adds nothing',
      bucket: { tokens: 0, at: 1000 },
      now: 500,
      allowed: false,
      remaining: 0,
      reset: 1,
    },
  ])('$name', ({ bucket, now, allowed, remaining, reset }) => {
    const t = takeToken(bucket as Bucket | undefined, ten, now);
    expect(t.allowed).toBe(allowed);
    expect(t.status).toEqual({ limit: 10, remaining, resetSeconds: reset });
  });

  test('a day-long bucket tells when it is full again', () => {
    const t = takeToken({ tokens: 0, at: 0 }, { requests: 24, unit: 'Day' }, 0);
    expect(t.status.resetSeconds).toBe(86_400);
  });

  test('the strictest rule is taken first; an empty one limits and names its rule', () => {
    const loose = { rule: 0, key: 'loose', limit: { requests: 100, unit: 'Second' } as const };
    const strict = { rule: 1, key: 'strict', limit: { requests: 2, unit: 'Second' } as const };
    const store = new Map<string, Bucket>();
    const results = [0, 1, 2].map(() => {
      const d = admitRequest([loose, strict], (k) => store.get(k), 0);
      for (const [k, b] of d.updates) store.set(k, b);
      return { allowed: d.allowed, by: d.limitedBy, remaining: d.status?.remaining, limit: d.status?.limit };
    });
    expect(results).toEqual([
      { allowed: true, by: undefined, remaining: 1, limit: 2 },
      { allowed: true, by: undefined, remaining: 0, limit: 2 },
      { allowed: false, by: 1, remaining: 0, limit: 2 },
    ]);
    // The limited request took nothing from the looser bucket.
    expect(store.get('loose')?.tokens).toBe(98);
  });
});

describe('per-replica buckets', () => {
  const ctx = (identity: string): ConnContext =>
    ({ client: { identity, namespace: 'shop', address: '10.0.0.5' } }) as unknown as ConnContext;
  const rl: LocalRateLimit = {
    rules: [
      {
        clientSelectors: [{ headers: [], sourceIdentity: { type: 'Distinct' } }],
        limit: { requests: 2, unit: 'Minute' },
        shared: false,
      },
    ],
  };
  const make = (max: number) => {
    const registry = new Registry();
    const evicted = new Counter({
      name: 'evicted',
      help: 'x',
      labelNames: ['policy'],
      registers: [registry],
    });
    const limits = new RateLimits(
      evicted,
      createRootLogger({ name: 'rate-limit-test', level: 'fatal' }),
      () => 0,
      max,
    );
    const send = (id: string) => limits.check('shop/p', rl, 'web', ctx(id), {}, undefined).allowed;
    return { limits, send, registry };
  };

  test('each identity is held to its own limit', () => {
    const { send } = make(100);
    expect([send(A), send(A), send(A), send(B), send(B), send(B)]).toEqual([
      true,
      true,
      false,
      true,
      true,
      false,
    ]);
  });

  test('the buckets are bounded: the least recently used is dropped and counted', async () => {
    const { limits, send, registry } = make(2);
    send(A);
    send(A);
    send(B);
    send('spiffe://cluster.local/ns/shop/sa/c');
    expect(limits.size).toBe(2);
    expect(await registry.getSingleMetricAsString('evicted')).toContain('evicted{policy="shop/p"} 1');
    // A was dropped: it starts again with a full bucket.
    expect(send(A)).toBe(true);
  });

  test('a config without the rule drops its buckets; the rules still in force keep theirs', () => {
    const { limits, send } = make(100);
    send(A);
    send(A);
    expect(send(A)).toBe(false);
    send(B);
    limits.retain(new Set(ruleKeys('shop/p', rl)));
    expect(limits.size).toBe(2);
    expect(send(A)).toBe(false);
    // The limit changed (another rule key) or the policy went: its buckets go now, not at the LRU bound.
    limits.retain(
      new Set(ruleKeys('shop/p', { rules: [{ ...rl.rules[0]!, limit: { requests: 5, unit: 'Minute' } }] })),
    );
    expect(limits.size).toBe(0);
    expect(send(A)).toBe(true);
  });
});

describe('rateLimit over the wire and for people', () => {
  const applied: AppliedTrafficPolicy = {
    policy: 'shop/rl',
    rateLimit: {
      rules: [
        {
          clientSelectors: [
            {
              headers: [
                { name: 'x-user', type: 'Distinct' },
                { name: 'x-tier', type: 'RegularExpression', value: 'free|trial', invert: true },
              ],
              sourceCIDR: { type: 'Distinct', cidr: '10.0.0.0/8' },
            },
            { headers: [], sourceIdentity: { type: 'Exact', value: A } },
          ],
          limit: { requests: 10, unit: 'Second' },
          shared: false,
        },
        {
          clientSelectors: [{ headers: [], sourceIdentity: { type: 'Distinct' } }],
          limit: { requests: 5, unit: 'Hour' },
          shared: true,
        },
      ],
    },
  };

  test('survives protobuf', () => {
    expect(overTheWire(applied)).toEqual(applied);
  });

  test('a bad wire unit is refused with the field', () => {
    const w = encodeTrafficPolicy(applied);
    w.rate_limit!.rules[1]!.unit = 'Year';
    expect(() => decodeTrafficPolicy(w)).toThrow(/rate_limit\.rules\[1\]\.unit: "Year"/);
  });

  test('described for people', () => {
    expect(describeTrafficPolicy(applied)).toBe(
      'BackendTrafficPolicy shop/rl: rateLimit local (per replica): 10/Second for each x-user and x-tier !~ "free|trial" and each source IP in 10.0.0.0/8 and source identity spiffe://cluster.local/ns/shop/sa/a, per route; 5/Hour for each source identity, shared by every target (over: 429, flag RL)',
    );
  });
});
