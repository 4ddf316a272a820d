import { describe, expect, test } from 'vitest';
import { decodeTrafficPolicy, encodeTrafficPolicy } from '../../src/api/config-traffic-policy.js';
import {
  admitAttempt,
  admitRequest,
  admitRetry,
  type InFlight,
} from '../../src/traffic-policy/circuit-breaker.js';
import { describeTrafficPolicy } from '../../src/traffic-policy/describe.js';
import { chooseFault } from '../../src/traffic-policy/fault-injection.js';
import {
  type AppliedTrafficPolicy,
  type BackendTrafficPolicy,
  type CircuitBreaker,
  type FaultInjection,
  trafficPolicyFor,
} from '../../src/traffic-policy/types.js';
import { loadTrafficPolicy, overTheWire, TARGET_WEB } from './traffic-policy-fixtures.js';

describe('BackendTrafficPolicy parsing: defaults applied, each mistake rejected with file:line path and reason', () => {
  test("circuitBreaker: unset limits get Envoy's 1024", () => {
    const r = loadTrafficPolicy(`${TARGET_WEB}\ncircuitBreaker: {maxParallelRequests: 10}`);
    expect(r.errors).toEqual([]);
    expect(r.value).toEqual({
      kind: 'BackendTrafficPolicy',
      namespace: 'shop',
      name: 'p',
      targetRefs: [{ name: 'web' }],
      circuitBreaker: {
        maxConnections: 1024,
        maxPendingRequests: 1024,
        maxParallelRequests: 10,
        maxParallelRetries: 1024,
      },
    });
  });

  test('faultInjection: percentage defaults to 100, headers are lowercased, grpcStatus accepted', () => {
    const r = loadTrafficPolicy(
      `${TARGET_WEB}\nfaultInjection:\n  delay: {fixedDelay: 1s}\n  abort: {grpcStatus: 14, percentage: 12.5}\n  headers: [{name: X-Fault, value: "on"}]`,
    );
    expect(r.errors).toEqual([]);
    expect(r.value?.faultInjection).toEqual({
      delay: { fixedDelayMs: 1000, percentage: 100 },
      abort: { grpcStatus: 14, percentage: 12.5 },
      headers: [{ name: 'x-fault', match: { type: 'Exact', value: 'on' } }],
    });
  });

  test.each([
    {
      rule: 'a target that is not a Service',
      spec: 'targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: web}]\ncircuitBreaker: {}',
      issue:
        /p\.yaml:7 spec\.targetRefs\[0\]\.kind: "HTTPRoute\.gateway\.networking\.k8s\.io" is not a Service/,
    },
    {
      rule: 'no targetRefs',
      spec: 'circuitBreaker: {maxConnections: 1}',
      issue: /spec\.targetRefs: is required/,
    },
    {
      rule: 'a negative limit',
      spec: `${TARGET_WEB}\ncircuitBreaker: {maxParallelRequests: -1}`,
      issue: /p\.yaml:8 spec\.circuitBreaker\.maxParallelRequests: .*-1/,
    },
    {
      rule: 'a percentage over 100',
      spec: `${TARGET_WEB}\nfaultInjection: {abort: {httpStatus: 503, percentage: 150}}`,
      issue: /p\.yaml:8 spec\.faultInjection\.abort\.percentage: 150 is not a number from 0 to 100/,
    },
    {
      rule: 'both httpStatus and grpcStatus',
      spec: `${TARGET_WEB}\nfaultInjection: {abort: {httpStatus: 503, grpcStatus: 14}}`,
      issue: /spec\.faultInjection\.abort\.httpStatus: exactly one of httpStatus and grpcStatus must be set/,
    },
    {
      rule: 'an HTTP status out of range',
      spec: `${TARGET_WEB}\nfaultInjection: {abort: {httpStatus: 99}}`,
      issue: /spec\.faultInjection\.abort\.httpStatus: /,
    },
    {
      rule: 'a delay without fixedDelay',
      spec: `${TARGET_WEB}\nfaultInjection: {delay: {percentage: 5}}`,
      issue: /spec\.faultInjection\.delay\.fixedDelay: is required/,
    },
    {
      rule: 'a bad duration',
      spec: `${TARGET_WEB}\nfaultInjection: {delay: {fixedDelay: one-second}}`,
      issue: /spec\.faultInjection\.delay\.fixedDelay: "one-second" is not a duration/,
    },
    {
      rule: 'faultInjection with neither delay nor abort',
      spec: `${TARGET_WEB}\nfaultInjection: {headers: [{name: x-fault, value: "on"}]}`,
      issue: /spec\.faultInjection: needs a delay, an abort, or both/,
    },
    {
      rule: 'an Envoy Gateway field Ambit does not enforce yet',
      spec: `${TARGET_WEB}\ntcpKeepalive: {}`,
      issue: /spec\.tcpKeepalive: is not supported by Ambit yet/,
    },
    {
      rule: 'a typo',
      spec: `${TARGET_WEB}\ncircuitBreakers: {maxConnections: 1}`,
      issue: /spec\.circuitBreakers: unknown field/,
    },
  ])('$rule is rejected', ({ spec, issue }) => {
    const r = loadTrafficPolicy(spec);
    expect(r.value).toBeUndefined();
    expect(r.errors.join('\n')).toMatch(issue);
  });
});

