import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import {
  decodeCgroupId,
  decodeOrigDst,
  decodePodConfig,
  encodeCgroupId,
  encodePodConfig,
  encodeProxyConfig,
  MAX_EXCLUDED_CIDRS,
  MAX_EXCLUDED_PORTS,
  ORIG_DST_SIZE,
  POD_CONFIG_SIZE,
  type PodRedirectConfig,
  PROXY_CONFIG_SIZE,
  TUPLE_KEY_SIZE,
  workloadId,
  writeTupleKey,
} from '../../src/bpf/redirect-maps.js';

describe('pod config codec', () => {
  test.each<{ what: string; config: PodRedirectConfig }>([
    { what: 'nothing excluded', config: { workloadId: 7n, excludedPorts: [], excludedCidrs: [] } },
    {
      what: 'ports only',
      config: { workloadId: 7n, excludedPorts: [1, 53, 5432, 65535], excludedCidrs: [] },
    },
    {
      what: 'IPv4 and IPv6 CIDRs',
      config: {
        workloadId: 0xfedcba9876543210n,
        excludedPorts: [],
        excludedCidrs: [
          '10.0.0.0/8',
          '169.254.169.254/32',
          '0.0.0.0/0',
          'fd00::/8',
          '2001:db8::1/128',
          '::/0',
        ],
      },
    },
    {
      what: 'both, at the limits',
      config: {
        workloadId: 1n,
        excludedPorts: Array.from({ length: MAX_EXCLUDED_PORTS }, (_, i) => 8000 + i),
        excludedCidrs: Array.from({ length: MAX_EXCLUDED_CIDRS }, (_, i) =>
          i % 2 === 0 ? `10.${i}.0.0/16` : `fd00:${i}::/32`,
        ),
      },
    },
  ])('round trip: $what', ({ config }) => {
    const b = encodePodConfig(config);
    expect(b.length).toBe(POD_CONFIG_SIZE);
    expect(decodePodConfig(b)).toEqual(config);
  });

  test.each([
    ['10.0.0.1', '10.0.0.1/32'],
    ['fd00::1', 'fd00::1/128'],
  ])('a bare address %s is the single host %s', (cidr, decoded) => {
    expect(
      decodePodConfig(encodePodConfig({ workloadId: 7n, excludedPorts: [], excludedCidrs: [cidr] }))
        .excludedCidrs,
    ).toEqual([decoded]);
  });

  test('byte layout: counts, little-endian ports, mapped addresses with prefix over 128 bits', () => {
    const b = encodePodConfig({
      workloadId: 0x0102030405060708n,
      excludedPorts: [0x1234, 80],
      excludedCidrs: ['10.1.0.0/16', 'fd00::/8'],
    });
    const expected = Buffer.alloc(POD_CONFIG_SIZE);
    expected.writeUInt32LE(2, 4);
    expected.writeUInt32LE(2, 8);
    Buffer.from('34125000', 'hex').copy(expected, 12);
    Buffer.from('00000000000000000000ffff0a010000', 'hex').copy(expected, 44);
    expected.writeUInt32LE(96 + 16, 60);
    Buffer.from('fd000000000000000000000000000000', 'hex').copy(expected, 64);
    expected.writeUInt32LE(8, 80);
    Buffer.from('0807060504030201', 'hex').copy(expected, 208);
    expect(b.toString('hex')).toBe(expected.toString('hex'));
  });

  test.each<{ what: string; config: PodRedirectConfig; message: string }>([
    {
      what: 'too many ports',
      config: {
        workloadId: 7n,
        excludedPorts: Array.from({ length: 17 }, (_, i) => i + 1),
        excludedCidrs: [],
      },
      message: 'at most 16 excluded ports are supported',
    },
    {
      what: 'too many CIDRs',
      config: {
        workloadId: 7n,
        excludedPorts: [],
        excludedCidrs: Array.from({ length: 9 }, (_, i) => `10.${i}.0.0/16`),
      },
      message: 'at most 8 excluded CIDRs are supported',
    },
  ])('$what is refused', ({ config, message }) => {
    expect(() => encodePodConfig(config)).toThrow(message);
  });
});

