#!/usr/bin/env node
import { describeError, ErrorCode, hasCode } from '../errors.js';
import { checkCommand } from './check.js';
import { LOCAL_USAGE, localCommand } from './local-commands.js';
import { explainCommand, proxyConfigCommand } from './proxy-commands.js';
import { readSettings } from './settings.js';

const USAGE = `Usage: ambit <command>

Ambit is a sidecar-less service mesh: eBPF redirection, HBONE mTLS, waypoints for L7.

Commands:
  local     run a whole mesh on this machine (nodes and pods as network namespaces)
  check     preflight: can this machine run Ambit (kernel, BTF, cgroup v2, bpffs, libbpf, ...)
  proxy-config  what a node proxy holds: workloads, services, policies, certificates, connections
  explain   the decision path of a connection: route, identity, policies, verdict
  version   print the version

Run \`ambit <command> --help\` for details.

${LOCAL_USAGE}`;

async function main(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'local':
      return localCommand(rest, readSettings());
    case 'proxy-config':
      return proxyConfigCommand(rest, readSettings());
    case 'explain':
      return explainCommand(rest, readSettings());
    case 'check':
      return checkCommand(rest, readSettings());
    case 'version':
    case '--version':
      process.stdout.write('ambit 0.1.0\n');
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return cmd === undefined ? 2 : 0;
    default:
      process.stderr.write(`error: unknown command "${cmd}"\n\n${USAGE}\n`);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`error: ${describeError(err)}\n`);
  process.exitCode = hasCode(err, ErrorCode.USAGE) ? 2 : 1;
}
