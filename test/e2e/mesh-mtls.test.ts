import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { certInfo, createRoot, generateKey } from '../../src/identity/x509.js';
import type { LocalState } from '../../src/local/state.js';
import {
  ambit,
  copyManifests,
  curl,
  daemonPid,
  downCluster,
  netnsOf,
  processLives,
  ROOT,
  runCmd,
  status,
  tempDir,
  waitFor,
} from './helpers.js';

const MARKER = 'SECRET-PAYLOAD-7f3a9c2e';
const WEB_ID = 'spiffe://cluster.local/ns/shop/sa/web';
const CLIENT_ID = 'spiffe://cluster.local/ns/shop/sa/client';

/** Runs a Node script from test/e2e/fixtures inside a node's network namespace; returns its JSON line. */
async function inNode<T>(cluster: string, node: string, script: string, args: readonly string[]): Promise<T> {
  const r = await runCmd('nsenter', [
    `--net=/run/netns/${cluster}.${node}`,
    '--',
    process.execPath,
    join(ROOT, 'test/e2e/fixtures', script),
    ...args,
  ]);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as T;
}

const DENY_CLIENT = `apiVersion: security.ambit.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: deny-client, namespace: shop }
spec:
  action: DENY
  rules:
    - from:
        - source: { principals: ["cluster.local/ns/shop/sa/client"] }
`;

