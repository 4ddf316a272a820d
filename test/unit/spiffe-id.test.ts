import { describe, expect, test } from 'vitest';
import { AmbitError, ErrorCode } from '../../src/errors.js';
import { SpiffeId } from '../../src/identity/spiffe-id.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

describe('SpiffeId.parse', () => {
  test.each([
    ['spiffe://cluster.local/ns/shop/sa/web', 'cluster.local', 'shop', 'web'],
    ['spiffe://example.org/ns/default/sa/default', 'example.org', 'default', 'default'],
    ['spiffe://td_1.example-2/ns/a-b/sa/x.y-z', 'td_1.example-2', 'a-b', 'x.y-z'],
    ['spiffe://t/ns/a/sa/b', 't', 'a', 'b'],
    ['spiffe://cluster.local/ns/0/sa/9sa', 'cluster.local', '0', '9sa'],
  ])('%s', (uri, trustDomain, namespace, serviceAccount) => {
    const id = SpiffeId.parse(uri);
    expect({
      trustDomain: id.trustDomain,
      namespace: id.namespace,
      serviceAccount: id.serviceAccount,
    }).toEqual({
      trustDomain,
      namespace,
      serviceAccount,
    });
    expect(id.toString()).toBe(uri);
  });

  test.each([
    ['wrong scheme', 'https://cluster.local/ns/shop/sa/web', 'is not a workload identity'],
    ['scheme in upper case', 'SPIFFE://cluster.local/ns/shop/sa/web', 'is not a workload identity'],
    ['missing sa', 'spiffe://cluster.local/ns/shop', 'is not a workload identity'],
    ['empty sa', 'spiffe://cluster.local/ns/shop/sa/', 'is not a workload identity'],
    ['missing ns', 'spiffe://cluster.local/sa/web', 'is not a workload identity'],
    ['extra segments', 'spiffe://cluster.local/ns/shop/sa/web/extra', 'is not a workload identity'],
    ['trailing slash', 'spiffe://cluster.local/ns/shop/sa/web/', 'is not a workload identity'],
    ['swapped keywords', 'spiffe://cluster.local/sa/web/ns/shop', 'is not a workload identity'],
    ['no trust domain', 'spiffe:///ns/shop/sa/web', 'is not a workload identity'],
    ['empty string', '', 'is not a workload identity'],
    ['query string', 'spiffe://cluster.local/ns/shop/sa/web?x=1', 'service account "web?x=1"'],
    [
      'trust domain with a port',
      'spiffe://cluster.local:8443/ns/shop/sa/web',
      'trust domain "cluster.local:8443"',
    ],
    ['trust domain with upper case', 'spiffe://Cluster.Local/ns/shop/sa/web', 'trust domain "Cluster.Local"'],
    ['trust domain starting with a dot', 'spiffe://.local/ns/shop/sa/web', 'trust domain ".local"'],
    ['namespace with upper case', 'spiffe://cluster.local/ns/Shop/sa/web', 'namespace "Shop"'],
    ['namespace ending with a dash', 'spiffe://cluster.local/ns/shop-/sa/web', 'namespace "shop-"'],
    ['service account with upper case', 'spiffe://cluster.local/ns/shop/sa/Web', 'service account "Web"'],
    ['service account with an underscore', 'spiffe://cluster.local/ns/shop/sa/w_b', 'service account "w_b"'],
  ])('%s: %s is refused', (_what, uri, message) => {
    const err = thrown(() => SpiffeId.parse(uri));
    expect(err).toBeInstanceOf(AmbitError);
    expect((err as AmbitError).code).toBe(ErrorCode.IDENTITY);
    expect((err as AmbitError).message).toContain(message);
    expect(SpiffeId.tryParse(uri)).toBeUndefined();
  });

  test('the error names the value and the expected form', () => {
    expect(() => SpiffeId.parse('spiffe://cluster.local/ns/shop')).toThrow(
      '"spiffe://cluster.local/ns/shop" is not a workload identity (spiffe://<trust-domain>/ns/<ns>/sa/<sa>)',
    );
  });
});

describe('SpiffeId.of / tryParse / equals', () => {
  test('of builds the Istio form', () => {
    expect(SpiffeId.of('cluster.local', 'shop', 'web').toString()).toBe(
      'spiffe://cluster.local/ns/shop/sa/web',
    );
  });

  test.each([
    ['Cluster.local', 'shop', 'web', 'trust domain "Cluster.local" is not valid'],
    ['', 'shop', 'web', 'trust domain "" is not valid'],
    ['cluster.local', '', 'web', 'namespace "" is not valid in a SPIFFE id'],
    ['cluster.local', 'a/b', 'web', 'namespace "a/b" is not valid in a SPIFFE id'],
    ['cluster.local', 'shop', 'WEB', 'service account "WEB" is not valid in a SPIFFE id'],
  ])('of(%j, %j, %j) is refused', (td, ns, sa, message) => {
    const err = thrown(() => SpiffeId.of(td, ns, sa));
    expect(err).toMatchObject({ code: ErrorCode.IDENTITY, message });
  });

  test('tryParse returns the id for a valid URI', () => {
    expect(SpiffeId.tryParse('spiffe://cluster.local/ns/shop/sa/web')?.serviceAccount).toBe('web');
  });

  test.each([
    ['spiffe://cluster.local/ns/shop/sa/web', 'spiffe://cluster.local/ns/shop/sa/web', true],
    ['spiffe://cluster.local/ns/shop/sa/web', 'spiffe://cluster.local/ns/shop/sa/api', false],
    ['spiffe://cluster.local/ns/shop/sa/web', 'spiffe://cluster.local/ns/dev/sa/web', false],
    ['spiffe://cluster.local/ns/shop/sa/web', 'spiffe://other.org/ns/shop/sa/web', false],
  ])('%s equals %s: %s', (a, b, same) => {
    expect(SpiffeId.parse(a).equals(SpiffeId.parse(b))).toBe(same);
    expect(SpiffeId.parse(b).equals(SpiffeId.parse(a))).toBe(same);
  });

  test('an id from of equals the same id parsed', () => {
    expect(
      SpiffeId.of('cluster.local', 'shop', 'web').equals(
        SpiffeId.parse('spiffe://cluster.local/ns/shop/sa/web'),
      ),
    ).toBe(true);
  });
});
