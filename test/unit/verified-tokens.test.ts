import { describe, expect, test } from 'vitest';
import { VERIFIED_TOKEN_MAX_LENGTH, VerifiedTokens } from '../../src/l7-waypoint/verified-tokens.js';

describe('VerifiedTokens: what a verified token is taken for on its next request', () => {
  const keys = {};
  const at = (s: number) => s * 1000;

  test.each([
    { what: 'the same token, rule and keys, before exp', rule: 'r', keys, now: 1000, hit: true },
    { what: 'within the clock skew after exp', rule: 'r', keys, now: 1059, hit: true },
    { what: 'at exp + skew: expired', rule: 'r', keys, now: 1060, hit: false },
    { what: 'another rule (issuer, audiences)', rule: 'other', keys, now: 1000, hit: false },
    { what: 'another key set (a refresh, a rotation)', rule: 'r', keys: {}, now: 1000, hit: false },
  ])('$what: hit $hit', ({ rule, keys: k, now, hit }) => {
    const v = new VerifiedTokens(60);
    v.put('r', 'token', keys, { sub: 'alice', exp: 1000 });
    expect(v.get(rule, 'token', k, at(now)) !== undefined).toBe(hit);
  });

  test('a token without exp is kept; an expired entry is dropped when found', () => {
    const v = new VerifiedTokens(60);
    v.put('r', 'forever', keys, { sub: 'a' });
    v.put('r', 'short', keys, { sub: 'b', exp: 10 });
    expect(v.get('r', 'forever', keys, at(1e9))).toEqual({ sub: 'a' });
    expect(v.get('r', 'short', keys, at(100))).toBeUndefined();
    expect(v.size).toBe(1);
  });

  test('bounded: the least recently used goes first; long tokens are not kept', () => {
    const v = new VerifiedTokens(60, 2);
    v.put('r', 'a', keys, { n: 1 });
    v.put('r', 'b', keys, { n: 2 });
    expect(v.get('r', 'a', keys, 0)).toEqual({ n: 1 });
    v.put('r', 'c', keys, { n: 3 });
    expect(v.get('r', 'b', keys, 0)).toBeUndefined();
    expect(v.get('r', 'a', keys, 0)).toEqual({ n: 1 });
    expect(v.get('r', 'c', keys, 0)).toEqual({ n: 3 });
    v.put('r', 'x'.repeat(VERIFIED_TOKEN_MAX_LENGTH + 1), keys, { n: 4 });
    expect(v.size).toBe(2);
  });
});
