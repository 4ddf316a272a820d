import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatIssue } from '../config/issue.js';
import { AmbitError, ErrorCode } from '../errors.js';
import { CertificateAuthority, ROOT_CERT, ROOT_KEY } from '../identity/ca.js';
import { clusterBpfDir, clusterCgroupDir, clusterPaths, MAX_NODES, nodeName } from '../local/layout.js';
import { listNetns } from '../local/network.js';
import { readProgress } from '../local/progress.js';
import { readState } from '../local/state.js';
import { pidAlive, teardownCluster } from '../local/teardown.js';
import { hasErrors, loadManifests } from '../manifests/load-manifests.js';
import { ensureCgroup2Root } from '../os/cgroup.js';
import { clusterFlag, describePod, readFrom, requireRoot } from './local-common.js';
import { parseDuration } from './output.js';
import type { CliSettings } from './settings.js';

const here = dirname(fileURLToPath(import.meta.url));
const DAEMON_SCRIPT = join(here, '..', 'local', 'main.js');

interface SuppliedCa {
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * Reads a supplied CA root (root-cert.pem and root-key.pem in `dir`) and has the CA load it in a scratch
 * folder, so that every check the control plane would make (a certificate, not expired, a matching key)
 * fails here, naming the supplied files, before a cluster exists.
 */
async function checkSuppliedCa(dir: string): Promise<SuppliedCa> {
  const read = (name: string): string => {
    try {
      return readFileSync(join(dir, name), 'utf8');
    } catch (err) {
      throw new AmbitError(
        ErrorCode.CERTIFICATE,
        `--ca-dir ${dir}: cannot read ${name} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the folder must hold ${ROOT_CERT} and ${ROOT_KEY}`,
      );
    }
  };
  const supplied = { certPem: read(ROOT_CERT), keyPem: read(ROOT_KEY) };
  const scratch = mkdtempSync(join(tmpdir(), 'ambit-ca-check-'));
  try {
    installCa(supplied, scratch);
    await CertificateAuthority.loadOrCreate(scratch, 'ambit');
  } catch (err) {
    throw new AmbitError(
      ErrorCode.CERTIFICATE,
      `--ca-dir: ${(err as Error).message.replaceAll(scratch, dir)}`,
      {
        cause: err,
      },
    );
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return supplied;
}

/** Places a CA root where the control plane loads it from; the key readable by root only. */
function installCa(ca: SuppliedCa, caDir: string): void {
  mkdirSync(caDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(caDir, ROOT_CERT), ca.certPem, { mode: 0o644 });
  writeFileSync(join(caDir, ROOT_KEY), ca.keyPem, { mode: 0o600 });
}

export async function up(argv: readonly string[], s: CliSettings): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      nodes: { type: 'string', default: '2' },
      name: { type: 'string' },
      wait: { type: 'string', default: '120s' },
      'log-level': { type: 'string', default: 'info' },
      'cert-ttl': { type: 'string' },
      'ca-dir': { type: 'string' },
    },
    allowPositionals: true,
  });
  if (positionals.length !== 1)
    throw new AmbitError(
      ErrorCode.USAGE,
      'usage: ambit local up <file|dir> [--nodes N] [--wait 120s] [--cert-ttl 24h] [--ca-dir dir] [--log-level info]',
    );
  const cluster = clusterFlag(values, s);
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) {
    throw new AmbitError(
      ErrorCode.USAGE,
      `--nodes ${values.nodes}: must be a whole number from 1 to ${MAX_NODES}`,
    );
  }
  const waitMs = parseDuration(values.wait, '--wait');
  const manifests = resolve(positionals[0]!);

  // Validate everything before touching the machine: a broken manifest creates nothing.
  const nodeNames = Array.from({ length: nodes }, (_, i) => nodeName(i + 1));
  const { issues } = loadManifests(manifests, { requireCommand: true, nodeNames });
  for (const issue of issues) process.stderr.write(`${formatIssue(issue)}\n`);
  if (hasErrors(issues)) {
    const n = issues.filter((i) => i.severity === 'error').length;
    process.stderr.write(
      `error: ${n} problem${n === 1 ? '' : 's'} in ${positionals[0]}; nothing was created\n`,
    );
    return 1;
  }
  requireRoot();
  // A supplied CA root is checked before anything is created, like the manifests.
  const suppliedCa =
    values['ca-dir'] === undefined ? undefined : await checkSuppliedCa(resolve(values['ca-dir']));

  const paths = clusterPaths(s.runRoot, cluster);
  const existing = readState(paths.state);
  const lockPid = existsSync(paths.lock) ? Number(readFileSync(paths.lock, 'utf8')) : undefined;
  if (lockPid !== undefined && pidAlive(lockPid, 'local/main.js')) {
    throw new AmbitError(
      ErrorCode.LOCAL_STATE,
      `local cluster "${cluster}" is already running${existing === undefined ? '' : ` (manifests: ${existing.manifests})`}; run \`ambit local down\` first`,
    );
  }
  const cgroupRoot = await ensureCgroup2Root(s.cgroup2Root);
  const leftovers = listNetns().filter((n) => n.startsWith(`${cluster}.`));
  if (leftovers.length > 0 || existsSync(paths.dir)) {
    process.stdout.write(`cleaning up what an earlier run of "${cluster}" left behind\n`);
    await teardownCluster({
      cluster,
      clusterCgroup: clusterCgroupDir(cgroupRoot, cluster),
      runDir: paths.dir,
      bpfDir: clusterBpfDir(s.bpfRoot, cluster),
    });
  }

  const started = Date.now();
  process.stdout.write(
    `starting local cluster "${cluster}" with ${nodes} node${nodes === 1 ? '' : 's'} from ${positionals[0]}\n`,
  );
  mkdirSync(paths.dir, { recursive: true });
  if (suppliedCa !== undefined) installCa(suppliedCa, join(paths.dir, 'ca'));
  const stderrFd = openSync(join(paths.dir, 'local.stderr'), 'a');
  const daemon = spawn(
    process.execPath,
    [
      DAEMON_SCRIPT,
      '--cluster',
      cluster,
      '--manifests',
      manifests,
      '--nodes',
      String(nodes),
      '--run-root',
      s.runRoot,
      '--cgroup-root',
      cgroupRoot,
      '--bpf-root',
      s.bpfRoot,
      '--log-level',
      values['log-level'],
      ...(values['cert-ttl'] === undefined ? [] : ['--cert-ttl', values['cert-ttl']]),
    ],
    { detached: true, stdio: ['ignore', stderrFd, stderrFd] },
  );
  closeSync(stderrFd);
  daemon.unref();
  let exited: number | null | undefined;
  daemon.once('exit', (code) => {
    exited = code;
  });

  // Show the daemon's progress (its structured channel) until every pod is ready.
  let offset = 0;
  const deadline = Date.now() + waitMs;
  for (;;) {
    const read = readProgress(paths.progress, offset);
    offset = read.offset;
    for (const ev of read.events) {
      const t = ((Date.parse(ev.time) - started) / 1000).toFixed(1).padStart(5);
      process.stdout.write(
        `[${t}s] ${ev.event === 'error' || ev.event === 'failed' ? 'error: ' : ''}${ev.message}\n`,
      );
      if (ev.event === 'ready') {
        process.stdout.write(
          `\nlocal cluster "${cluster}" is up. Next:\n  ambit local status\n  ambit local exec <pod> -- <command>\n  ambit local logs <pod>\n  export KUBECONFIG=${paths.kubeconfig}   (kubectl works against it)\n  ambit local down\n`,
        );
        return 0;
      }
      if (ev.event === 'failed') return 1;
    }
    if (exited !== undefined) {
      const tail = readFrom(join(paths.dir, 'local.stderr'), 0).text.trim();
      process.stderr.write(
        `error: the local daemon exited (code ${exited})${tail === '' ? '' : `:\n${tail}`}\n`,
      );
      return 1;
    }
    if (Date.now() > deadline) {
      const state = readState(paths.state);
      const waiting = state?.pods.filter((p) => !p.ready && p.phase !== 'Succeeded') ?? [];
      process.stderr.write(`error: not every pod became ready within ${values.wait}:\n`);
      for (const p of waiting) process.stderr.write(`  ${p.namespace}/${p.name}: ${describePod(p)}\n`);
      process.stderr.write(
        'The cluster is still running: see `ambit local status` and `ambit local logs <pod>`.\n',
      );
      return 1;
    }
    await sleep(100);
  }
}
