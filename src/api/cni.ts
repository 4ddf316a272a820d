import { dirname, join } from 'node:path';

/**
 * The wire between the CNI plugin (src/node-agent/cni-plugin/ambit-cni.c) and the node agent: one
 * HTTP/1.1 POST per CNI call on the agent's Unix socket, carrying what the runtime gave the plugin.
 * The agent learns everything else about the pod (labels, QoS class, namespace labels) from its own
 * view of the Kubernetes API.
 */

/** The HTTP path of a CNI call on the agent's socket. */
export const CNI_CALL_PATH = '/v1/cni';

/** Where the agent's CNI socket is by default (the DaemonSet mounts /var/run/ambit from the host). */
export const DEFAULT_CNI_SOCKET = '/var/run/ambit/cni.sock';

/**
 * The namespaces whose pods may belong in the mesh, beside the socket: what the plugin reads when the
 * agent cannot be reached, to fail closed for the pods that must not start outside the mesh. Its first
 * line is NAMESPACES_FILE_HEADER (the format's version; the plugin fails closed on any other), then one
 * namespace per line: every enrolled namespace, and every namespace in which a pod the agent knows
 * opts in by its own label (see failClosedNamespaces).
 */
export function enrolledNamespacesFile(socket: string): string {
  return join(dirname(socket), 'enrolled-namespaces');
}

/** The first line of the namespaces file: its format and version (ambit-cni.c checks it). */
export const NAMESPACES_FILE_HEADER = 'ambit-cni-namespaces v2';

export const CNI_COMMANDS = ['ADD', 'DEL', 'CHECK'] as const;
export type CniCommand = (typeof CNI_COMMANDS)[number];

/** One CNI call as the plugin forwards it. */
export interface CniCall {
  readonly command: CniCommand;
  readonly containerId: string;
  readonly netns: string;
  readonly ifname: string;
  /** CNI_ARGS as key/value pairs (K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID, K8S_POD_INFRA_CONTAINER_ID). */
  readonly args: Readonly<Record<string, string>>;
  readonly cniVersion: string;
  /** The pod's addresses from the primary plugin's result (prevResult.ips), without prefix length. */
  readonly ips: readonly string[];
}

/** The Kubernetes pod a call is for, from its CNI_ARGS; undefined for a call that is not for a pod. */
export function podOfCall(call: CniCall): { namespace: string; name: string; uid?: string } | undefined {
  const namespace = call.args.K8S_POD_NAMESPACE ?? '';
  const name = call.args.K8S_POD_NAME ?? '';
  if (namespace === '' || name === '') return undefined;
  const uid = call.args.K8S_POD_UID;
  return { namespace, name, ...(uid === undefined || uid === '' ? {} : { uid }) };
}

/** The CNI error object (the spec's shape), which the plugin prints as its own. */
export interface CniErrorBody {
  readonly cniVersion: string;
  readonly code: number;
  readonly msg: string;
  readonly details: string;
}

/** CNI spec error codes the agent answers with. */
export const CniErrorCode = {
  INVALID_ENV: 4,
  DECODE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
} as const;

/** The agent's answer to a call it carried out. */
export interface CniCallResult {
  readonly enrolled: boolean;
  readonly cgroupId?: string;
  /** Why the pod is not enrolled, or what was odd about it. */
  readonly notes: readonly string[];
}

/** Parses the body the plugin sends; a string is the problem, for a CNI error. */
export function parseCniCall(raw: unknown): CniCall | string {
  if (typeof raw !== 'object' || raw === null) return 'the body is not a JSON object';
  const r = raw as Record<string, unknown>;
  if (typeof r.command !== 'string' || !(CNI_COMMANDS as readonly string[]).includes(r.command))
    return `command ${JSON.stringify(r.command)} is not one of ${CNI_COMMANDS.join(', ')}`;
  for (const k of ['containerId', 'netns', 'ifname'] as const)
    if (typeof r[k] !== 'string') return `${k} is not a string`;
  const args: Record<string, string> = {};
  if (typeof r.args === 'object' && r.args !== null)
    for (const [k, v] of Object.entries(r.args)) if (typeof v === 'string') args[k] = v;
  const config = (typeof r.config === 'object' && r.config !== null ? r.config : {}) as Record<
    string,
    unknown
  >;
  const prev = config.prevResult as { ips?: unknown } | undefined;
  const ips = Array.isArray(prev?.ips)
    ? prev.ips.flatMap((ip: unknown) => {
        const a = (ip as { address?: unknown })?.address;
        return typeof a === 'string' && a !== '' ? [a.split('/')[0]!] : [];
      })
    : [];
  return {
    command: r.command as CniCommand,
    containerId: r.containerId as string,
    netns: r.netns as string,
    ifname: r.ifname as string,
    args,
    cniVersion: typeof config.cniVersion === 'string' ? config.cniVersion : '1.0.0',
    ips,
  };
}
