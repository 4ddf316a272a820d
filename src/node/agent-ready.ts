import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * The readiness contract between the node's two daemons. They never import each other and share only
 * the node's filesystem (the DaemonSet mounts /var/run/ambit into both containers), so the agent
 * states its readiness as a file: written, atomically, once its redirect links are attached and its
 * first cluster view is reconciled; rewritten on a heartbeat (`refreshedAt`) after the kernel has been
 * asked again; removed when it stops or a link loses its program. The file lives on a host path and
 * survives an agent killed with SIGKILL (whose pid means nothing in another container), so the
 * heartbeat is what tells a live claim from a dead agent's. The node proxy, given the path, answers
 * its readiness probe (15021 /healthz/ready) true only while the file holds a valid claim for its
 * own node refreshed within AGENT_READY_STALE_MS, so the pod turns ready when links, cluster view and
 * proxy listeners are all in place, and not ready a few heartbeats after the agent died.
 *
 * The file lives beside, never at, the CNI plugin's socket (/var/run/ambit/cni.sock).
 */
export const DEFAULT_AGENT_READY_FILE = '/var/run/ambit/agent-ready.json';

/** How often a live agent refreshes its claim. */
export const AGENT_READY_HEARTBEAT_MS = 5_000;

/** A claim not refreshed for this long (three heartbeats) is a dead or stuck agent's. */
export const AGENT_READY_STALE_MS = 3 * AGENT_READY_HEARTBEAT_MS;

/** What the agent writes: the claim and the facts behind it (for people reading the file). */
export interface AgentReadyClaim {
  readonly node: string;
  /** The attach point of the redirect programs. */
  readonly podsCgroup: string;
  /** Program ids attached to the pods cgroup, per program, as the kernel answered at the time. */
  readonly links: Readonly<Record<string, readonly number[]>>;
  /** The first reconciled cluster view. */
  readonly cluster: { readonly pods: number; readonly namespaces: number; readonly enrolled: number };
  /** When this run of readiness began. */
  readonly readyAt: string;
  /** The last heartbeat: when the agent last found its links attached and its view reconciled. */
  readonly refreshedAt: string;
}

/** Writes the claim atomically (a reader sees the old file, no file, or the whole new one). */
export function writeAgentReady(path: string, claim: AgentReadyClaim): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(tmp, `${JSON.stringify(claim, null, 2)}\n`, { mode: 0o644 });
  renameSync(tmp, path);
}

/** Removes the claim (a missing file is fine). */
export function withdrawAgentReady(path: string): void {
  rmSync(path, { force: true });
}

/** The attach types that have no program in `links` (every one must have one to claim readiness). */
export function missingLinks(links: Readonly<Record<string, readonly number[]>>): string[] {
  return Object.entries(links)
    .filter(([, ids]) => ids.length === 0)
    .map(([prog]) => prog);
}

/**
 * Pure: why the agent is not ready, from the file's text (undefined when there is no file), or
 * undefined when the file is a valid claim for `node` refreshed at most `staleMs` before `now`.
 */
export function agentNotReadyReason(
  text: string | undefined,
  node: string,
  path: string,
  now: Date,
  staleMs = AGENT_READY_STALE_MS,
): string | undefined {
  if (text === undefined)
    return `node agent not ready: ${path} is missing (redirect links not attached or first cluster view not reconciled yet)`;
  let claim: unknown;
  try {
    claim = JSON.parse(text);
  } catch {
    return `node agent not ready: ${path} is not JSON`;
  }
  if (typeof claim !== 'object' || claim === null)
    return `node agent not ready: ${path} is not a readiness claim`;
  const c = claim as Partial<Record<keyof AgentReadyClaim, unknown>>;
  if (c.node !== node)
    return `node agent not ready: ${path} is for node ${JSON.stringify(c.node)}, this proxy serves ${JSON.stringify(node)}`;
  if (typeof c.links !== 'object' || c.links === null || Object.keys(c.links).length === 0)
    return `node agent not ready: ${path} lists no redirect links`;
  const links = c.links as Record<string, unknown>;
  if (!Object.values(links).every((ids) => Array.isArray(ids)))
    return `node agent not ready: ${path} is not a readiness claim (links)`;
  const missing = missingLinks(links as Record<string, readonly number[]>);
  if (missing.length > 0) return `node agent not ready: no program attached for ${missing.join(', ')}`;
  const refreshed = typeof c.refreshedAt === 'string' ? Date.parse(c.refreshedAt) : Number.NaN;
  if (Number.isNaN(refreshed)) return `node agent not ready: ${path} is not a readiness claim (refreshedAt)`;
  const age = now.getTime() - refreshed;
  if (age > staleMs)
    return `node agent not ready: ${path} was last refreshed at ${c.refreshedAt as string}, ${Math.floor(age / 1000)}s ago, more than ${staleMs / 1000}s (the agent refreshes it every ${AGENT_READY_HEARTBEAT_MS / 1000}s: is the node agent running?)`;
  return undefined;
}

/** Reads the file and judges it (agentNotReadyReason); for a readiness probe, so cheap and never throwing. */
export function agentReadiness(path: string, node: string, now: Date = new Date()): string | undefined {
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      return `node agent not ready: cannot read ${path}: ${(err as Error).message}`;
  }
  return agentNotReadyReason(text, node, path, now);
}
