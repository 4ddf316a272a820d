import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { confReader, pickConfFile } from '../cni/conflist.js';
import { AmbitError, ErrorCode } from '../errors.js';
import { run } from '../os/run-command.js';
import {
  NODE_BRIDGE,
  type NodeLayout,
  POD_SUPERNET_V4,
  POD_SUPERNET_V6,
  SERVICE_CIDR_V4,
  SERVICE_CIDR_V6,
} from './layout.js';

/*
 * Local mode as a container runtime's CNI side (what containerd's CRI plugin does with libcni): each
 * node has a conf dir and a bin dir; the first config file by name is the network; its first plugin is
 * local mode's own bridge (createPodNetwork), which local mode performs itself, and every further
 * plugin of the list is exec'd from the bin dir with the CNI environment and its config on stdin,
 * the result of the one before as `prevResult`. The node agent inserts Ambit's plugin there.
 */

/** The primary plugin type: local mode's bridge network, performed in-process. */
export const LOCAL_BRIDGE_TYPE = 'ambit-local-bridge';
/** The file local mode writes at node creation, as a primary CNI's installer would. */
export const LOCAL_CONFLIST = '10-ambit-local.conflist';
const CNI_VERSION = '1.0.0';
/** How long one plugin may take (the kubelet's runtime request timeout is minutes; a plugin bounds its own waits). */
const PLUGIN_TIMEOUT_MS = 60_000;

/** A node's CNI folders, below its node dir, as on a real node. */
export interface NodeCni {
  readonly confDir: string;
  readonly binDir: string;
  /** The node agent's CNI socket (the agent's --cni-socket). */
  readonly socket: string;
}

export function nodeCni(nodeDir: string): NodeCni {
  return {
    confDir: join(nodeDir, 'etc', 'cni', 'net.d'),
    binDir: join(nodeDir, 'opt', 'cni', 'bin'),
    socket: join(nodeDir, 'var', 'run', 'ambit', 'cni.sock'),
  };
}

/** The primary conflist of a node: local mode's bridge and its address ranges. */
export function primaryConflist(node: NodeLayout): string {
  const list = {
    cniVersion: CNI_VERSION,
    name: 'ambit-local',
    plugins: [
      {
        type: LOCAL_BRIDGE_TYPE,
        bridge: NODE_BRIDGE,
        ipam: { type: 'ambit-local', ranges: [[{ subnet: node.podCidr4 }], [{ subnet: node.podCidr6 }]] },
      },
    ],
  };
  return `${JSON.stringify(list, null, 2)}\n`;
}

/** Creates a node's CNI folders and writes its primary conflist (at node creation). */
export function writeNodeCni(cni: NodeCni, node: NodeLayout): void {
  mkdirSync(cni.confDir, { recursive: true });
  mkdirSync(cni.binDir, { recursive: true });
  writeFileSync(join(cni.confDir, LOCAL_CONFLIST), primaryConflist(node));
}

/** A CNI result (spec 1.0.0), as far as local mode builds and reads one. */
export interface CniResult {
  readonly cniVersion: string;
  readonly interfaces?: readonly {
    readonly name: string;
    readonly mac?: string;
    readonly sandbox?: string;
  }[];
  readonly ips?: readonly {
    readonly address: string;
    readonly gateway?: string;
    readonly interface?: number;
  }[];
  readonly routes?: readonly { readonly dst: string; readonly gw?: string }[];
  readonly dns?: Record<string, unknown>;
}

export interface PodNetworkFacts {
  readonly netnsPath: string;
  readonly hostVeth: string;
  readonly hostMac?: string;
  readonly podMac?: string;
  readonly ip4: string;
  readonly ip6: string;
}

