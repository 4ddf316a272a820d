import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { AmbitError, ErrorCode } from '../errors.js';
import { clusterBpfDir, clusterCgroupDir, clusterPaths } from '../local/layout.js';
import { pidAlive, teardownCluster } from '../local/teardown.js';
import { detectCgroup2Root } from '../os/cgroup.js';
import { clusterFlag, requireRoot } from './local-common.js';
import { exec, logs, status } from './local-inspect.js';
import { up } from './local-up.js';
import type { CliSettings } from './settings.js';

export const LOCAL_USAGE = `Usage: ambit local <command>

Runs a whole Ambit mesh on this Linux machine: nodes and pods are network namespaces, containers are
processes, Services are VIPs. Needs root.

Commands:
  up <file|dir> [--nodes N] [--wait 120s]   start a cluster from Kubernetes manifests (the folder is watched)
     [--cert-ttl 24h] [--log-level info]    workload certificate lifetime; log level of the mesh's daemons
     [--ca-dir dir]                         use this CA root (root-cert.pem, root-key.pem) instead of a new one
  status [-o table|json|yaml]               nodes, pods, services and endpoints
  logs <pod> [-n ns] [-c container] [-f]    container output
  exec <pod> [-n ns] -- <cmd...>            run a command inside a pod (as the pod: same netns and cgroup)
  kubeconfig [--path]                       the kubeconfig of the cluster's Kubernetes API (for kubectl);
                                            --path prints where it is: export KUBECONFIG=$(ambit local kubeconfig --path)
  down                                      remove everything the cluster created (safe to repeat)

Common flags: --name <cluster> (default: ambit, or $AMBIT_CLUSTER).
A pod can be named by its full name or as deploy/<deployment>.`;

export async function localCommand(argv: readonly string[], s: CliSettings): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'up':
      return up(rest, s);
    case 'status':
      return status(rest, s);
    case 'logs':
      return logs(rest, s);
    case 'exec':
      return exec(rest, s);
    case 'down':
      return down(rest, s);
    case 'kubeconfig':
      return kubeconfig(rest, s);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${LOCAL_USAGE}\n`);
      return sub === undefined ? 2 : 0;
    default:
      throw new AmbitError(ErrorCode.USAGE, `unknown command "local ${sub}"\n\n${LOCAL_USAGE}`);
  }
}

function kubeconfig(argv: readonly string[], s: CliSettings): number {
  const { values } = parseArgs({
    args: [...argv],
    options: { name: { type: 'string' }, path: { type: 'boolean' } },
  });
  const cluster = clusterFlag(values, s);
  const file = clusterPaths(s.runRoot, cluster).kubeconfig;
  if (!existsSync(file))
    throw new AmbitError(
      ErrorCode.LOCAL_STATE,
      `no local cluster "${cluster}" is running (${file} does not exist): start one with \`ambit local up <dir>\``,
    );
  process.stdout.write(values.path === true ? `${file}\n` : readFileSync(file, 'utf8'));
  return 0;
}

async function down(argv: readonly string[], s: CliSettings): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: { name: { type: 'string' } } });
  requireRoot();
  const cluster = clusterFlag(values, s);
  const paths = clusterPaths(s.runRoot, cluster);
  const lockPid = existsSync(paths.lock) ? Number(readFileSync(paths.lock, 'utf8')) : undefined;
  if (lockPid !== undefined && pidAlive(lockPid, 'local/main.js')) {
    process.stdout.write(`stopping local cluster "${cluster}" (daemon pid ${lockPid})\n`);
    process.kill(lockPid, 'SIGTERM');
    const deadline = Date.now() + 30_000;
    while (pidAlive(lockPid) && Date.now() < deadline) await sleep(50);
    if (pidAlive(lockPid)) process.kill(lockPid, 'SIGKILL');
  }
  const cgroupRoot = detectCgroup2Root(s.cgroup2Root);
  const report = await teardownCluster({
    cluster,
    clusterCgroup: cgroupRoot === undefined ? undefined : clusterCgroupDir(cgroupRoot, cluster),
    runDir: paths.dir,
    bpfDir: clusterBpfDir(s.bpfRoot, cluster),
  });
  const extra = report.netns.length + report.killed.length + report.cgroups;
  process.stdout.write(
    extra === 0
      ? `local cluster "${cluster}" is down\n`
      : `local cluster "${cluster}" is down (removed ${report.netns.length} namespaces, ${report.cgroups} cgroups, stopped ${report.killed.length} processes left behind)\n`,
  );
  return 0;
}
