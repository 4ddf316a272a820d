import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Libbpf } from '../../src/bpf/libbpf.js';
import { ProgramName } from '../../src/bpf/redirect-maps.js';
import { RedirectPrograms, uninstallRedirect } from '../../src/node-agent/redirection/redirect-programs.js';
import { openOriginalDestinations } from '../../src/node-proxy/redirection-ebpf.js';
import { ensureBpffs } from '../../src/os/bpffs.js';
import { cgroupId, detectCgroup2Root, removeCgroupTree } from '../../src/os/cgroup.js';
import { createRootLogger } from '../../src/telemetry/logger.js';
import { ROOT, runCmd, waitFor } from './helpers.js';

/*
 * The redirection programs on their own, on the real kernel: cgroup sock_addr and sockops programs
 * cannot be driven by BPF_PROG_TEST_RUN, so every case is a real connect() from a process in a test
 * cgroup, inside a network namespace with a listener standing in for the node proxy.
 */

const NETNS = 'ambit-bpftest';
const OBJECT = join(ROOT, 'bpf/redirect.bpf.o');
const PROXY4 = '10.99.0.1';
const PROXY6 = 'fd00:99::1';
const OTHER4 = '10.99.0.7';
const log = createRootLogger({ name: 'bpf-test', level: 'fatal' });
const CGROUP_PROGRAMS = [ProgramName.connect4, ProgramName.connect6, ProgramName.sockops];

// Plain servers for traffic that must not be redirected: they say who they are.
const SERVER = `
import socket, sys, threading
def serve(fam, addr, port, tag):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(64)
    while True:
        c, peer = s.accept()
        c.sendall(("%s %s %d\\n" % (tag, peer[0], peer[1])).encode()); c.close()
for fam, addr, port, tag in [(socket.AF_INET, "${OTHER4}", 81, "direct"), (socket.AF_INET, "127.0.0.1", 9, "loopback")]:
    threading.Thread(target=serve, args=(fam, addr, port, tag), daemon=True).start()
print("listening", flush=True)
threading.Event().wait()
`;

// A client: connects, prints what the server said (or the error).
const CLIENT = `
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(3)
try:
    s.connect((host, port)); print(s.recv(200).decode().strip())
except Exception as e:
    print("error", type(e).__name__)
`;