describe('proxy config, tuple key, original destination, cgroup id', () => {
  test('encodeProxyConfig without IPv6 (an IPv4-only node): the IPv6 address is all zeros, which connect6 reads as "no redirect"', () => {
    const b = encodeProxyConfig({ ip4: '10.0.0.7', port: 15001, podsLevel: 3 });
    expect(b.subarray(0, 16).toString('hex')).toBe('00000000000000000000ffff0a000007');
    expect(b.subarray(16, 32).toString('hex')).toBe('0'.repeat(32));
  });

  test('encodeProxyConfig: mapped IPv4, IPv6, little-endian port and pods level', () => {
    const b = encodeProxyConfig({ ip4: '10.244.0.1', ip6: 'fd00:10:244::1', port: 15001, podsLevel: 3 });
    expect(b.length).toBe(PROXY_CONFIG_SIZE);
    expect(b.toString('hex')).toBe(
      [
        '00000000000000000000ffff0af40001',
        'fd000010024400000000000000000001',
        '993a',
        '0000',
        '03000000',
      ].join(''),
    );
  });

  test.each([
    ['10.244.0.5', 40000, '00000000000000000000ffff0af40005', '409c'],
    ['::ffff:10.244.0.5', 1, '00000000000000000000ffff0af40005', '0100'],
    ['fd00:10:244::5', 65535, 'fd000010024400000000000000000005', 'ffff'],
  ])('writeTupleKey(%s, %d)', (ip, port, addrHex, portHex) => {
    const key = Buffer.alloc(TUPLE_KEY_SIZE, 0xaa);
    writeTupleKey(key, ip, port);
    expect(key.toString('hex')).toBe(`${addrHex}${portHex}0000`);
  });

  test.each([
    {
      what: 'IPv4 destination',
      hex: '00000000000000000000ffff0a60000a',
      port: 80,
      family: 2,
      cgroupId: 4242n,
      workloadId: 0x1122334455667788n,
      expected: { ip: '10.96.0.10', port: 80, family: 4, cgroupId: 4242n, workloadId: 0x1122334455667788n },
    },
    {
      what: 'IPv6 destination, 64-bit cgroup id',
      hex: 'fd00001000960000000000000000000a',
      port: 8443,
      family: 10,
      cgroupId: 0xfedcba9876543210n,
      workloadId: 0x8877665544332211n,
      expected: {
        ip: 'fd00:10:96::a',
        port: 8443,
        family: 6,
        cgroupId: 0xfedcba9876543210n,
        workloadId: 0x8877665544332211n,
      },
    },
  ])('decodeOrigDst: $what', ({ hex, port, family, cgroupId, workloadId, expected }) => {
    const b = Buffer.alloc(ORIG_DST_SIZE, 0);
    Buffer.from(hex, 'hex').copy(b, 0);
    b.writeUInt16LE(port, 16);
    b.writeUInt16LE(family, 18);
    b.writeUInt32LE(0xffffffff, 20);
    b.writeBigUInt64LE(cgroupId, 24);
    b.writeBigUInt64LE(workloadId, 32);
    expect(decodeOrigDst(b)).toEqual(expected);
  });

  test.each([0n, 1n, 123456789n, 0xffffffffffffffffn])(
    'cgroup id %s round trips as 8 little-endian bytes',
    (id) => {
      const b = encodeCgroupId(id);
      expect(b.length).toBe(8);
      expect(b.readBigUInt64LE(0)).toBe(id);
      expect(decodeCgroupId(b)).toBe(id);
    },
  );
});

