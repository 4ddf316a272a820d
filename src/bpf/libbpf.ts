import { closeSync } from 'node:fs';
import { DataType, load, open } from 'ffi-rs';
import { AmbitError, ErrorCode } from '../errors.js';

/**
 * The only module that touches the native binding: libbpf (and the few libc socket calls Node lacks)
 * through ffi-rs. It is one file of over 400 lines on purpose: the rule of the house (checked by
 * dependency-cruiser) is that ffi-rs is touched in exactly one adapter. Everything else uses the small `Bpf` interface and `transparentListener` below, so
 * that callers never see pointers, and tests can drive a fake.
 *
 * Opaque libbpf pointers are carried as plain numbers (user-space addresses fit in 2^53), and NULL
 * pointer arguments are passed as a 64-bit zero: on x86-64 and arm64 both travel in the same register.
 * Buffers (keys, values, info structs) are passed zero-copy as U8Array.
 */

/** Attach types used by Ambit (enum bpf_attach_type in <linux/bpf.h>). */
export const AttachType = {
  CgroupInetIngress: 0,
  CgroupSockOps: 3,
  CgroupInet4Connect: 10,
  CgroupInet6Connect: 11,
  SkLookup: 36,
} as const;
export type AttachType = (typeof AttachType)[keyof typeof AttachType];

export const MapUpdate = { Any: 0, NoExist: 1, Exist: 2 } as const;

export interface LoadedObject {
  /** Program fds by function name. Valid until `close()`. */
  readonly programs: Readonly<Record<string, number>>;
  /** Map fds by map name (reused ones included). Valid until `close()`. */
  readonly maps: Readonly<Record<string, number>>;
  close(): void;
}

/**
 * A key and value buffer bound to one map for hot paths: the FFI call passes raw addresses instead of
 * buffers, which halves its cost (the proxy takes one original destination per connection).
 */
export interface MapSlot {
  readonly key: Buffer;
  readonly value: Buffer;
  lookup(): boolean;
  lookupAndDelete(): boolean;
}

export interface LinkInfo {
  readonly id: number;
  readonly progId: number;
  readonly type: number;
  /** What the link is attached to: a cgroup id, or for netns links the namespace inode. */
  readonly targetId: bigint;
}

/** What Ambit needs from libbpf. */
export interface Bpf {
  /** Opens and loads an object file; maps named in `reuse` use the given (pinned) map fds instead of new maps. */
  loadObject(path: string, reuse?: Readonly<Record<string, number>>): LoadedObject;
  /** fd of a pinned object, or undefined when nothing is pinned there. */
  objGet(path: string): number | undefined;
  objPin(fd: number, path: string): void;
  linkCreate(progFd: number, targetFd: number, type: AttachType): number;
  linkUpdate(linkFd: number, newProgFd: number): void;
  linkInfo(linkFd: number): LinkInfo;
  /** The program's tag: a hash of its instructions, equal for equal programs. */
  progTag(progFd: number): string;
  progIdTag(progId: number): string | undefined;
  /** Ids of the programs attached to a cgroup for one attach type (effective or directly attached). */
  progQuery(cgroupFd: number, type: AttachType): number[];
  mapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags?: number): void;
  mapLookup(fd: number, key: Uint8Array, value: Uint8Array): boolean;
  mapLookupAndDelete(fd: number, key: Uint8Array, value: Uint8Array): boolean;
  mapDelete(fd: number, key: Uint8Array): boolean;
  /** All keys of a map (keySize bytes each). */
  mapKeys(fd: number, keySize: number): Buffer[];
  mapSlot(fd: number, keySize: number, valueSize: number): MapSlot;
  close(fd: number): void;
}

const LIB = 'ambit-libbpf';
const LIBC = 'c-for-ambit';
const LIBBPF_PATHS = [
  'libbpf.so.1',
  '/usr/lib/x86_64-linux-gnu/libbpf.so.1',
  '/usr/lib/aarch64-linux-gnu/libbpf.so.1',
  '/usr/lib64/libbpf.so.1',
];

const ERRNO: Readonly<Record<number, string>> = {
  1: 'EPERM (needs root / CAP_BPF)',
  2: 'ENOENT',
  7: 'E2BIG',
  9: 'EBADF',
  13: 'EACCES (verifier rejected the program)',
  16: 'EBUSY',
  17: 'EEXIST',
  22: 'EINVAL',
  28: 'ENOSPC',
  95: 'EOPNOTSUPP',
};

