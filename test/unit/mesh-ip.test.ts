import { describe, expect, test } from 'vitest';
import { bytes16ToIp, canonicalIp, hostPort, inCidr, ipToBytes16 } from '../../src/net/ip.js';

describe('ipToBytes16 / bytes16ToIp', () => {
  test.each<{ what: string; ip: string; hex: string; back: string }>([
    {
      what: 'IPv4 becomes the IPv4-mapped form',
      ip: '10.244.0.2',
      hex: '00000000000000000000ffff0af40002',
      back: '10.244.0.2',
    },
    { what: 'IPv4 0.0.0.0', ip: '0.0.0.0', hex: '00000000000000000000ffff00000000', back: '0.0.0.0' },
    {
      what: 'IPv4 255.255.255.255',
      ip: '255.255.255.255',
      hex: '00000000000000000000ffffffffffff',
      back: '255.255.255.255',
    },
    {
      what: 'mapped spelling is IPv4',
      ip: '::ffff:10.0.0.1',
      hex: '00000000000000000000ffff0a000001',
      back: '10.0.0.1',
    },
    {
      what: 'full IPv6 without ::',
      ip: '2001:db8:1:2:3:4:5:6',
      hex: '20010db8000100020003000400050006',
      back: '2001:db8:1:2:3:4:5:6',
    },
    {
      what: 'IPv6 with :: in the middle',
      ip: 'fd00:10:244::2',
      hex: 'fd000010024400000000000000000002',
      back: 'fd00:10:244::2',
    },
    { what: 'unspecified', ip: '::', hex: '00000000000000000000000000000000', back: '::' },
    { what: 'loopback (leading run)', ip: '::1', hex: '00000000000000000000000000000001', back: '::1' },
    { what: 'trailing run', ip: 'fe80::', hex: 'fe800000000000000000000000000000', back: 'fe80::' },
    {
      what: 'leading zeros in groups are dropped',
      ip: '2001:0db8:0000:0000:0000:0000:0000:0001',
      hex: '20010db8000000000000000000000001',
      back: '2001:db8::1',
    },
    {
      what: 'upper-case hex becomes lower-case',
      ip: 'FD00:ABCD::EF',
      hex: 'fd00abcd0000000000000000000000ef',
      back: 'fd00:abcd::ef',
    },
  ])('$what: $ip', ({ ip, hex, back }) => {
    const bytes = ipToBytes16(ip);
    expect(bytes.toString('hex')).toBe(hex);
    expect(bytes16ToIp(bytes)).toBe(back);
    expect(ipToBytes16(back).equals(bytes)).toBe(true);
  });

  test.each([
    ['longest zero run is compressed', '1:0:0:1:0:0:0:1', '1:0:0:1::1'],
    ['first run on a tie', '1:0:0:2:0:0:3:4', '1::2:0:0:3:4'],
    ['first run on a tie, runs of three', '1:0:0:0:2:0:0:0', '1::2:0:0:0'],
    ['a single zero group is not compressed', '2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['a single zero group at the end is not compressed', '1:2:3:4:5:6:7:0', '1:2:3:4:5:6:7:0'],
    ['a single zero group at the start is not compressed', '0:2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['leading run of two', '0:0:3:4:5:6:7:8', '::3:4:5:6:7:8'],
    ['trailing run of two', '1:2:3:4:5:6:0:0', '1:2:3:4:5:6::'],
    ['a later longer run wins over an earlier one', '1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['all zero', '0:0:0:0:0:0:0:0', '::'],
    ['zero groups written out in full', '0000:0000:0000:0000:0000:0000:0000:0001', '::1'],
    ['compressed input is recompressed canonically', '1::0:0:1', '1::1'],
    ['all-zero first ten bytes and ffff is IPv4', '0:0:0:0:0:ffff:a00:1', '10.0.0.1'],
    ['ffff elsewhere is not IPv4-mapped', '0:0:0:0:ffff:0:a00:1', '::ffff:0:a00:1'],
  ])('RFC 5952: %s (%s -> %s)', (_what, ip, text) => {
    expect(bytes16ToIp(ipToBytes16(ip))).toBe(text);
  });

  test.each(['not-an-ip', '10.0.0.256', '1:2:3:4:5:6:7:8:9', '', '10.0.0.0/8'])('%j is rejected', (ip) => {
    expect(() => ipToBytes16(ip)).toThrow(`${JSON.stringify(ip)} is not an IP address`);
  });
});

describe('canonicalIp', () => {
  test.each([
    ['10.0.0.1', '10.0.0.1'],
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['::FFFF:10.0.0.1', '10.0.0.1'],
    ['FD00::A', 'fd00::a'],
    ['fd00:0:0:0:0:0:0:a', 'fd00::a'],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::1', '::1'],
  ])('%s -> %s', (ip, canonical) => {
    expect(canonicalIp(ip)).toBe(canonical);
  });
});

describe('hostPort', () => {
  test.each([
    ['10.0.0.1', 80, '10.0.0.1:80'],
    ['fd00::1', 15008, '[fd00::1]:15008'],
    ['::1', 0, '[::1]:0'],
  ])('%s port %d -> %s', (ip, port, text) => {
    expect(hostPort(ip, port)).toBe(text);
  });
});

describe('inCidr', () => {
  test.each<[string, string, boolean]>([
    ['10.1.2.3', '0.0.0.0/0', true],
    ['255.255.255.255', '0.0.0.0/0', true],
    ['10.1.2.3', '10.0.0.0/8', true],
    ['11.1.2.3', '10.0.0.0/8', false],
    ['10.1.2.3', '10.1.2.0/24', true],
    ['10.1.3.3', '10.1.2.0/24', false],
    ['10.1.2.3', '10.1.2.3/32', true],
    ['10.1.2.4', '10.1.2.3/32', false],
    ['10.1.2.3', '10.1.2.3', true],
    ['10.1.2.4', '10.1.2.3', false],
    ['172.16.5.1', '172.16.0.0/12', true],
    ['172.32.0.1', '172.16.0.0/12', false],
    ['::ffff:10.1.2.3', '10.0.0.0/8', true],
    ['fd00:1:2::5', 'fd00:1:2::/48', true],
    ['fd00:1:3::5', 'fd00:1:2::/48', false],
    ['fd00:1:2:3::5', 'fd00:1:2:3::/64', true],
    ['fd00:1:2:4::5', 'fd00:1:2:3::/64', false],
    ['fd00::5', 'fd00::5/128', true],
    ['fd00::6', 'fd00::5/128', false],
    ['fd00::5', 'fd00::5', true],
    ['FD00::5', 'fd00::5', true],
    ['fd00::6', 'fd00::5', false],
    ['2001:db8::1', '::/0', true],
    ['10.1.2.3', '::/0', false],
    ['::1', '0.0.0.0/0', false],
    ['10.1.2.3', 'fd00::/8', false],
    ['fd00::1', '10.0.0.0/8', false],
  ])('%s in %s: %s', (ip, cidr, inside) => {
    expect(inCidr(ip, cidr)).toBe(inside);
  });
});

describe('IPv6 with an embedded IPv4 tail or a zone', () => {
  test.each([
    ['64:ff9b::1.2.3.4', '64:ff9b::102:304'],
    ['::ffff:0:1.2.3.4', '::ffff:0:102:304'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ['fe80::1%eth0', 'fe80::1'],
  ])('%s is %s', (input, canonical) => {
    expect(canonicalIp(input)).toBe(canonical);
  });

  test('an embedded IPv4 CIDR matches the addresses inside it', () => {
    expect(inCidr('64:ff9b::a00:5', '64:ff9b::10.0.0.0/120')).toBe(true);
    expect(inCidr('64:ff9b::b00:5', '64:ff9b::10.0.0.0/120')).toBe(false);
  });
});
