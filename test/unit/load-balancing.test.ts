import { describe, expect, test } from 'vitest';
import { Balancer } from '../../src/mesh/load-balancer.js';
import { cookieValue, hashKeyOf, ipOf, setCookieValue } from '../../src/mesh/load-balancer-hash-key.js';
import { hash32, MaglevTable } from '../../src/mesh/load-balancer-maglev.js';
import type { HashOn, LoadBalancer } from '../../src/traffic-policy/balancing.js';

const eps = (n: number): string[] => Array.from({ length: n }, (_, i) => `10.0.0.${i + 1}:8080`);
const keys = Array.from({ length: 20_000 }, (_, i) => `user-${i}`);
const assign = (t: MaglevTable): string[] => keys.map((k) => t.lookup(hash32(k))!);

describe('Maglev table', () => {
  test.each([
    { n: 3, size: 65537 },
    { n: 10, size: 65537 },
    { n: 5, size: 251 },
  ])('$n endpoints in $size slots: each owns about size/n of them', ({ n, size }) => {
    const t = new MaglevTable(eps(n), size);
    const owned = new Map<string, number>();
    for (let s = 0; s < size; s++) owned.set(t.lookup(s)!, (owned.get(t.lookup(s)!) ?? 0) + 1);
    expect(owned.size).toBe(n);
    for (const c of owned.values())
      expect(Math.abs(c - size / n)).toBeLessThanOrEqual(Math.ceil(size / n) * 0.02 + 1);
  });

  test('the table does not depend on the order the endpoints are listed in', () => {
    const a = new MaglevTable(eps(5), 65537);
    const b = new MaglevTable([...eps(5)].reverse(), 65537);
    expect(assign(a)).toEqual(assign(b));
  });

  test.each([3, 5, 10])('removing one of %i endpoints moves only its keys and few others', (n) => {
    const before = assign(new MaglevTable(eps(n), 65537));
    const gone = eps(n)[1]!;
    const after = assign(
      new MaglevTable(
        eps(n).filter((e) => e !== gone),
        65537,
      ),
    );
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] === gone) expect(after[i]).not.toBe(gone);
      else if (after[i] !== before[i]) moved++;
    }
    // Keys of the endpoints that stay: Maglev keeps nearly all of them where they were.
    expect(moved / keys.length).toBeLessThan(0.05);
  });

  test.each([3, 5, 10])('adding an endpoint to %i moves about 1/(n+1) of the keys', (n) => {
    const before = assign(new MaglevTable(eps(n), 65537));
    const after = assign(new MaglevTable(eps(n + 1), 65537));
    const moved = before.filter((e, i) => after[i] !== e).length / keys.length;
    expect(moved).toBeGreaterThan(0.5 / (n + 1));
    expect(moved).toBeLessThan(1.5 / (n + 1));
  });

  test('an empty set has no endpoint', () => {
    expect(new MaglevTable([], 7).lookup(3)).toBeUndefined();
  });
});

