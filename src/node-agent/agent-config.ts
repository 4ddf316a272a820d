import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseFlags } from '../config/flags.js';
import { AmbitError, ErrorCode } from '../errors.js';
import { LOG_LEVELS, type LogLevel } from '../telemetry/logger.js';

const here = dirname(fileURLToPath(import.meta.url));

/** Node agent settings, from flags with environment fallbacks (the DaemonSet sets env). Frozen after parse. */
export interface AgentConfig {
  readonly node: string;
  /** The cgroup v2 mount. */
  readonly cgroupRoot: string;
  /** Base that pod cgroup paths in the cluster snapshot are relative to. */
  readonly cgroupBase: string;
  /** Attach point: the cgroup above every pod of this node. */
  readonly podsCgroup: string;
  readonly bpfDir: string;
  readonly bpfObject: string;
  readonly proxyIp4: string;
  readonly proxyIp6: string;
  readonly outboundPort: number;
  /** Local mode: the local cluster's state file (the cluster API). */
  readonly localState: string;
  readonly logLevel: LogLevel;
  readonly uninstall: boolean;
  /** Unix socket for the CNI step (enroll a pod before it starts). */
  readonly cniSocket?: string;
  /** Where to write the list of enrolled pods (local mode). */
  readonly statusFile?: string;
  /** The node proxy's transparent listener for captured inbound plaintext. */
  readonly inboundPort: number;
}

export function parseAgentConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const { values } = parseFlags(
    () =>
      parseArgs({
        args: [...argv],
        options: {
          node: { type: 'string' },
          'cgroup-root': { type: 'string' },
          'cgroup-base': { type: 'string' },
          'pods-cgroup': { type: 'string' },
          'bpf-dir': { type: 'string' },
          'bpf-object': { type: 'string' },
          'proxy-ip4': { type: 'string' },
          'proxy-ip6': { type: 'string' },
          'outbound-port': { type: 'string' },
          'local-state': { type: 'string' },
          'log-level': { type: 'string' },
          uninstall: { type: 'boolean', default: false },
          'cni-socket': { type: 'string' },
          'status-file': { type: 'string' },
          'inbound-port': { type: 'string' },
        },
        strict: true,
      }),
    'node agent',
  );
  const errors: string[] = [];
  const need = (flag: string, envName: string): string => {
    const v = (values as unknown as Record<string, string | undefined>)[flag] ?? env[envName];
    if (v === undefined || v === '') errors.push(`--${flag} (or ${envName}) is required`);
    return v ?? '';
  };
  const bpfDir = need('bpf-dir', 'AMBIT_BPF_DIR');
  const uninstall = values.uninstall === true;
  const node = uninstall ? '' : need('node', 'AMBIT_NODE_NAME');
  const cgroupRoot = uninstall ? '' : need('cgroup-root', 'AMBIT_CGROUP2_ROOT');
  const podsCgroup = uninstall ? '' : need('pods-cgroup', 'AMBIT_PODS_CGROUP');
  const proxyIp4 = uninstall ? '' : need('proxy-ip4', 'AMBIT_PROXY_IP4');
  const proxyIp6 = uninstall ? '' : need('proxy-ip6', 'AMBIT_PROXY_IP6');
  const localState = uninstall ? '' : need('local-state', 'AMBIT_LOCAL_STATE');
  if (proxyIp4 !== '' && isIP(proxyIp4) !== 4) errors.push(`--proxy-ip4 ${proxyIp4}: not an IPv4 address`);
  if (proxyIp6 !== '' && isIP(proxyIp6) !== 6) errors.push(`--proxy-ip6 ${proxyIp6}: not an IPv6 address`);
  const port = Number(values['outbound-port'] ?? '15001');
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    errors.push(`--outbound-port ${values['outbound-port']}: not a port`);
  const logLevel = (values['log-level'] ?? env.AMBIT_LOG_LEVEL ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel))
    errors.push(`--log-level ${logLevel}: use one of ${LOG_LEVELS.join(', ')}`);
  if (errors.length > 0)
    throw new AmbitError(ErrorCode.USAGE, `node agent configuration:\n  ${errors.join('\n  ')}`);
  return Object.freeze({
    node,
    cgroupRoot,
    cgroupBase: values['cgroup-base'] ?? env.AMBIT_CGROUP_BASE ?? cgroupRoot,
    podsCgroup,
    bpfDir,
    bpfObject:
      values['bpf-object'] ?? env.AMBIT_BPF_OBJECT ?? join(here, '..', '..', 'bpf', 'redirect.bpf.o'),
    proxyIp4,
    proxyIp6,
    outboundPort: port,
    localState,
    logLevel,
    uninstall,
    ...((values['cni-socket'] ?? env.AMBIT_CNI_SOCKET)
      ? { cniSocket: values['cni-socket'] ?? env.AMBIT_CNI_SOCKET }
      : {}),
    ...(values['status-file'] === undefined ? {} : { statusFile: values['status-file'] }),
    inboundPort: Number(values['inbound-port'] ?? '15006'),
  });
}