function errnoName(n: number): string {
  return ERRNO[n] ?? `errno ${n}`;
}

function fail(what: string, ret: number, hint = ''): never {
  throw new AmbitError(ErrorCode.BPF, `${what}: ${errnoName(-ret)}${hint === '' ? '' : ` (${hint})`}`);
}

let opened = false;

function openLibbpf(): void {
  if (opened) return;
  let last: unknown;
  for (const path of LIBBPF_PATHS) {
    try {
      open({ library: LIB, path });
      open({ library: LIBC, path: 'libc.so.6' });
      opened = true;
      return;
    } catch (err) {
      last = err;
    }
  }
  throw new AmbitError(ErrorCode.PRECONDITION, 'libbpf.so.1 not found (install libbpf1: `make deps`)', {
    cause: last,
  });
}

const I32 = DataType.I32;
const I64 = DataType.I64;
const U8A = DataType.U8Array;
const STR = DataType.String;

type Ret = DataType.I32 | DataType.I64 | DataType.String | DataType.Void;

/**
 * One libbpf call. ffi-rs's `load` is measured faster here than `define`d functions (3.7 us vs 7.7 us
 * per call), and it lets one symbol be called with two signatures (a NULL or a buffer argument).
 * The params object is built fresh per call: reusing one across calls corrupted the heap.
 */
function call(funcName: string, retType: Ret, paramsType: DataType[], paramsValue: unknown[]): number {
  openLibbpf();
  return load({ library: LIB, funcName, retType, paramsType, paramsValue }) as unknown as number;
}

function callStr(funcName: string, ptr: number): string {
  openLibbpf();
  return load({
    library: LIB,
    funcName,
    retType: STR,
    paramsType: [I64],
    paramsValue: [ptr],
  }) as unknown as string;
}

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM_NONBLOCK_CLOEXEC = 1 | 0o4000 | 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SOL_IP = 0;
const IP_TRANSPARENT = 19;
const SOL_IPV6 = 41;
const IPV6_V6ONLY = 26;
const IPV6_TRANSPARENT = 75;

function libc(
  funcName: string,
  paramsType: DataType[],
  paramsValue: unknown[],
): { value: number; errnoCode: number } {
  openLibbpf();
  return load({ library: LIBC, funcName, retType: I32, paramsType, paramsValue, errno: true }) as unknown as {
    value: number;
    errnoCode: number;
  };
}

/**
 * A listening TCP socket with IP_TRANSPARENT set, for TPROXY: it accepts connections addressed to any
 * address, and an accepted socket's local address is the original destination. Node cannot set the
 * option itself, so the socket is made here and handed to `net.Server.listen({ fd })`.
 */
export function transparentListener(family: 4 | 6, port: number, backlog = 511): number {
  const fail2 = (what: string, errno: number, fd?: number): never => {
    if (fd !== undefined) closeSync(fd);
    throw new AmbitError(ErrorCode.BPF, `transparent listener on port ${port}: ${what}: ${errnoName(errno)}`);
  };
  const s = libc(
    'socket',
    [I32, I32, I32],
    [family === 4 ? AF_INET : AF_INET6, SOCK_STREAM_NONBLOCK_CLOEXEC, 0],
  );
  if (s.value < 0) fail2('socket', s.errnoCode);
  const fd = s.value;
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  const opt = (level: number, name: number, what: string): void => {
    const r = libc('setsockopt', [I32, I32, I32, U8A, I32], [fd, level, name, one, 4]);
    if (r.value < 0) fail2(what, r.errnoCode, fd);
  };
  opt(SOL_SOCKET, SO_REUSEADDR, 'SO_REUSEADDR');
  if (family === 4) {
    opt(SOL_IP, IP_TRANSPARENT, 'IP_TRANSPARENT (needs CAP_NET_ADMIN)');
  } else {
    opt(SOL_IPV6, IPV6_V6ONLY, 'IPV6_V6ONLY');
    opt(SOL_IPV6, IPV6_TRANSPARENT, 'IPV6_TRANSPARENT (needs CAP_NET_ADMIN)');
  }
  // struct sockaddr_in / sockaddr_in6 for the wildcard address: family (host order), port (network order).
  const addr = Buffer.alloc(family === 4 ? 16 : 28);
  addr.writeUInt16LE(family === 4 ? AF_INET : AF_INET6, 0);
  addr.writeUInt16BE(port, 2);
  const b = libc('bind', [I32, U8A, I32], [fd, addr, addr.length]);
  if (b.value < 0) fail2('bind', b.errnoCode, fd);
  const l = libc('listen', [I32, I32], [fd, backlog]);
  if (l.value < 0) fail2('listen', l.errnoCode, fd);
  return fd;
}