const limits = (over: Partial<CircuitBreaker> = {}): CircuitBreaker => ({
  maxConnections: 4,
  maxPendingRequests: 2,
  maxParallelRequests: 10,
  maxParallelRetries: 3,
  ...over,
});
const now = (over: Partial<InFlight> = {}): InFlight => ({
  requests: 0,
  connections: 0,
  pending: 0,
  retries: 0,
  ...over,
});

describe('circuit-breaker admission', () => {
  test.each([
    { requests: 0, want: 'admit' },
    { requests: 9, want: 'admit' },
    { requests: 10, want: 'requests' },
    { requests: 11, want: 'requests' },
  ])('a request with $requests in flight (max 10): $want', ({ requests, want }) => {
    expect(admitRequest(limits(), now({ requests }))).toBe(want);
  });

  test.each([
    { connections: 3, pending: 0, want: 'connect' },
    { connections: 4, pending: 0, want: 'wait' },
    { connections: 4, pending: 1, want: 'wait' },
    { connections: 4, pending: 2, want: 'pending' },
  ])(
    'an attempt with $connections connections in use and $pending waiting (max 4, 2): $want',
    ({ connections, pending, want }) => {
      expect(admitAttempt(limits(), now({ connections, pending }))).toBe(want);
    },
  );

  test.each([
    { max: 0, pending: 0, want: 'pending' },
    { max: 1, pending: 0, want: 'wait' },
  ])('maxPendingRequests $max: no connection free means $want', ({ max, pending, want }) => {
    expect(admitAttempt(limits({ maxPendingRequests: max }), now({ connections: 4, pending }))).toBe(want);
  });

  test.each([
    { retries: 2, want: 'admit' },
    { retries: 3, want: 'retries' },
  ])('a retry with $retries retries in flight (max 3): $want', ({ retries, want }) => {
    expect(admitRetry(limits(), now({ retries }))).toBe(want);
  });
});

const headers = (h: Record<string, string | undefined>) => ({ header: (n: string) => h[n] });
const seq = (...xs: number[]) => {
  let i = 0;
  return () => xs[i++ % xs.length]!;
};

