import { CA_USAGE } from './ca-commands.js';
import { CHECK_USAGE } from './check.js';
import { INSTALL_USAGE, NAMESPACE_USAGE, UNINSTALL_USAGE } from './install-commands.js';
import { LOCAL_USAGE } from './local-commands.js';
import { EXPLAIN_USAGE, PROXY_CONFIG_USAGE } from './proxy-commands.js';
import { WAYPOINT_USAGE } from './waypoint-commands.js';

export const USAGE = `Usage: ambit <command>

Ambit is a sidecar-less service mesh: eBPF redirection, HBONE mTLS, waypoints for L7.

Commands:
  local         run a whole mesh on this machine (nodes and pods as network namespaces)
  install       install Ambit in the cluster kubectl points at (--dry-run prints the objects)
  uninstall     remove Ambit from the cluster and clean every node
  namespace     enroll or unenroll a namespace of the cluster (kubectl label)
  waypoint      L7 proxies of a namespace: generate, apply, delete, list, status
  check         preflight: can this machine run Ambit (kernel, BTF, cgroup v2, bpffs, libbpf, ...)
  proxy-config  what a node proxy holds: workloads, services, policies, certificates, connections
  explain       the decision path of a connection: route, identity, policies, verdict
  ca            the mesh CA's roots: status, rotate, drop-old-roots
  version       print the version (--runtime: and the Node.js it runs on)

Run \`ambit <command> --help\` for details.`;

const COMMAND_USAGE: Readonly<Record<string, string>> = {
  local: LOCAL_USAGE,
  check: CHECK_USAGE,
  'proxy-config': PROXY_CONFIG_USAGE,
  explain: EXPLAIN_USAGE,
  ca: CA_USAGE,
  waypoint: WAYPOINT_USAGE,
  install: INSTALL_USAGE,
  uninstall: UNINSTALL_USAGE,
  namespace: NAMESPACE_USAGE,
};

/**
 * The help text a command line asks for (`ambit explain --help`, `ambit local up -h`), or undefined.
 * Flags after `--` belong to the command run in a pod, never to ambit.
 */
export function helpFor(argv: readonly string[]): string | undefined {
  const [cmd, ...rest] = argv;
  const end = rest.indexOf('--');
  const own = end < 0 ? rest : rest.slice(0, end);
  if (cmd === undefined || !own.some((a) => a === '--help' || a === '-h')) return undefined;
  return COMMAND_USAGE[cmd];
}
