import { patchMergeKey } from '../../kube/field-paths.js';
import type { Json } from './selectors.js';

/**
 * The three patch types kubectl sends, applied to an object: JSON merge patch (RFC 7386, `kubectl label`,
 * `kubectl apply` on custom resources), strategic merge patch (`kubectl apply` and `patch` on built-in
 * kinds: lists of containers, ports, env... merge by their key), and JSON patch (RFC 6902, `kubectl
 * patch --type json`). Pure; a patch that cannot apply throws PatchError with the path.
 */
export class PatchError extends Error {}

export const PatchType = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
} as const;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Json = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export function strategicMergePatch(target: unknown, patch: unknown, path: readonly string[] = []): unknown {
  if (!isObject(patch)) return patch;
  if (patch.$patch === 'replace') {
    const { $patch: _, ...rest } = patch;
    return rest;
  }
  if (patch.$patch === 'delete') return undefined;
  const out: Json = isObject(target) ? { ...target } : {};
  let retain: unknown;
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$retainKeys') {
      retain = v;
      continue;
    }
    if (k.startsWith('$setElementOrder/')) continue; // Order only; the merged list keeps the target's order.
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const drop = new Set(Array.isArray(v) ? v.map((x) => JSON.stringify(x)) : []);
      if (Array.isArray(out[field]))
        out[field] = (out[field] as unknown[]).filter((x) => !drop.has(JSON.stringify(x)));
      continue;
    }
    if (k.startsWith('$')) throw new PatchError(`${[...path, k].join('.')}: unknown patch directive`);
    if (v === null) {
      delete out[k];
      continue;
    }
    const key = patchMergeKey(k, path);
    if (Array.isArray(v) && key !== undefined && v.every(isObject)) {
      out[k] = mergeList(Array.isArray(out[k]) ? (out[k] as unknown[]) : [], v, key, [...path, k]);
    } else if (isObject(v)) {
      const merged = strategicMergePatch(out[k], v, [...path, k]);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    } else out[k] = v;
  }
  if (Array.isArray(retain)) {
    const keep = new Set(retain.map(String));
    for (const k of Object.keys(out)) if (!keep.has(k)) delete out[k];
  }
  return out;
}

function mergeList(
  target: readonly unknown[],
  patch: readonly Json[],
  key: string,
  path: readonly string[],
): unknown[] {
  const out = [...target];
  for (const item of patch) {
    const id = item[key];
    if (id === undefined) throw new PatchError(`${path.join('.')}: an element has no merge key "${key}"`);
    const at = out.findIndex((x) => isObject(x) && x[key] === id);
    if (item.$patch === 'delete') {
      if (at >= 0) out.splice(at, 1);
      continue;
    }
    if (at >= 0) out[at] = strategicMergePatch(out[at], item, path);
    else out.push(strategicMergePatch(undefined, item, path));
  }
  return out;
}

function pointer(p: string): string[] {
  if (p === '') return [];
  if (!p.startsWith('/')) throw new PatchError(`"${p}" is not a JSON pointer`);
  return p
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(
  doc: unknown,
  parts: readonly string[],
  op: string,
): { parent: Json | unknown[]; last: string } {
  let cur: unknown = doc;
  for (const part of parts.slice(0, -1)) {
    cur = Array.isArray(cur) ? cur[Number(part)] : isObject(cur) ? cur[part] : undefined;
    if (cur === undefined) throw new PatchError(`${op} /${parts.join('/')}: the path does not exist`);
  }
  if (!Array.isArray(cur) && !isObject(cur))
    throw new PatchError(`${op} /${parts.join('/')}: the path does not exist`);
  return { parent: cur, last: parts[parts.length - 1] ?? '' };
}

function getAt(doc: unknown, parts: readonly string[]): unknown {
  let cur = doc;
  for (const part of parts)
    cur = Array.isArray(cur) ? cur[Number(part)] : isObject(cur) ? cur[part] : undefined;
  return cur;
}

export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch is a list of operations');
  let doc: unknown = structuredClone(target);
  for (const raw of ops) {
    if (!isObject(raw)) throw new PatchError('a JSON patch operation is an object');
    const op = String(raw.op);
    const parts = pointer(String(raw.path ?? ''));
    const set = (value: unknown, insert: boolean): void => {
      if (parts.length === 0) {
        doc = value;
        return;
      }
      const { parent, last } = parentOf(doc, parts, op);
      if (Array.isArray(parent)) {
        const i = last === '-' ? parent.length : Number(last);
        if (!Number.isInteger(i) || i < 0 || i > parent.length)
          throw new PatchError(`${op} ${raw.path}: index out of range`);
        if (insert) parent.splice(i, 0, value);
        else parent[i] = value;
      } else parent[last] = value;
    };
    const remove = (p: readonly string[]): unknown => {
      const { parent, last } = parentOf(doc, p, op);
      const old = getAt(doc, p);
      if (old === undefined) throw new PatchError(`${op} /${p.join('/')}: nothing there to remove`);
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
      return old;
    };
    switch (op) {
      case 'add':
        set(structuredClone(raw.value), true);
        break;
      case 'replace':
        if (getAt(doc, parts) === undefined)
          throw new PatchError(`replace ${raw.path}: nothing there to replace`);
        set(structuredClone(raw.value), false);
        break;
      case 'remove':
        remove(parts);
        break;
      case 'move': {
        const v = remove(pointer(String(raw.from ?? '')));
        set(v, true);
        break;
      }
      case 'copy':
        set(structuredClone(getAt(doc, pointer(String(raw.from ?? '')))), true);
        break;
      case 'test':
        if (JSON.stringify(getAt(doc, parts)) !== JSON.stringify(raw.value))
          throw new PatchError(`test ${raw.path}: the value differs`);
        break;
      default:
        throw new PatchError(`unknown JSON patch operation "${op}"`);
    }
  }
  return doc;
}

/** Applies a patch of the given content type; throws PatchError for a type it does not know. */
export function applyPatch(target: Json, patch: unknown, contentType: string): Json {
  const type = contentType.split(';')[0]?.trim();
  const out =
    type === PatchType.merge
      ? mergePatch(target, patch)
      : type === PatchType.strategic
        ? strategicMergePatch(target, patch)
        : type === PatchType.json
          ? jsonPatch(target, patch)
          : undefined;
  if (out === undefined && type !== PatchType.strategic)
    throw new PatchError(`the patch type ${contentType} is not supported (use merge, strategic or json)`);
  if (!isObject(out)) throw new PatchError('the patched object is not an object');
  return out;
}
