import {
  decodePath,
  type FieldPath,
  fieldSet,
  getAt,
  isObject,
  itemSegment,
  type Json,
  listKeys,
  sameValue,
  showPath,
} from '../../kube/field-paths.js';

/*
 * Server-side apply and managedFields, the subset of kube-apiserver's (structured-merge-diff) that
 * local mode serves. What holds, as on a real API server:
 * - an apply (PATCH application/apply-patch+yaml) names its fieldManager; the fields its
 *   configuration sets become that manager's (operation Apply); a field it set before and leaves
 *   out now is removed, unless another manager also owns it;
 * - maps merge key by key; associative lists (containers by name, ports by port and protocol, env by
 *   name...) merge item by item, so an item another manager added stays; other lists are atomic;
 * - applying a value to a field another manager owns with a different value is a conflict (409, with
 *   each field and its manager) unless `force`, which takes the field over; the same value is shared;
 * - every other write (create, update, merge/strategic/JSON patch, scale) is an Update by its
 *   manager: the fields it changed become its, and no one else's.
 * Simplified: field ownership is kept per object, not per API version (no conversion); an object
 * that was never written through the API (a manifest file) has no managers, so a first apply takes
 * its fields without conflict (kube-apiserver would attribute them to `before-first-apply`); apply
 * with an explicit null is treated as "not set"; no `$patch` directives in apply configurations.
 */

export interface ManagedFieldsEntry {
  readonly manager: string;
  readonly operation: 'Apply' | 'Update';
  readonly apiVersion: string;
  readonly time: string;
  readonly fieldsType: 'FieldsV1';
  readonly fieldsV1: Json;
  readonly subresource?: string;
}

export interface FieldConflict {
  readonly manager: string;
  /** `.spec.replicas`. */
  readonly field: string;
}

export class ApplyConflictError extends Error {
  constructor(readonly conflicts: readonly FieldConflict[]) {
    super(
      `Apply failed with ${conflicts.length} conflict${conflicts.length === 1 ? '' : 's'}: ${conflicts
        .map((c) => `conflict with "${c.manager}": ${c.field}`)
        .join('; ')}`,
    );
  }
}

/** A set of paths as FieldsV1: nested `f:`/`k:` objects, `.` marking a list item that is owned itself. */
export function toFieldsV1(set: ReadonlySet<string>): Json {
  const root: Json = {};
  for (const p of [...set].sort()) {
    const path = decodePath(p);
    let node = root;
    for (const seg of path) {
      node[seg] ??= {};
      node = node[seg] as Json;
    }
    if (path[path.length - 1]?.startsWith('k:')) node['.'] = {};
  }
  return root;
}

export function fromFieldsV1(f: Json): Set<string> {
  const out = new Set<string>();
  const walk = (node: Json, path: string[]): void => {
    const keys = Object.keys(node);
    if (keys.length === 0 && path.length > 0) out.add(JSON.stringify(path));
    for (const k of keys) {
      if (k === '.') out.add(JSON.stringify(path));
      else if (isObject(node[k])) walk(node[k], [...path, k]);
    }
  };
  walk(f, []);
  return out;
}

/** Merges an apply configuration into an object: maps by key, associative lists by item, the rest replaced. */
export function mergeApplied(live: unknown, config: unknown, names: readonly string[] = []): unknown {
  if (isObject(config)) {
    const out: Json = isObject(live) ? { ...live } : {};
    for (const [k, v] of Object.entries(config)) {
      if (v === null || v === undefined) continue;
      out[k] = mergeField(out[k], v, k, names);
    }
    return out;
  }
  return structuredClone(config);
}

function mergeField(live: unknown, config: unknown, field: string, names: readonly string[]): unknown {
  if (Array.isArray(config)) {
    const keys = listKeys(field, names);
    if (keys === undefined || !config.every(isObject)) return structuredClone(config);
    const out = Array.isArray(live) ? [...live] : [];
    for (const item of config as Json[]) {
      const seg = itemSegment(item, keys);
      const at = out.findIndex((x) => isObject(x) && itemSegment(x, keys) === seg);
      if (at >= 0) out[at] = mergeApplied(out[at], item, [...names, field]);
      else out.push(mergeApplied(undefined, item, [...names, field]));
    }
    return out;
  }
  return mergeApplied(live, config, [...names, field]);
}

/** Removes the field or list item at `path` (in place), and the maps left empty by it. */
function removeAt(obj: Json, path: FieldPath): void {
  if (path.length === 0) return;
  const parent = getAt(obj, path.slice(0, -1));
  const last = path[path.length - 1]!;
  if (last.startsWith('f:') && isObject(parent)) delete parent[last.slice(2)];
  else if (last.startsWith('k:') && Array.isArray(parent)) {
    const keys = Object.keys(JSON.parse(last.slice(2)) as Json);
    const at = parent.findIndex((i) => isObject(i) && itemSegment(i, keys) === last);
    if (at >= 0) parent.splice(at, 1);
  }
  if (
    path.length > 1 &&
    last.startsWith('f:') &&
    isObject(parent) &&
    Object.keys(parent).length === 0 &&
    path[path.length - 2]!.startsWith('f:')
  )
    removeAt(obj, path.slice(0, -1));
}

function entrySets(
  managed: readonly ManagedFieldsEntry[],
): { entry: ManagedFieldsEntry; set: Set<string> }[] {
  return managed.map((entry) => ({ entry, set: fromFieldsV1(entry.fieldsV1) }));
}