describe('Balancer', () => {
  const list = eps(3);
  const facts = (
    over: Partial<{ active: (e: string) => number; random: () => number; hashKey: string }> = {},
  ) => ({
    name: (e: string) => e,
    active: over.active ?? (() => 0),
    random: over.random ?? (() => 0),
    ...(over.hashKey === undefined ? {} : { hashKey: over.hashKey }),
  });

  test('RoundRobin takes each in turn, per Service', () => {
    const b = new Balancer();
    const rr: LoadBalancer = { type: 'RoundRobin' };
    const picks = [0, 1, 2, 3].map(() => b.pick('a', rr, list, facts()));
    expect(picks).toEqual([list[0], list[1], list[2], list[0]]);
    expect(b.pick('b', rr, list, facts())).toBe(list[0]);
  });

  test.each([
    { r: 0, want: 0 },
    { r: 0.5, want: 1 },
    { r: 0.99, want: 2 },
  ])('Random with draw $r picks endpoint $want', ({ r, want }) => {
    expect(new Balancer().pick('s', { type: 'Random' }, list, facts({ random: () => r }))).toBe(list[want]);
  });

  test('LeastRequest of the two drawn takes the one with fewer in flight', () => {
    const draws = [0, 0]; // first index 0, second index 1 (0 shifted past the first)
    const random = () => draws.shift() ?? 0;
    const active = (e: string) => (e === list[0] ? 5 : 1);
    expect(new Balancer().pick('s', { type: 'LeastRequest' }, list, facts({ active, random }))).toBe(list[1]);
  });

  test('ConsistentHash: one key, one endpoint, whatever the order and the draws; no key, a random one', () => {
    const ch: LoadBalancer = {
      type: 'ConsistentHash',
      hashOn: { type: 'Header', name: 'x-user' },
      tableSize: 65537,
    };
    const b = new Balancer();
    const one = b.pick('s', ch, list, facts({ hashKey: 'alice', random: () => 0 }));
    for (let i = 0; i < 20; i++)
      expect(b.pick('s', ch, [...list].reverse(), facts({ hashKey: 'alice', random: Math.random }))).toBe(
        one,
      );
    const spread = new Set(keys.slice(0, 300).map((k) => b.pick('s', ch, list, facts({ hashKey: k }))));
    expect(spread.size).toBe(3);
    expect(b.pick('s', ch, list, facts({ random: () => 0.99 }))).toBe(list[2]);
  });

  test('one candidate is that candidate, none is none', () => {
    expect(new Balancer().pick('s', { type: 'RoundRobin' }, [list[0]!], facts())).toBe(list[0]);
    expect(new Balancer().pick('s', { type: 'Random' }, [], facts())).toBeUndefined();
  });
});

describe('hash keys', () => {
  const req = (h: Record<string, string> = {}, cookies?: string | string[]) => ({
    header: (n: string) => h[n],
    cookies,
    sourceAddress: '10.1.2.3:40000',
    identity: 'spiffe://cluster.local/ns/shop/sa/web',
  });
  const cookie = (over: Partial<Extract<HashOn, { type: 'Cookie' }>> = {}): HashOn => ({
    type: 'Cookie',
    name: 'session',
    attributes: {},
    ...over,
  });

  test.each([
    {
      on: { type: 'Header', name: 'x-user' } as HashOn,
      r: req({ 'x-user': 'alice' }),
      want: { key: 'alice' },
    },
    { on: { type: 'Header', name: 'x-user' } as HashOn, r: req(), want: {} },
    { on: { type: 'SourceIP' } as HashOn, r: req(), want: { key: '10.1.2.3' } },
    {
      on: { type: 'SourceIdentity' } as HashOn,
      r: req(),
      want: { key: 'spiffe://cluster.local/ns/shop/sa/web' },
    },
    { on: cookie(), r: req({}, 'a=1; session=s-42'), want: { key: 's-42' } },
    { on: cookie(), r: req({}, ['a=1', 'session="q"']), want: { key: 'q' } },
    { on: cookie(), r: req(), want: {} },
    {
      on: cookie({ ttlMs: 60_000, attributes: { SameSite: 'Strict', Secure: '' } }),
      r: req(),
      want: { key: 'fresh', setCookie: 'session=fresh; Max-Age=60; HttpOnly; SameSite=Strict; Secure' },
    },
  ])('$on.type from $r.cookies: $want', ({ on, r, want }) => {
    expect(hashKeyOf(on, r, () => 'fresh')).toEqual(want);
  });

  test.each([
    ['10.0.0.1:80', '10.0.0.1'],
    ['[fd00::1]:80', 'fd00::1'],
    ['fd00::1', 'fd00::1'],
  ])('ipOf(%s) = %s', (a, want) => expect(ipOf(a)).toBe(want));

  test('cookieValue and setCookieValue', () => {
    expect(cookieValue('x=1;y=2', 'y')).toBe('2');
    expect(cookieValue('xy=1', 'x')).toBeUndefined();
    expect(setCookieValue('s', 'v', 1500, {})).toBe('s=v; Max-Age=1; HttpOnly');
  });
});