/** The result of local mode's bridge for a pod: what the next plugin gets as prevResult. */
export function bridgeResult(node: NodeLayout, pod: PodNetworkFacts): CniResult {
  return {
    cniVersion: CNI_VERSION,
    interfaces: [
      { name: pod.hostVeth, ...(pod.hostMac === undefined ? {} : { mac: pod.hostMac }) },
      { name: 'eth0', ...(pod.podMac === undefined ? {} : { mac: pod.podMac }), sandbox: pod.netnsPath },
    ],
    ips: [
      { address: `${pod.ip4}/32`, gateway: node.gateway4, interface: 1 },
      { address: `${pod.ip6}/128`, gateway: node.gateway6, interface: 1 },
    ],
    routes: [
      { dst: POD_SUPERNET_V4, gw: node.gateway4 },
      { dst: SERVICE_CIDR_V4, gw: node.gateway4 },
      { dst: POD_SUPERNET_V6, gw: node.gateway6 },
      { dst: SERVICE_CIDR_V6, gw: node.gateway6 },
    ],
    dns: {},
  };
}

/** The plugins after the primary one, from the config file the runtime picks. */
export interface NodeNetwork {
  readonly file: string;
  readonly name: string;
  readonly cniVersion: string;
  readonly chained: readonly Record<string, unknown>[];
}

/** Reads the node's network config as a runtime does at every pod start (it may have changed). */
export function readNodeNetwork(confDir: string): NodeNetwork {
  const file = pickConfFile(
    existsSync(confDir) ? readdirSync(confDir) : [],
    confReader((n) => readFileSync(join(confDir, n), 'utf8')),
  );
  if (file === undefined)
    throw new AmbitError(ErrorCode.CNI_CONFIG, `no CNI network config in ${confDir} (network not ready)`);
  let list: { name?: unknown; cniVersion?: unknown; plugins?: unknown };
  try {
    list = JSON.parse(readFileSync(join(confDir, file), 'utf8')) as typeof list;
  } catch (err) {
    throw new AmbitError(
      ErrorCode.CNI_CONFIG,
      `${join(confDir, file)}: not valid JSON (${(err as Error).message})`,
    );
  }
  const plugins = Array.isArray(list.plugins) ? (list.plugins as Record<string, unknown>[]) : [];
  if (plugins[0]?.type !== LOCAL_BRIDGE_TYPE)
    throw new AmbitError(
      ErrorCode.CNI_CONFIG,
      `${join(confDir, file)}: the first plugin must be local mode's own network (type ${LOCAL_BRIDGE_TYPE})`,
    );
  return {
    file,
    name: typeof list.name === 'string' ? list.name : 'ambit-local',
    cniVersion: typeof list.cniVersion === 'string' ? list.cniVersion : CNI_VERSION,
    chained: plugins.slice(1),
  };
}

/** The pod a CNI call is for, as the kubelet names it in CNI_ARGS. */
export interface CniPodRef {
  readonly containerId: string;
  readonly netnsPath: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/** The CNI environment of one plugin call (the spec's variables, nothing of local mode's own). */
export function cniEnv(
  command: 'ADD' | 'DEL' | 'CHECK',
  pod: CniPodRef,
  binDir: string,
): Record<string, string> {
  return {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod.containerId,
    CNI_NETNS: pod.netnsPath,
    CNI_IFNAME: 'eth0',
    CNI_PATH: binDir,
    CNI_ARGS: [
      'IgnoreUnknown=1',
      `K8S_POD_NAMESPACE=${pod.namespace}`,
      `K8S_POD_NAME=${pod.name}`,
      `K8S_POD_INFRA_CONTAINER_ID=${pod.containerId}`,
      `K8S_POD_UID=${pod.uid}`,
    ].join(';'),
  };
}

/** A plugin's stdin: its entry, with the list's name and version and the previous result, as libcni builds it. */
export function pluginStdin(net: NodeNetwork, plugin: Record<string, unknown>, prevResult: unknown): string {
  return JSON.stringify({
    ...plugin,
    name: net.name,
    cniVersion: net.cniVersion,
    ...(prevResult === undefined ? {} : { prevResult }),
  });
}

/** The message of a plugin's CNI error output, or its raw output. */
export function pluginFailure(type: string, stdout: string, stderr: string, exit: string): string {
  try {
    const e = JSON.parse(stdout) as { code?: unknown; msg?: unknown; details?: unknown };
    if (typeof e.msg === 'string')
      return `${type}: ${e.msg}${typeof e.details === 'string' && e.details !== '' ? ` (${e.details})` : ''} [CNI error ${String(e.code)}]`;
  } catch {
    // not JSON: the raw output says more than nothing
  }
  return `${type}: ${exit}: ${(stdout.trim() || stderr.trim()).slice(0, 300)}`;
}

function execPlugin(
  path: string,
  env: Record<string, string>,
  stdin: string,
): Promise<{ stdout: string; stderr: string; exit?: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      path,
      [],
      { env, timeout: PLUGIN_TIMEOUT_MS, encoding: 'utf8', maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({
          stdout,
          stderr,
          ...(err === null
            ? {}
            : { exit: err.killed ? `timed out after ${PLUGIN_TIMEOUT_MS} ms` : `exit ${String(err.code)}` }),
        }),
    );
    child.stdin?.end(stdin);
  });
}

