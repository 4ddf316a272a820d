import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Which pod sandbox (the CNI call's containerId) enrolled each pod cgroup. A pod's cgroup is shared by
 * every sandbox the runtime ever made for it, so a DEL must not be read as "this pod stopped": a late
 * DEL of an old sandbox, or the DEL of a sandbox that an earlier agent saw, comes while the pod runs
 * with a newer one. Only the DEL of the sandbox whose ADD enrolled the pod unenrolls it; every other
 * case is left to the API reconcile, which unenrolls a pod once it is gone or out of the mesh.
 *
 * The record lives in a file beside the CNI socket (the DaemonSet's hostPath /var/run/ambit), so a
 * restarted agent finds what its predecessor recorded; a reboot empties it along with every sandbox.
 */
export type DelDecision =
  | { readonly unenroll: true }
  | { readonly unenroll: false; readonly reason: 'not-enrolled' | 'no-sandbox' | 'other-sandbox' };

/**
 * Whether a DEL unenrolls: `enrolledBy` is the sandbox recorded for the pod's cgroup (undefined: none
 * recorded, the pod was enrolled from the API view), `enrolled` whether the cgroup is in the map.
 */
export function delDecision(
  containerId: string,
  enrolledBy: string | undefined,
  enrolled: boolean,
): DelDecision {
  if (!enrolled) return { unenroll: false, reason: 'not-enrolled' };
  if (enrolledBy === undefined) return { unenroll: false, reason: 'no-sandbox' };
  if (enrolledBy !== containerId) return { unenroll: false, reason: 'other-sandbox' };
  return { unenroll: true };
}

const VERSION = 1;

/** The file a record is kept in, beside the CNI socket. */
export function cniSandboxesFile(socket: string): string {
  return join(dirname(socket), 'cni-sandboxes.json');
}

/** The record, persisted on every change (one small JSON object: {version, sandboxes: {cgroupId: containerId}}). */
export class SandboxRecord {
  private readonly byCgroup = new Map<string, string>();

  /** `file` undefined: kept in memory only (tests). */
  constructor(private readonly file: string | undefined) {
    if (file === undefined || !existsSync(file)) return;
    try {
      const raw = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown; sandboxes?: unknown };
      if (raw.version !== VERSION || typeof raw.sandboxes !== 'object' || raw.sandboxes === null) return;
      for (const [id, c] of Object.entries(raw.sandboxes))
        if (/^\d+$/.test(id) && typeof c === 'string') this.byCgroup.set(id, c);
    } catch {
      // An unreadable record: DELs then unenroll nothing, and the API reconcile decides alone.
    }
  }

  /** The sandbox that enrolled this cgroup. */
  sandboxOf(id: bigint): string | undefined {
    return this.byCgroup.get(id.toString());
  }

  /** The cgroup this sandbox enrolled. */
  cgroupOf(containerId: string): bigint | undefined {
    for (const [id, c] of this.byCgroup) if (c === containerId) return BigInt(id);
    return undefined;
  }

  set(id: bigint, containerId: string): void {
    if (this.byCgroup.get(id.toString()) === containerId) return;
    this.byCgroup.set(id.toString(), containerId);
    this.save();
  }

  delete(id: bigint): void {
    if (this.byCgroup.delete(id.toString())) this.save();
  }

  /** Forgets the cgroups that are no longer enrolled (unenrolled by the reconcile). */
  retain(enrolled: Iterable<bigint>): void {
    const keep = new Set([...enrolled].map(String));
    let changed = false;
    for (const id of [...this.byCgroup.keys()])
      if (!keep.has(id)) {
        this.byCgroup.delete(id);
        changed = true;
      }
    if (changed) this.save();
  }

  private save(): void {
    if (this.file === undefined) return;
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = join(dirname(this.file), `.${basename(this.file)}.ambit-tmp`);
    const sandboxes = Object.fromEntries([...this.byCgroup].sort(([a], [b]) => (a < b ? -1 : 1)));
    writeFileSync(tmp, `${JSON.stringify({ version: VERSION, sandboxes })}\n`, { mode: 0o644 });
    renameSync(tmp, this.file);
  }
}