/** The libbpf version, `major.minor`; throws when libbpf.so.1 cannot be loaded. */
export function libbpfVersion(): string {
  return `${call('libbpf_major_version', I32, [], [])}.${call('libbpf_minor_version', I32, [], [])}`;
}

/** libbpf through ffi-rs. */
export class Libbpf implements Bpf {
  constructor() {
    openLibbpf();
  }

  loadObject(path: string, reuse: Readonly<Record<string, number>> = {}): LoadedObject {
    openLibbpf();
    const res = load({
      library: LIB,
      funcName: 'bpf_object__open',
      retType: I64,
      paramsType: [STR],
      paramsValue: [path],
      errno: true,
    }) as unknown as {
      value: number;
      errnoCode: number;
    };
    if (res.value === 0) {
      throw new AmbitError(
        ErrorCode.BPF,
        `cannot open BPF object ${path}: ${errnoName(res.errnoCode)} (run \`make build\`)`,
      );
    }
    const obj = res.value;
    const eachMap = (fn: (m: number) => void): void => {
      for (
        let m = call('bpf_object__next_map', I64, [I64, I64], [obj, 0]);
        m !== 0;
        m = call('bpf_object__next_map', I64, [I64, I64], [obj, m])
      )
        fn(m);
    };
    const maps: Record<string, number> = {};
    const programs: Record<string, number> = {};
    try {
      eachMap((m) => {
        const name = callStr('bpf_map__name', m);
        const fd = reuse[name];
        if (fd !== undefined) {
          const r = call('bpf_map__reuse_fd', I32, [I64, I32], [m, fd]);
          if (r < 0) fail(`reuse pinned map ${name}`, r, 'its layout changed? remove the old pins');
        }
      });
      const r = call('bpf_object__load', I32, [I64], [obj]);
      if (r < 0) fail(`load BPF object ${path}`, r, 'the verifier log on stderr says why');
      eachMap((m) => {
        maps[callStr('bpf_map__name', m)] = call('bpf_map__fd', I32, [I64], [m]);
      });
      for (
        let p = call('bpf_object__next_program', I64, [I64, I64], [obj, 0]);
        p !== 0;
        p = call('bpf_object__next_program', I64, [I64, I64], [obj, p])
      ) {
        programs[callStr('bpf_program__name', p)] = call('bpf_program__fd', I32, [I64], [p]);
      }
    } catch (err) {
      call('bpf_object__close', DataType.Void, [I64], [obj]);
      throw err;
    }
    let closed = false;
    return {
      programs,
      maps,
      close: () => {
        if (!closed) call('bpf_object__close', DataType.Void, [I64], [obj]);
        closed = true;
      },
    };
  }

  objGet(path: string): number | undefined {
    const fd = call('bpf_obj_get', I32, [STR], [path]);
    if (fd === -2) return undefined;
    if (fd < 0) fail(`open pinned ${path}`, fd);
    return fd;
  }

  objPin(fd: number, path: string): void {
    const r = call('bpf_obj_pin', I32, [I32, STR], [fd, path]);
    if (r < 0) fail(`pin ${path}`, r, 'is bpffs mounted?');
  }

  linkCreate(progFd: number, targetFd: number, type: AttachType): number {
    const fd = call('bpf_link_create', I32, [I32, I32, I32, I64], [progFd, targetFd, type, 0]);
    if (fd < 0) fail(`attach program (attach type ${type})`, fd);
    return fd;
  }

  linkUpdate(linkFd: number, newProgFd: number): void {
    const r = call('bpf_link_update', I32, [I32, I32, I64], [linkFd, newProgFd, 0]);
    if (r < 0) fail('replace the program of a link', r);
  }

  private objInfo(fd: number, size: number, what: string): Buffer {
    const info = Buffer.alloc(size);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(size);
    const r = call('bpf_obj_get_info_by_fd', I32, [I32, U8A, U8A], [fd, info, len]);
    if (r < 0) fail(`read ${what} info`, r);
    return info;
  }