describe('workloadId', () => {
  test.each(['uid-web', '0b5c1a2e-6f3d-4c1b-9a8e-2d7f4e6b1c3a', ''])(
    'workloadId(%j) is the first 8 bytes of SHA-256 of the uid, little-endian',
    (uid) => {
      const digest = createHash('sha256').update(uid).digest();
      const id = workloadId(uid);
      expect(id).toBe(digest.readBigUInt64LE(0));
      expect(id).not.toBe(0n);
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(id);
      expect(b.toString('hex')).toBe(digest.subarray(0, 8).toString('hex'));
    },
  );

  test('the same uid gives the same id, different uids different ids', () => {
    expect(workloadId('uid-a')).toBe(workloadId('uid-a'));
    expect(workloadId('uid-a')).not.toBe(workloadId('uid-b'));
  });

  test('a known value: sha256("uid-a") starts c1b41cff14418523', () => {
    expect(workloadId('uid-a')).toBe(0x23854114ff1cb4c1n);
  });
});

interface BtfMember {
  readonly name: string;
  readonly type_id: number;
  readonly bits_offset: number;
}
interface BtfType {
  readonly id: number;
  readonly kind: string;
  readonly name: string;
  readonly size?: number;
  readonly nr_elems?: number;
  readonly members?: readonly BtfMember[];
}

const OBJECT = fileURLToPath(new URL('../../bpf/redirect.bpf.o', import.meta.url));
let btfCache: readonly BtfType[] | undefined;

/** The BTF of the built object, as bpftool reports it. */
function btf(): readonly BtfType[] {
  if (btfCache !== undefined) return btfCache;
  if (!existsSync(OBJECT)) {
    throw new Error(
      `${OBJECT} is missing: run \`make build\` to compile the eBPF programs before the unit tests`,
    );
  }
  let out: string;
  try {
    out = execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', OBJECT], { encoding: 'utf8' });
  } catch (err) {
    throw new Error(`bpftool btf dump file ${OBJECT} failed (is bpftool installed? make deps)`, {
      cause: err,
    });
  }
  btfCache = (JSON.parse(out) as { types: BtfType[] }).types;
  return btfCache;
}

function struct(name: string): BtfType {
  const t = btf().find((x) => x.kind === 'STRUCT' && x.name === name);
  if (t === undefined) throw new Error(`struct ${name} is not in the BTF of ${OBJECT}`);
  return t;
}

/** Byte offset of a member, as the compiler laid it out. */
function offsetOf(structName: string, member: string): number {
  const m = struct(structName).members?.find((x) => x.name === member);
  if (m === undefined) throw new Error(`struct ${structName} has no member ${member}`);
  expect(m.bits_offset % 8).toBe(0);
  return m.bits_offset / 8;
}

function arrayLength(structName: string, member: string): number | undefined {
  const m = struct(structName).members?.find((x) => x.name === member);
  return btf().find((t) => t.id === m?.type_id)?.nr_elems;
}