describe('fault selection (an injectable random source in [0, 1))', () => {
  const both: FaultInjection = {
    delay: { fixedDelayMs: 1000, percentage: 50 },
    abort: { httpStatus: 503, percentage: 50 },
    headers: [],
  };
  test.each([
    { rule: 'both drawn', fi: both, draws: [0.1, 0.2], want: { delayMs: 1000, abort: { httpStatus: 503 } } },
    { rule: 'the delay only', fi: both, draws: [0.1, 0.7], want: { delayMs: 1000 } },
    { rule: 'the abort only', fi: both, draws: [0.5, 0.49], want: { abort: { httpStatus: 503 } } },
    { rule: 'neither (50 is not under 50)', fi: both, draws: [0.5, 0.5], want: {} },
    {
      rule: '100% without a draw',
      fi: { abort: { grpcStatus: 14, percentage: 100 }, headers: [] },
      draws: [0.999],
      want: { abort: { grpcStatus: 14 } },
    },
    {
      rule: '0% never',
      fi: { abort: { httpStatus: 500, percentage: 0 }, headers: [] },
      draws: [0],
      want: {},
    },
    {
      rule: 'a fraction of a percent',
      fi: { abort: { httpStatus: 500, percentage: 0.5 }, headers: [] },
      draws: [0.004],
      want: { abort: { httpStatus: 500 } },
    },
  ])('$rule', ({ fi, draws, want }) => {
    expect(chooseFault(fi as FaultInjection, headers({}), seq(...draws))).toEqual(want);
  });

  const onlyMarked: FaultInjection = {
    delay: { fixedDelayMs: 1000, percentage: 100 },
    headers: [{ name: 'x-fault', match: { type: 'Exact', value: 'on' } }],
  };
  test.each([
    { rule: 'x-fault: on is delayed', h: { 'x-fault': 'on' }, want: { delayMs: 1000 } },
    { rule: 'x-fault: off is not', h: { 'x-fault': 'off' }, want: {} },
    { rule: 'no x-fault is not', h: {}, want: {} },
  ])('$rule', ({ h, want }) => {
    expect(chooseFault(onlyMarked, headers(h), Math.random)).toEqual(want);
  });
});

describe('the policy in force for a Service, and its trip over the wire', () => {
  const p = (name: string, target: string, ns = 'shop'): BackendTrafficPolicy => ({
    kind: 'BackendTrafficPolicy',
    namespace: ns,
    name,
    targetRefs: [{ name: target }],
    circuitBreaker: limits(),
  });
  test.each([
    { rule: 'none targets it', ps: [p('a', 'other')], want: undefined },
    { rule: 'another namespace does not count', ps: [p('a', 'web', 'other')], want: undefined },
    { rule: 'the first by name wins', ps: [p('b', 'web'), p('a', 'web')], want: 'shop/a' },
  ])('$rule', ({ ps, want }) => {
    expect(trafficPolicyFor({ namespace: 'shop', name: 'web' }, ps)?.policy).toBe(want);
  });

  const applied: AppliedTrafficPolicy[] = [
    { policy: 'shop/cb', circuitBreaker: limits() },
    {
      policy: 'shop/fi',
      faultInjection: {
        delay: { fixedDelayMs: 250, percentage: 33.5 },
        abort: { httpStatus: 503, percentage: 50 },
        headers: [{ name: 'x-fault', match: { type: 'RegularExpression', value: 'on|yes' } }],
      },
    },
    { policy: 'shop/grpc', faultInjection: { abort: { grpcStatus: 0, percentage: 100 }, headers: [] } },
  ];
  test.each(applied)('$policy survives protobuf', (a) => {
    expect(overTheWire(a)).toEqual(a);
  });

  test('a bad wire percentage is refused with the field', () => {
    const w = encodeTrafficPolicy(applied[1]!);
    w.fault_injection!.abort!.percentage = 101;
    expect(() => decodeTrafficPolicy(w)).toThrow(/fault_injection\.abort\.percentage: 101/);
  });

  test('described for people', () => {
    expect(describeTrafficPolicy(applied[1]!)).toBe(
      'BackendTrafficPolicy shop/fi: faultInjection delay 250ms for 33.5% (flag DI), abort HTTP 503 for 50% (flag FI, never retried) of requests with x-fault ~ "on|yes"',
    );
  });
});