  linkInfo(linkFd: number): LinkInfo {
    // struct bpf_link_info: type, id, prog_id (u32 each), 4 bytes padding, then a union: for cgroup
    // links cgroup_id (u64); for netns links netns_ino (u32).
    const info = this.objInfo(linkFd, 96, 'link');
    const type = info.readUInt32LE(0);
    const BPF_LINK_TYPE_NETNS = 5;
    return {
      type,
      id: info.readUInt32LE(4),
      progId: info.readUInt32LE(8),
      targetId: type === BPF_LINK_TYPE_NETNS ? BigInt(info.readUInt32LE(16)) : info.readBigUInt64LE(16),
    };
  }

  progTag(progFd: number): string {
    // struct bpf_prog_info: type, id (u32 each), then tag[8].
    return this.objInfo(progFd, 256, 'program').subarray(8, 16).toString('hex');
  }

  progIdTag(progId: number): string | undefined {
    const fd = call('bpf_prog_get_fd_by_id', I32, [I32], [progId]);
    if (fd < 0) return undefined;
    try {
      return this.progTag(fd);
    } finally {
      closeSync(fd);
    }
  }

  progQuery(cgroupFd: number, type: AttachType): number[] {
    const attachFlags = Buffer.alloc(4);
    const ids = Buffer.alloc(4 * 64);
    const cnt = Buffer.alloc(4);
    cnt.writeUInt32LE(64);
    // query_flags 0: programs attached to this very cgroup, not the ones it inherits.
    const r = call(
      'bpf_prog_query',
      I32,
      [I32, I32, I32, U8A, U8A, U8A],
      [cgroupFd, type, 0, attachFlags, ids, cnt],
    );
    if (r < 0) fail('query cgroup programs', r);
    return Array.from({ length: cnt.readUInt32LE(0) }, (_, i) => ids.readUInt32LE(i * 4));
  }

  mapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags: number = MapUpdate.Any): void {
    const r = call('bpf_map_update_elem', I32, [I32, U8A, U8A, I64], [fd, key, value, flags]);
    if (r < 0) fail('update map entry', r);
  }

  mapLookup(fd: number, key: Uint8Array, value: Uint8Array): boolean {
    const r = call('bpf_map_lookup_elem', I32, [I32, U8A, U8A], [fd, key, value]);
    if (r === -2) return false;
    if (r < 0) fail('look up map entry', r);
    return true;
  }

  mapLookupAndDelete(fd: number, key: Uint8Array, value: Uint8Array): boolean {
    const r = call('bpf_map_lookup_and_delete_elem', I32, [I32, U8A, U8A], [fd, key, value]);
    if (r === -2) return false;
    if (r < 0) fail('take map entry', r);
    return true;
  }

  mapDelete(fd: number, key: Uint8Array): boolean {
    const r = call('bpf_map_delete_elem', I32, [I32, U8A], [fd, key]);
    if (r === -2) return false;
    if (r < 0) fail('delete map entry', r);
    return true;
  }

  mapKeys(fd: number, keySize: number): Buffer[] {
    const keys: Buffer[] = [];
    let next = Buffer.alloc(keySize);
    // The first key: bpf_map_get_next_key with a NULL key.
    let r = call('bpf_map_get_next_key', I32, [I32, I64, U8A], [fd, 0, next]);
    while (r === 0) {
      keys.push(next);
      const cur = next;
      next = Buffer.alloc(keySize);
      r = call('bpf_map_get_next_key', I32, [I32, U8A, U8A], [fd, cur, next]);
    }
    if (r !== -2) fail('list map keys', r);
    return keys;
  }

  mapSlot(fd: number, keySize: number, valueSize: number): MapSlot {
    // A buffer of its own (never pooled), whose backing store V8 never moves: its address, learnt
    // once, stays valid for as long as the slot holds it.
    const mem = Buffer.allocUnsafeSlow(keySize + valueSize);
    mem.fill(0);
    const base = load({
      library: LIBC,
      funcName: 'memmove',
      retType: I64,
      paramsType: [U8A, U8A, I64],
      paramsValue: [mem, mem, 0],
    }) as unknown as number;
    const key = mem.subarray(0, keySize);
    const value = mem.subarray(keySize);
    const raw = (funcName: string): boolean => {
      const r = call(funcName, I32, [I32, I64, I64], [fd, base, base + keySize]);
      if (r === -2) return false;
      if (r < 0) fail(`${funcName}`, r);
      return true;
    };
    return {
      key,
      value,
      lookup: () => raw('bpf_map_lookup_elem'),
      lookupAndDelete: () => raw('bpf_map_lookup_and_delete_elem'),
    };
  }

  close(fd: number): void {
    closeSync(fd);
  }
}