describe('map layouts match bpf/redirect.bpf.o (BTF)', () => {
  test.each([
    ['pod_config', POD_CONFIG_SIZE],
    ['proxy_config', PROXY_CONFIG_SIZE],
    ['orig_dst', ORIG_DST_SIZE],
    ['tuple_key', TUPLE_KEY_SIZE],
    ['cidr', 20],
    ['addr16', 16],
  ])('sizeof(struct %s) is %d', (name, size) => {
    expect(struct(name).size).toBe(size);
  });

  test.each([
    ['pod_config', 'flags', 0],
    ['pod_config', 'n_ports', 4],
    ['pod_config', 'n_cidrs', 8],
    ['pod_config', 'excluded_ports', 12],
    ['pod_config', 'excluded_cidrs', 44],
    ['pod_config', 'workload_id', 208],
    ['cidr', 'addr', 0],
    ['cidr', 'prefix_len', 16],
    ['proxy_config', 'addr4', 0],
    ['proxy_config', 'addr6', 16],
    ['proxy_config', 'outbound_port', 32],
    ['proxy_config', 'pods_level', 36],
    ['orig_dst', 'addr', 0],
    ['orig_dst', 'port', 16],
    ['orig_dst', 'family', 18],
    ['orig_dst', 'cgroup_id', 24],
    ['orig_dst', 'workload_id', 32],
    ['tuple_key', 'addr', 0],
    ['tuple_key', 'port', 16],
    ['tuple_key', 'pad', 18],
  ])('%s.%s is at byte %d', (name, member, offset) => {
    expect(offsetOf(name, member)).toBe(offset);
  });

  test.each([
    ['excluded_ports', MAX_EXCLUDED_PORTS],
    ['excluded_cidrs', MAX_EXCLUDED_CIDRS],
  ])('pod_config.%s holds %d entries', (member, n) => {
    expect(arrayLength('pod_config', member)).toBe(n);
  });

  test('encodePodConfig writes every field where the kernel reads it', () => {
    const b = encodePodConfig({
      workloadId: 0xa1b2c3d4e5f60718n,
      excludedPorts: [5432, 6379],
      excludedCidrs: ['10.1.0.0/16', 'fd00::/8'],
    });
    const ports = offsetOf('pod_config', 'excluded_ports');
    const cidrs = offsetOf('pod_config', 'excluded_cidrs');
    const cidrSize = struct('cidr').size!;
    const addr = offsetOf('cidr', 'addr');
    const prefix = offsetOf('cidr', 'prefix_len');
    expect(b.readUInt32LE(offsetOf('pod_config', 'n_ports'))).toBe(2);
    expect(b.readUInt32LE(offsetOf('pod_config', 'n_cidrs'))).toBe(2);
    expect([b.readUInt16LE(ports), b.readUInt16LE(ports + 2)]).toEqual([5432, 6379]);
    expect(b.subarray(cidrs + addr, cidrs + addr + 16).toString('hex')).toBe(
      '00000000000000000000ffff0a010000',
    );
    expect(b.readUInt32LE(cidrs + prefix)).toBe(96 + 16);
    expect(b.subarray(cidrs + cidrSize + addr, cidrs + cidrSize + addr + 16).toString('hex')).toBe(
      'fd000000000000000000000000000000',
    );
    expect(b.readUInt32LE(cidrs + cidrSize + prefix)).toBe(8);
    expect(b.readBigUInt64LE(offsetOf('pod_config', 'workload_id'))).toBe(0xa1b2c3d4e5f60718n);
  });

  test('encodeProxyConfig writes every field where the kernel reads it', () => {
    const b = encodeProxyConfig({ ip4: '10.244.0.1', ip6: 'fd00::1', port: 15001, podsLevel: 4 });
    const a4 = offsetOf('proxy_config', 'addr4');
    const a6 = offsetOf('proxy_config', 'addr6');
    expect(b.subarray(a4, a4 + 16).toString('hex')).toBe('00000000000000000000ffff0af40001');
    expect(b.subarray(a6, a6 + 16).toString('hex')).toBe('fd000000000000000000000000000001');
    expect(b.readUInt16LE(offsetOf('proxy_config', 'outbound_port'))).toBe(15001);
    expect(b.readUInt32LE(offsetOf('proxy_config', 'pods_level'))).toBe(4);
  });

  test('writeTupleKey and decodeOrigDst use the kernel offsets', () => {
    const key = Buffer.alloc(TUPLE_KEY_SIZE);
    writeTupleKey(key, 'fd00::7', 40000);
    const ka = offsetOf('tuple_key', 'addr');
    expect(key.subarray(ka, ka + 16).toString('hex')).toBe('fd000000000000000000000000000007');
    expect(key.readUInt16LE(offsetOf('tuple_key', 'port'))).toBe(40000);

    const od = Buffer.alloc(ORIG_DST_SIZE);
    const oa = offsetOf('orig_dst', 'addr');
    Buffer.from('00000000000000000000ffff0a60000a', 'hex').copy(od, oa);
    od.writeUInt16LE(8080, offsetOf('orig_dst', 'port'));
    od.writeUInt16LE(2, offsetOf('orig_dst', 'family'));
    od.writeBigUInt64LE(77n, offsetOf('orig_dst', 'cgroup_id'));
    od.writeBigUInt64LE(0x0123456789abcdefn, offsetOf('orig_dst', 'workload_id'));
    expect(decodeOrigDst(od)).toEqual({
      ip: '10.96.0.10',
      port: 8080,
      family: 4,
      cgroupId: 77n,
      workloadId: 0x0123456789abcdefn,
    });
  });
});