/**
 * Runs ADD of every chained plugin in order; returns the final result. A failing plugin throws
 * AMBIT_ERR_CNI_PLUGIN with its CNI error: the pod's sandbox is not ready and must not start.
 */
export async function cniAdd(
  cni: NodeCni,
  net: NodeNetwork,
  pod: CniPodRef,
  primary: CniResult,
): Promise<{ result: unknown; plugins: string[] }> {
  let result: unknown = primary;
  const ran: string[] = [];
  for (const plugin of net.chained) {
    const type = String(plugin.type);
    const path = join(cni.binDir, type);
    if (!existsSync(path))
      throw new AmbitError(
        ErrorCode.CNI_PLUGIN,
        `${type}: no such plugin in ${cni.binDir} (named by ${net.file})`,
      );
    const r = await execPlugin(path, cniEnv('ADD', pod, cni.binDir), pluginStdin(net, plugin, result));
    if (r.exit !== undefined)
      throw new AmbitError(ErrorCode.CNI_PLUGIN, pluginFailure(type, r.stdout, r.stderr, r.exit));
    try {
      result = JSON.parse(r.stdout);
    } catch {
      throw new AmbitError(
        ErrorCode.CNI_PLUGIN,
        `${type}: ADD printed no JSON result: ${r.stdout.slice(0, 200)}`,
      );
    }
    ran.push(type);
  }
  return { result, plugins: ran };
}

/** Runs DEL of every chained plugin in reverse order; every plugin is called even when one fails. */
export async function cniDel(
  cni: NodeCni,
  net: NodeNetwork,
  pod: CniPodRef,
  prevResult: unknown,
): Promise<string[]> {
  const failures: string[] = [];
  for (const plugin of [...net.chained].reverse()) {
    const type = String(plugin.type);
    const path = join(cni.binDir, type);
    if (!existsSync(path)) continue;
    const r = await execPlugin(path, cniEnv('DEL', pod, cni.binDir), pluginStdin(net, plugin, prevResult));
    if (r.exit !== undefined) failures.push(pluginFailure(type, r.stdout, r.stderr, r.exit));
  }
  return failures;
}

/** The MAC addresses of the pod's link ends, for the result's interfaces. */
export async function linkMacs(
  nodeNetns: string,
  hostVeth: string,
  podNetns: string,
): Promise<{ hostMac?: string; podMac?: string }> {
  const mac = async (netns: string, dev: string): Promise<string | undefined> => {
    try {
      const out = JSON.parse(await run('ip', ['-j', '-n', netns, 'link', 'show', dev])) as {
        address?: string;
      }[];
      return out[0]?.address;
    } catch {
      return undefined;
    }
  };
  const [hostMac, podMac] = await Promise.all([mac(nodeNetns, hostVeth), mac(podNetns, 'eth0')]);
  return { ...(hostMac === undefined ? {} : { hostMac }), ...(podMac === undefined ? {} : { podMac }) };
}