function logLines(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('mutual TLS between node proxies (HBONE)', () => {
  const CLUSTER = 'e2e-mtls';
  let state: LocalState;
  let webIp: string;
  let manifests: string;

  beforeAll(async () => {
    await ambit(['local', 'down', '--name', CLUSTER]);
    manifests = copyManifests('test/fixtures/mesh-mtls');
    const up = await ambit(['local', 'up', manifests, '--name', CLUSTER]);
    expect(up.code, up.stderr).toBe(0);
    state = await status(CLUSTER);
    webIp = state.pods.find((p) => p.owner === 'Deployment/web')!.ip4;
  });

  afterAll(async () => {
    await downCluster(CLUSTER);
  });

  test('curl to nginx on the other node: the capture on the link shows TLS 1.3 to 15008 and none of the payload', async () => {
    const pcap = join(tempDir('ambit-pcap-'), 'link.pcap');
    // -Z root: tcpdump would otherwise drop to its own user, which cannot write into the private temp folder;
    // --immediate-mode: without it, packets still in the capture ring when tcpdump stops are lost.
    const dump = spawn(
      'nsenter',
      [
        `--net=/run/netns/${CLUSTER}.node-1`,
        '--',
        'tcpdump',
        '-Z',
        'root',
        '--immediate-mode',
        '-i',
        'eth0',
        '-U',
        '-w',
        pcap,
        'tcp',
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let err = '';
    dump.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    await waitFor('tcpdump to listen', () => err.includes('listening on'));
    for (const url of ['http://web/secret.txt', `http://${webIp}:8080/secret.txt`]) {
      const r = await curl(CLUSTER, 'client', url, [], 'shop');
      expect(r.stdout).toBe(`${MARKER}\n`);
    }
    dump.kill('SIGINT');
    await new Promise((r) => dump.once('exit', r));
    const raw = readFileSync(pcap);
    expect(raw.includes(MARKER)).toBe(false);
    expect(raw.includes('GET /secret.txt')).toBe(false);
    const packets = execFileSync('tcpdump', ['-r', pcap, '-nn', '-q'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .trim()
      .split('\n');
    // Traffic with the control-plane host (172.18.0.1: config, certificates, probes) is TLS too, but not the subject here.
    const data = packets.filter((p) => p !== '' && !/172\.18\.0\.1\./.test(p));
    expect(data.length, packets.join('\n')).toBeGreaterThan(0);
    // Every packet between the nodes is HBONE (node-2:15008); nothing to the pod port crosses the link.
    expect(data.filter((p) => !/172\.18\.0\.3\.15008/.test(p))).toEqual([]);
    const versions = execFileSync(
      'tshark',
      [
        '-r',
        pcap,
        '-Y',
        'tls.handshake.type == 2 && tcp.srcport == 15008',
        '-T',
        'fields',
        '-e',
        'tls.handshake.extensions.supported_version',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    )
      .trim()
      .split('\n');
    expect(versions.length).toBeGreaterThan(0);
    expect(new Set(versions)).toEqual(new Set(['0x0304']));
  });

  test('the server certificate is the destination workload identity, and a valid client gets through', async () => {
    const r = await inNode<{ handshake: string; serverSan: string[]; status: number; body: string }>(
      CLUSTER,
      'node-1',
      'hbone-probe.mjs',
      [
        `/run/ambit/${CLUSTER}/ca`,
        state.nodes[1]!.ip4,
        '15008',
        WEB_ID,
        CLIENT_ID,
        'valid',
        `${webIp}:8080`,
        '/secret.txt',
      ],
    );
    expect(r).toMatchObject({ handshake: 'accepted', serverSan: [WEB_ID], status: 200, body: `${MARKER}\n` });
    // And the proxies recorded both sides as mutual TLS, with the identities they verified.
    const out = logLines(`/run/ambit/${CLUSTER}/nodes/node-2/node-proxy.log`).filter(
      (l) => l.component === 'access' && l.direction === 'inbound',
    );
    expect(out.at(-1)).toMatchObject({
      'src.identity': CLIENT_ID,
      'dst.identity': WEB_ID,
      connection_security_policy: 'mutual_tls',
    });
  });

  test.each([
    ['a foreign CA', 'foreign-ca', /not issued by a CA in the trust bundle|trust bundle/],
    ['a foreign trust domain', 'foreign-td', /trust domain other\.example, not cluster\.local/],
    ['a wrong SAN', 'wrong-san', /not a workload identity/],
    ['an expired certificate', 'expired', /CERT_HAS_EXPIRED/],
  ])('a client certificate from %s is refused, and the proxy says why', async (_name, mode, reason) => {
    const log = `/run/ambit/${CLUSTER}/nodes/node-2/node-proxy.log`;
    const before = logLines(log).length;
    const r = await inNode<{ handshake: string; status: number | null }>(
      CLUSTER,
      'node-1',
      'hbone-probe.mjs',
      [
        `/run/ambit/${CLUSTER}/ca`,
        state.nodes[1]!.ip4,
        '15008',
        WEB_ID,
        CLIENT_ID,
        mode,
        `${webIp}:8080`,
        '/secret.txt',
      ],
    );
    expect(r.handshake).toBe('refused');
    expect(r.status).toBeNull();
    const refused = await waitFor('the refusal in the log', () => {
      const lines = logLines(log)
        .slice(before)
        .filter((l) => /refused/.test(String(l.msg)));
      return lines.length > 0 ? lines : undefined;
    });
    expect(refused.map((l) => String(l.reason)).join('\n')).toMatch(reason);
  });

  test('a node credential asking for the identity of a pod on another node is refused, and logged', async () => {
    const cp = `${'172.18.0.1'}:15012`;
    const bundle = `/run/ambit/${CLUSTER}/ca/trust-bundle.pem`;
    const lonely = 'spiffe://cluster.local/ns/shop/sa/lonely';
    const denied = await inNode<{ ok: boolean; code?: string; message?: string }>(
      CLUSTER,
      'node-1',
      'ca-request.mjs',
      [cp, bundle, `/run/ambit/${CLUSTER}/nodes/node-1/token`, lonely],
    );
    expect(denied).toMatchObject({ ok: false, code: 'AMBIT_ERR_CA_DENIED' });
    expect(denied.message).toContain('no pod on node-1 runs as shop/lonely (it runs on node-2)');
    const allowed = await inNode<{ ok: boolean }>(CLUSTER, 'node-2', 'ca-request.mjs', [
      cp,
      bundle,
      `/run/ambit/${CLUSTER}/nodes/node-2/token`,
      lonely,
    ]);
    expect(allowed.ok).toBe(true);
    const log = logLines(`/run/ambit/${CLUSTER}/control-plane.log`);
    expect(
      log.some(
        (l) =>
          l.msg === 'certificate request refused' && l.node === 'node-1' && String(l.reason).includes(lonely),
      ),
    ).toBe(true);
  });

  test('with the control plane and the Kubernetes API down for 60 s, no request between existing workloads fails; a change made meanwhile applies when they return', async () => {
    const cp = state.daemons.find((d) => d.name === 'control-plane')!;
    // Hold the local daemon, which serves the Kubernetes API: the API is away (its connections hang, as
    // with an API server that stopped answering), and the daemon does not restart the control plane.
    process.kill(state.daemonPid, 'SIGSTOP');
    const failures: string[] = [];
    let requests = 0;
    try {
      process.kill(cp.pid!, 'SIGKILL');
      await waitFor('the control plane to die', () => !processLives(cp.pid!));
      const until = Date.now() + 60_000;
      // Meanwhile someone denies the client: the change waits in the folder until the API is back.
      writeFileSync(join(manifests, 'deny-client.yaml'), DENY_CLIENT);
      while (Date.now() < until) {
        const r = await curl(CLUSTER, 'client', 'http://web/secret.txt', [], 'shop');
        requests++;
        if (r.stdout !== `${MARKER}\n`) failures.push(`${r.code}: ${r.stderr}`);
        await sleep(1000);
      }
    } finally {
      process.kill(state.daemonPid, 'SIGCONT');
    }
    expect(requests).toBeGreaterThan(30);
    expect(failures).toEqual([]);
    // The proxies noticed, and come back when the control plane does.
    const proxyLog = `/run/ambit/${CLUSTER}/nodes/node-1/node-proxy.log`;
    expect(logLines(proxyLog).some((l) => l.msg === 'config stream lost; keeping the last good config')).toBe(
      true,
    );
    await waitFor(
      'the control plane to be back',
      async () => (await status(CLUSTER)).daemons.find((d) => d.name === 'control-plane')?.ready,
      60_000,
    );
    // The change made while the API was away reaches the mesh once it is back.
    await waitFor('the DENY written during the outage to apply', async () => {
      const r = await curl(CLUSTER, 'client', 'http://web/secret.txt', [], 'shop');
      return r.stdout !== `${MARKER}\n`;
    });
    rmSync(join(manifests, 'deny-client.yaml'));
    await waitFor('the client to be let back in', async () => {
      const r = await curl(CLUSTER, 'client', 'http://web/secret.txt', [], 'shop');
      return r.stdout === `${MARKER}\n`;
    });
  }, 240_000);
});

describe('certificate rotation under traffic', () => {
  const CLUSTER = 'e2e-rotate';
  let suppliedRoot: string;

  /** A folder with a CA root as an operator would supply it (with `mismatchedKey`, a key of another root). */
  async function caFolder(opts: { mismatchedKey?: boolean } = {}): Promise<{ dir: string; serial: string }> {
    const key = await generateKey();
    const pem = await createRoot(key, 'operator', 30);
    const dir = tempDir('ambit-supplied-ca-');
    writeFileSync(join(dir, 'root-cert.pem'), pem);
    writeFileSync(join(dir, 'root-key.pem'), (opts.mismatchedKey ? await generateKey() : key).keyPem, {
      mode: 0o600,
    });
    return { dir, serial: certInfo(pem).serial };
  }

  beforeAll(async () => {
    await ambit(['local', 'down', '--name', CLUSTER]);
    const manifests = copyManifests('test/fixtures/mesh-mtls');
    // A supplied root whose key is not its own is refused before anything exists.
    const bad = await caFolder({ mismatchedKey: true });
    const refused = await ambit(['local', 'up', manifests, '--name', CLUSTER, '--ca-dir', bad.dir]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(
      `--ca-dir: ${bad.dir}/root-cert.pem: root-key.pem is not the key of this certificate`,
    );
    expect(netnsOf(CLUSTER)).toEqual([]);
    // 20 s certificates (renewed every 10 s), issued by a supplied root.
    const good = await caFolder();
    suppliedRoot = good.serial;
    const up = await ambit([
      'local',
      'up',
      manifests,
      '--name',
      CLUSTER,
      '--cert-ttl',
      '20s',
      '--ca-dir',
      good.dir,
    ]);
    expect(up.code, up.stderr).toBe(0);
  });

  afterAll(async () => {
    await downCluster(CLUSTER);
  });

  test('certificates are renewed at half life while requests keep flowing, with no failed connection', async () => {
    const proxyLog = `/run/ambit/${CLUSTER}/nodes/node-1/node-proxy.log`;
    const issued = () =>
      logLines(proxyLog).filter((l) => l.msg === 'workload certificate issued' && l.identity === CLIENT_ID);
    const first = issued().length;
    const failures: string[] = [];
    let requests = 0;
    const until = Date.now() + 45_000;
    while (Date.now() < until) {
      const r = await curl(CLUSTER, 'client', 'http://web/secret.txt', [], 'shop');
      requests++;
      if (r.stdout !== `${MARKER}\n`) failures.push(`${r.code}: ${r.stderr}`);
    }
    expect(failures).toEqual([]);
    expect(requests).toBeGreaterThan(50);
    // About four renewals of the client's certificate happened meanwhile (every 10 s): at least three,
    // and not a renewal loop.
    expect(issued().length - first).toBeGreaterThanOrEqual(3);
    expect(issued().length - first).toBeLessThanOrEqual(8);
    const access = logLines(proxyLog).filter((l) => l.component === 'access' && l.direction === 'outbound');
    expect(access.filter((l) => l.msg !== 'connection complete')).toEqual([]);
    expect(existsSync(`/run/ambit/${CLUSTER}/ca/root-key.pem`)).toBe(true);
  }, 120_000);

  test('the CA root rotates under traffic: certificates move to the new root, the old one is dropped, nothing fails', async () => {
    interface CaView {
      signingRoot: string;
      trusted: { serial: string }[];
      certificates: { node: string; identity: string; root: string }[];
    }
    const ca = async (...args: string[]): Promise<{ code: number; view?: CaView; stderr: string }> => {
      const r = await ambit(['ca', ...args, '--name', CLUSTER, '-o', 'json']);
      return {
        code: r.code,
        stderr: r.stderr,
        view: r.code === 0 ? (JSON.parse(r.stdout) as CaView) : undefined,
      };
    };
    const before = (await ca('status')).view!;
    expect(before.trusted).toHaveLength(1);
    // The supplied root signs until it is rotated.
    expect(before.signingRoot).toBe(suppliedRoot);
    expect(before.certificates.length).toBeGreaterThanOrEqual(2);
    expect(before.certificates.every((c) => c.root === suppliedRoot)).toBe(true);

    const failures: string[] = [];
    let requests = 0;
    let running = true;
    const traffic = (async () => {
      while (running) {
        const r = await curl(CLUSTER, 'client', 'http://web/secret.txt', [], 'shop');
        requests++;
        if (r.stdout !== `${MARKER}\n`) failures.push(`${r.code}: ${r.stderr}`);
      }
    })();
    let dropped: Awaited<ReturnType<typeof ca>>;
    try {
      const rotated = await ca('rotate');
      expect(rotated.code, rotated.stderr).toBe(0);
      const newRoot = rotated.view!.signingRoot;
      expect(newRoot).not.toBe(before.signingRoot);
      expect(rotated.view!.trusted.map((t) => t.serial).sort()).toEqual([before.signingRoot, newRoot].sort());
      // Every proxy's workload certificates move to the new root (re-issued when the bundle changes,
      // or at the latest when they renew at half life).
      await waitFor(
        'every workload certificate to chain to the new root',
        async () => {
          const v = (await ca('status')).view!;
          return v.certificates.length >= 2 && v.certificates.every((c) => c.root === newRoot);
        },
        30_000,
      );
      dropped = await ca('drop-old-roots');
      expect(dropped.code, dropped.stderr).toBe(0);
      expect(dropped.view!.trusted.map((t) => t.serial)).toEqual([newRoot]);
      const afterDrop = requests;
      await waitFor('requests after the drop', () => requests >= afterDrop + 5);
    } finally {
      running = false;
      await traffic;
    }
    expect(failures).toEqual([]);
    expect(requests).toBeGreaterThan(10);

    // A proxy that starts now knows only the new root: it must still reach the control plane (whose
    // serving certificate moved to the new root too), get certificates, and serve.
    const state = await status(CLUSTER);
    const old = daemonPid(state, 'node-2', 'proxy');
    process.kill(old, 'SIGKILL');
    await waitFor('a new node-2 proxy holding a certificate of the new root', async () => {
      let pid: number;
      try {
        pid = daemonPid(state, 'node-2', 'proxy');
      } catch {
        return false;
      }
      if (pid === old) return false;
      const v = (await ca('status')).view;
      return (
        v?.certificates.some((c) => c.node === 'node-2' && c.root === dropped.view!.signingRoot) === true
      );
    });
    await waitFor('a request through the restarted proxy', async () => {
      const r = await curl(CLUSTER, 'client', 'http://web/secret.txt', [], 'shop');
      return r.stdout === `${MARKER}\n`;
    });
  }, 180_000);
});