describe('redirection programs on the real kernel', () => {
  const cgRoot = detectCgroup2Root()!;
  const base = join(cgRoot, 'ambit-bpftest');
  const pods = join(base, 'pods');
  const enrolledCg = join(pods, 'enrolled');
  const plainCg = join(pods, 'plain');
  const outsideCg = join(base, 'outside');
  let bpfDir: string;
  let dir: string;
  const bpf = new Libbpf();
  let programs: RedirectPrograms;
  let server: ReturnType<typeof spawn>;
  let listener: ReturnType<typeof spawn> | undefined;

  /** Starts the stand-in proxy listener in the test netns (registered in the sockmap). */
  async function startListener(): Promise<void> {
    listener = spawn(
      'nsenter',
      [
        `--net=/run/netns/${NETNS}`,
        '--',
        process.execPath,
        join(ROOT, 'test/e2e/fixtures/outbound-listener.mjs'),
        bpfDir,
        PROXY4,
        PROXY6,
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    listener.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitFor('the stand-in proxy listener', () => out.includes('listening'));
  }

  const cfg = () => ({
    bpfDir,
    objectPath: OBJECT,
    podsCgroup: pods,
    cgroupRoot: cgRoot,
    proxy: { ip4: PROXY4, ip6: PROXY6, port: 15001 },
    netnsPath: `/run/netns/${NETNS}`,
  });

  /** Runs the client from a process that joined `cg` first, inside the test netns. */
  async function connectFrom(cg: string, host: string, port: number): Promise<string> {
    const r = await runCmd('sh', [
      '-c',
      'echo $$ >"$0" && exec "$@"',
      join(cg, 'cgroup.procs'),
      'nsenter',
      `--net=/run/netns/${NETNS}`,
      '--',
      'python3',
      join(dir, 'client.py'),
      host,
      String(port),
    ]);
    return r.stdout.trim();
  }

  beforeAll(async () => {
    // Leftovers of an interrupted earlier run.
    try {
      execFileSync('ip', ['netns', 'delete', NETNS], { stdio: 'ignore' });
    } catch {
      // none
    }
    removeCgroupTree(base);
    execFileSync('ip', ['netns', 'add', NETNS]);
    const ip = (...a: string[]) => execFileSync('ip', ['-n', NETNS, ...a]);
    // Host addresses on loopback (this kernel has no dummy device): only these addresses are reachable.
    ip('link', 'set', 'lo', 'up');
    ip('addr', 'add', `${PROXY4}/32`, 'dev', 'lo');
    ip('addr', 'add', `${OTHER4}/32`, 'dev', 'lo');
    ip('addr', 'add', `${PROXY6}/128`, 'dev', 'lo', 'nodad');
    for (const cg of [enrolledCg, plainCg, outsideCg]) mkdirSync(cg, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'ambit-bpftest-'));
    writeFileSync(join(dir, 'server.py'), SERVER);
    writeFileSync(join(dir, 'client.py'), CLIENT);
    server = spawn('nsenter', [`--net=/run/netns/${NETNS}`, '--', 'python3', join(dir, 'server.py')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    server.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitFor('the test listeners', () => out.includes('listening'));
    await ensureBpffs('/sys/fs/bpf');
    bpfDir = `/sys/fs/bpf/ambit-bpftest-${process.pid}`;
    programs = new RedirectPrograms(bpf, cfg(), log);
    const report = programs.install();
    expect(report.created.sort()).toEqual(Object.values(ProgramName).sort());
    programs.enroll(cgroupId(enrolledCg), {
      workloadId: 7n,
      excludedPorts: [81],
      excludedCidrs: ['10.99.0.128/25'],
    });
    await startListener();
  });

  afterAll(() => {
    server?.kill('SIGKILL');
    listener?.kill('SIGKILL');
    programs?.close();
    if (bpfDir !== undefined) uninstallRedirect(bpfDir);
    try {
      execFileSync('ip', ['netns', 'delete', NETNS]);
    } catch {
      // already gone
    }
    removeCgroupTree(base);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test('an enrolled cgroup is sent to the proxy, which reads back the original destination and the cgroup', async () => {
    const line = await connectFrom(enrolledCg, '10.99.0.50', 8080);
    const [tag, peerIp, peerPort, localPort] = line.split(' ');
    expect(tag).toBe('proxy');
    // Only the address was rewritten: sk_lookup handed port 8080 of the proxy address to its listener.
    expect(localPort).toBe('8080');
    const od = openOriginalDestinations(bpf, bpfDir);
    try {
      expect(od.take(peerIp!, Number(peerPort))).toEqual({
        ip: '10.99.0.50',
        port: 8080,
        family: 4,
        cgroupId: cgroupId(enrolledCg),
        workloadId: 7n,
      });
      // Taken: a second read finds nothing (no leak per connection).
      expect(od.take(peerIp!, Number(peerPort))).toBeUndefined();
    } finally {
      od.close();
    }
  });

  test('IPv6 connects go to the IPv6 listener with their original destination', async () => {
    const line = await connectFrom(enrolledCg, 'fd00:99::77', 443);
    const [tag, peerIp, peerPort, localPort] = line.split(' ');
    expect(tag).toBe('proxy');
    expect(peerIp).toBe(PROXY6);
    expect(localPort).toBe('443');
    const od = openOriginalDestinations(bpf, bpfDir);
    try {
      expect(od.take(peerIp!, Number(peerPort))).toMatchObject({ ip: 'fd00:99::77', port: 443, family: 6 });
    } finally {
      od.close();
    }
  });

  test('an IPv4-mapped destination of an IPv6 socket goes to the IPv4 listener, with its original destination', async () => {
    const line = await connectFrom(enrolledCg, '::ffff:10.99.0.50', 8080);
    const [tag, peerIp, peerPort] = line.split(' ');
    expect(tag).toBe('proxy');
    expect(peerIp).toBe(PROXY4);
    const od = openOriginalDestinations(bpf, bpfDir);
    try {
      expect(od.take(peerIp!, Number(peerPort))).toMatchObject({ ip: '10.99.0.50', port: 8080, family: 4 });
    } finally {
      od.close();
    }
  });

  test('without an IPv6 proxy address (an IPv4-only node) IPv6 connects are left alone; IPv4 ones are still redirected', async () => {
    const v4only = new RedirectPrograms(
      bpf,
      { ...cfg(), proxy: { ip4: PROXY4, ip6: undefined, port: 15001 } },
      log,
    );
    v4only.install();
    v4only.close();
    try {
      // fd00:99::77 is nowhere: left alone, the connect fails as it would without the mesh.
      const line = await connectFrom(enrolledCg, 'fd00:99::77', 443);
      expect(line.startsWith('error')).toBe(true);
      expect((await connectFrom(enrolledCg, '10.99.0.50', 8080)).split(' ')[0]).toBe('proxy');
    } finally {
      const again = new RedirectPrograms(bpf, cfg(), log);
      again.install();
      again.close();
    }
    expect((await connectFrom(enrolledCg, 'fd00:99::77', 443)).split(' ')[0]).toBe('proxy');
  });

  test.each([
    ['an excluded port', () => enrolledCg, OTHER4, 81, 'direct'],
    ['loopback inside the pod', () => enrolledCg, '127.0.0.1', 9, 'loopback'],
    ['a cgroup that is not enrolled', () => plainCg, OTHER4, 81, 'direct'],
    ['a cgroup outside the attach point (where the proxy runs)', () => outsideCg, OTHER4, 81, 'direct'],
  ])('%s is not redirected', async (_name, cg, host, port, expected) => {
    const line = await connectFrom(cg(), host, port);
    expect(line.split(' ')[0]).toBe(expected);
  });

  test('an excluded CIDR is not redirected', async () => {
    // 10.99.0.200 is in the excluded 10.99.0.128/25: the connect goes to the real (absent) host and fails,
    // instead of reaching the proxy.
    const line = await connectFrom(enrolledCg, '10.99.0.200', 8080);
    expect(line.startsWith('proxy')).toBe(false);
  });

  test('connecting to the proxy address itself is never rewritten (no loop)', async () => {
    const line = await connectFrom(enrolledCg, PROXY4, 15001);
    const [, peerIp, peerPort] = line.split(' ');
    const od = openOriginalDestinations(bpf, bpfDir);
    try {
      expect(od.take(peerIp!, Number(peerPort))).toBeUndefined();
    } finally {
      od.close();
    }
  });

  test('a second install adopts the pinned links: nothing new is attached', () => {
    const again = new RedirectPrograms(bpf, cfg(), log);
    const report = again.install();
    again.close();
    expect(report.kept.sort()).toEqual(Object.values(ProgramName).sort());
    expect(report.created).toEqual([]);
    const attached = programs.attached();
    for (const prog of CGROUP_PROGRAMS) expect(attached[prog]).toHaveLength(1);
    // Enrollment survived in the pinned map.
    expect([...programs.enrolled().keys()]).toEqual([cgroupId(enrolledCg)]);
  });

  test('an upgraded object replaces the programs inside the same links, without a moment unredirected', async () => {
    const variant = join(dir, 'variant.bpf.o');
    execFileSync('clang', [
      '-O2',
      '-g',
      '-target',
      'bpf',
      '-DAMBIT_TEST_VARIANT=1',
      '-I/usr/include/x86_64-linux-gnu',
      '-c',
      join(ROOT, 'bpf/redirect.bpf.c'),
      '-o',
      variant,
    ]);
    const before = programs.attached();
    const upgraded = new RedirectPrograms(bpf, { ...cfg(), objectPath: variant }, log);
    const report = upgraded.install();
    upgraded.close();
    expect(report.upgraded.sort()).toEqual(Object.values(ProgramName).sort());
    const after = programs.attached();
    for (const prog of CGROUP_PROGRAMS) {
      expect(after[prog]).toHaveLength(1);
      expect(after[prog]).not.toEqual(before[prog]);
    }
    expect((await connectFrom(enrolledCg, '10.99.0.60', 80)).split(' ')[0]).toBe('proxy');
  });

  test('with the proxy down, a redirected connect is refused: enrolled pods fail closed', async () => {
    listener?.kill('SIGKILL');
    await waitFor('the listener to go', () => listener?.exitCode !== null || listener?.signalCode !== null);
    expect(await connectFrom(enrolledCg, '10.99.0.50', 8080)).toBe('error ConnectionRefusedError');
    await startListener();
    expect((await connectFrom(enrolledCg, '10.99.0.50', 8080)).split(' ')[0]).toBe('proxy');
  });

  test('uninstall detaches everything: bpftool shows no Ambit program on the cgroup', () => {
    const other = `${bpfDir}-uninstall`;
    const p = new RedirectPrograms(bpf, { ...cfg(), bpfDir: other, podsCgroup: plainCg }, log);
    p.install();
    p.close();
    expect(execFileSync('bpftool', ['cgroup', 'show', plainCg], { encoding: 'utf8' })).toContain(
      'ambit_connect4',
    );
    uninstallRedirect(other);
    expect(execFileSync('bpftool', ['cgroup', 'show', plainCg], { encoding: 'utf8' })).not.toContain(
      'ambit_',
    );
  });
});
