/**
 * Field paths of a Kubernetes object, as server-side apply names them in `managedFields` (FieldsV1):
 * `f:<field>` for a map key, `k:{"name":"web"}` for an item of an associative list (one whose items
 * are identified by key fields: containers by `name`, container ports by `containerPort` and
 * `protocol`...). Other lists and every scalar are atomic: a leaf. Pure; shared by the API server of
 * local mode (which keeps managedFields) and the control plane (which checks whether the fields it
 * applies still hold the values it applied).
 */

export type Json = Record<string, unknown>;

/** A path: its segments, `f:spec`, `f:containers`, `k:{"name":"web"}`, `f:image`. */
export type FieldPath = readonly string[];

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Fields an apply never owns: identity, server-set metadata and the status subresource. */
const TOP_IGNORED = new Set(['apiVersion', 'kind', 'status']);
const META_IGNORED = new Set([
  'name',
  'namespace',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'managedFields',
  'selfLink',
]);

/**
 * The key fields of a list, as the Kubernetes types declare them (`listType=map`, `listMapKeys`),
 * for the lists Ambit's objects use; undefined for an atomic list. `parents` are the field names on
 * the way (container ports and Service ports have different keys).
 */
export function listKeys(field: string, parents: readonly string[]): readonly string[] | undefined {
  switch (field) {
    case 'containers':
    case 'initContainers':
    case 'ephemeralContainers':
    case 'env':
    case 'volumes':
    case 'imagePullSecrets':
      return ['name'];
    case 'volumeMounts':
      return ['mountPath'];
    case 'ports':
      return parents.includes('containers') || parents.includes('initContainers')
        ? ['containerPort', 'protocol']
        : ['port', 'protocol'];
    case 'conditions':
      return ['type'];
    case 'ownerReferences':
      return ['uid'];
    case 'hostAliases':
      return ['ip'];
    default:
      return undefined;
  }
}

/**
 * The merge key of a list in a strategic merge patch (`patchMergeKey`): the first of its list keys
 * (ports merge by their number alone). ownerReferences, keyed for server-side apply, is replaced
 * whole by a strategic merge patch here.
 */
export function patchMergeKey(field: string, parents: readonly string[]): string | undefined {
  return field === 'ownerReferences' ? undefined : listKeys(field, parents)?.[0];
}

/** Defaults the API server fills in before keys are compared (a port's protocol is TCP). */
const KEY_DEFAULTS: Readonly<Record<string, unknown>> = { protocol: 'TCP' };

/** The `k:{...}` segment of a list item (key fields in their declared order). */
export function itemSegment(item: Json, keys: readonly string[]): string {
  const k: Json = {};
  for (const key of keys) k[key] = item[key] ?? KEY_DEFAULTS[key];
  return `k:${JSON.stringify(k)}`;
}

function associative(field: string, parents: readonly string[], v: unknown[]): readonly string[] | undefined {
  const keys = listKeys(field, parents);
  if (keys === undefined || !v.every(isObject)) return undefined;
  // Every item needs its first key (the others default), else the list is taken whole.
  return v.every((i) => (i as Json)[keys[0]!] !== undefined) ? keys : undefined;
}

/**
 * Every field path an object sets: its leaves (scalars, atomic lists, empty maps) and the items of
 * its associative lists. Paths are encoded as JSON arrays, so they go in a Set.
 */
export function fieldSet(obj: Json): Set<string> {
  const out = new Set<string>();
  const walk = (v: Json, path: string[], names: string[]): void => {
    for (const [k, val] of Object.entries(v)) {
      if (val === undefined) continue;
      if (path.length === 0 && TOP_IGNORED.has(k)) continue;
      if (path.length === 1 && path[0] === 'f:metadata' && META_IGNORED.has(k)) continue;
      const p = [...path, `f:${k}`];
      if (isObject(val)) {
        if (Object.keys(val).length === 0) out.add(JSON.stringify(p));
        else walk(val, p, [...names, k]);
      } else if (Array.isArray(val)) {
        const keys = associative(k, names, val);
        if (keys === undefined) out.add(JSON.stringify(p));
        else
          for (const item of val as Json[]) {
            const ip = [...p, itemSegment(item, keys)];
            out.add(JSON.stringify(ip));
            walk(item, ip, [...names, k]);
          }
      } else out.add(JSON.stringify(p));
    }
  };
  walk(obj, [], []);
  return out;
}

export const decodePath = (p: string): FieldPath => JSON.parse(p) as string[];

/** The value at a path; undefined when it is not there. */
export function getAt(obj: unknown, path: FieldPath): unknown {
  let cur: unknown = obj;
  for (const seg of path) {
    if (seg.startsWith('f:')) cur = isObject(cur) ? cur[seg.slice(2)] : undefined;
    else if (seg.startsWith('k:')) {
      if (!Array.isArray(cur)) return undefined;
      const want = JSON.parse(seg.slice(2)) as Json;
      const keys = Object.keys(want);
      cur = cur.find((i) => isObject(i) && itemSegment(i, keys) === seg);
    } else return undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** The path as the API server writes it in messages: `.spec.template.spec.containers[name="web"].image`. */
export function showPath(path: FieldPath): string {
  return path
    .map((seg) => {
      if (seg.startsWith('f:')) return `.${seg.slice(2)}`;
      const k = JSON.parse(seg.slice(2)) as Json;
      return `[${Object.entries(k)
        .map(([n, v]) => `${n}=${JSON.stringify(v)}`)
        .join(',')}]`;
    })
    .join('');
}

/** Same JSON value (key order ignored). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => sameValue(a[k], b[k]));
  }
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((v, i) => sameValue(v, b[i]));
  return a === b;
}

/**
 * The fields of `applied` whose value in `live` differs (or that are missing there): what someone
 * else changed among the fields an applier set. Item paths only need the item to exist.
 */
export function driftedFields(applied: Json, live: Json): string[] {
  const out: string[] = [];
  for (const p of fieldSet(applied)) {
    const path = decodePath(p);
    const want = getAt(applied, path);
    const have = getAt(live, path);
    if (have === undefined || (!path[path.length - 1]!.startsWith('k:') && !sameValue(want, have)))
      out.push(showPath(path));
  }
  return out;
}