function rebuild(
  sets: { entry: ManagedFieldsEntry; set: Set<string> }[],
  present: ReadonlySet<string>,
): ManagedFieldsEntry[] {
  const out: ManagedFieldsEntry[] = [];
  for (const { entry, set } of sets) {
    const kept = new Set([...set].filter((p) => present.has(p)));
    if (kept.size === 0) continue;
    out.push({ ...entry, fieldsV1: toFieldsV1(kept) });
  }
  return out;
}

export interface ApplyInput {
  /** The object now (its stored form), or undefined when the apply creates it. */
  readonly live: Json | undefined;
  readonly managed: readonly ManagedFieldsEntry[];
  readonly manager: string;
  readonly config: Json;
  readonly force: boolean;
  readonly apiVersion: string;
  readonly now: string;
}

/** A server-side apply: the object it makes and the managedFields after it; throws ApplyConflictError. */
export function serverSideApply(a: ApplyInput): { object: Json; managed: ManagedFieldsEntry[] } {
  const live = a.live ?? {};
  const mine = fieldSet(a.config);
  const sets = entrySets(a.managed);
  const conflicts: FieldConflict[] = [];
  const taken = new Map<ManagedFieldsEntry, Set<string>>();
  for (const { entry, set } of sets) {
    if (entry.manager === a.manager && entry.operation === 'Apply') continue;
    for (const p of mine) {
      if (!set.has(p)) continue;
      const path = decodePath(p);
      if (path[path.length - 1]!.startsWith('k:')) continue; // An item both name is shared, not contested.
      if (sameValue(getAt(live, path), getAt(a.config, path))) continue;
      conflicts.push({ manager: entry.manager, field: showPath(path) });
      taken.set(entry, (taken.get(entry) ?? new Set()).add(p));
    }
  }
  if (conflicts.length > 0 && !a.force) throw new ApplyConflictError(conflicts);
  for (const s of sets) for (const p of taken.get(s.entry) ?? []) s.set.delete(p);

  const previous = sets.find((s) => s.entry.manager === a.manager && s.entry.operation === 'Apply');
  const others = new Set(sets.filter((s) => s !== previous).flatMap((s) => [...s.set]));
  const merged = mergeApplied(structuredClone(live), a.config) as Json;
  // What this manager applied before, leaves out now, and no one else owns, goes (deepest first).
  const gone = [...(previous?.set ?? [])].filter((p) => !mine.has(p) && !others.has(p)).map(decodePath);
  // An item that goes takes its fields along (removing them first would lose the item's key).
  const items = gone.filter((p) => p[p.length - 1]!.startsWith('k:')).map((p) => JSON.stringify(p));
  const dropped = gone
    .filter((p) => !p.some((_, i) => i < p.length - 1 && items.includes(JSON.stringify(p.slice(0, i + 1)))))
    .sort((x, y) => y.length - x.length);
  for (const path of dropped) removeAt(merged, path);

  const entry: ManagedFieldsEntry = {
    manager: a.manager,
    operation: 'Apply',
    apiVersion: a.apiVersion,
    time: a.now,
    fieldsType: 'FieldsV1',
    fieldsV1: toFieldsV1(mine),
  };
  const rest = sets.filter((s) => s !== previous);
  const present = fieldSet(merged);
  return { object: merged, managed: [...rebuild(rest, present), entry] };
}

export interface UpdateInput {
  readonly before: Json | undefined;
  readonly after: Json;
  readonly managed: readonly ManagedFieldsEntry[];
  readonly manager: string;
  readonly apiVersion: string;
  readonly now: string;
  readonly subresource?: string;
}

/** Any other write: the fields it changed become the manager's (an Update entry) and no one else's. */
export function recordUpdate(u: UpdateInput): ManagedFieldsEntry[] {
  const before = u.before === undefined ? new Set<string>() : fieldSet(u.before);
  const after = fieldSet(u.after);
  const changed = new Set(
    [...after].filter((p) => {
      if (!before.has(p)) return true;
      const path = decodePath(p);
      return !sameValue(getAt(u.before, path), getAt(u.after, path));
    }),
  );
  const sets = entrySets(u.managed);
  for (const s of sets) for (const p of changed) s.set.delete(p);
  let mine = sets.find((s) => s.entry.manager === u.manager && s.entry.operation === 'Update');
  if (mine === undefined && changed.size > 0) {
    mine = {
      entry: {
        manager: u.manager,
        operation: 'Update',
        apiVersion: u.apiVersion,
        time: u.now,
        fieldsType: 'FieldsV1',
        fieldsV1: {},
        ...(u.subresource === undefined ? {} : { subresource: u.subresource }),
      },
      set: new Set(),
    };
    sets.push(mine);
  }
  if (mine !== undefined && changed.size > 0) {
    for (const p of changed) mine.set.add(p);
    const at = sets.indexOf(mine);
    sets[at] = { entry: { ...mine.entry, time: u.now }, set: mine.set };
  }
  return rebuild(sets, after);
}

/** The field manager of a write that names none: kube-apiserver takes the user agent's first word. */
export function defaultManager(userAgent: string | undefined): string {
  const first = (userAgent ?? '').split('/')[0]?.trim() ?? '';
  return first === '' ? 'unknown' : first.slice(0, 128);
}
