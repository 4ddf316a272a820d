import type { Json } from './selectors.js';

/*
 * Garbage collection by ownerReferences, as kube-controller-manager's garbage collector decides it:
 * a dependent whose owners are all gone (no object of that kind and name, or one with another UID)
 * is deleted; one that still has an owner loses only the references that dangle. Deleting an owner
 * with `propagationPolicy: Orphan` strips the references to it first; `Foreground` deletes the
 * dependents first (here at once, without the owner's intermediate "deletionTimestamp +
 * foregroundDeletion finalizer" state a real API server shows while it waits). Pure.
 */

export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
  readonly controller?: boolean;
  readonly blockOwnerDeletion?: boolean;
}

export interface Dependent {
  /** The store key of the dependent. */
  readonly key: string;
  readonly namespace: string;
  readonly ownerReferences: readonly OwnerReference[];
}

export type PropagationPolicy = 'Background' | 'Foreground' | 'Orphan';

export function ownerReferencesOf(o: Json): OwnerReference[] {
  const refs = ((o.metadata ?? {}) as Json).ownerReferences;
  if (!Array.isArray(refs)) return [];
  return refs.filter(
    (r): r is OwnerReference =>
      typeof r === 'object' &&
      r !== null &&
      typeof (r as Json).kind === 'string' &&
      typeof (r as Json).name === 'string' &&
      typeof (r as Json).uid === 'string',
  );
}

export interface GcDecision {
  /** Dependents to delete: every owner is gone. */
  readonly delete: readonly string[];
  /** Dependents that keep an owner: the UIDs of the references that dangle, to strip. */
  readonly strip: readonly { readonly key: string; readonly uids: readonly string[] }[];
}

/**
 * What the collector does with each dependent. `ownerUid` is the UID of the object a reference names
 * now, in the dependent's namespace (or cluster-wide for cluster-scoped kinds), undefined if none.
 */
export function collectGarbage(
  dependents: readonly Dependent[],
  ownerUid: (ref: OwnerReference, namespace: string) => string | undefined,
): GcDecision {
  const del: string[] = [];
  const strip: { key: string; uids: string[] }[] = [];
  for (const d of dependents) {
    if (d.ownerReferences.length === 0) continue;
    const dangling = d.ownerReferences.filter((r) => ownerUid(r, d.namespace) !== r.uid);
    if (dangling.length === d.ownerReferences.length) del.push(d.key);
    else if (dangling.length > 0) strip.push({ key: d.key, uids: dangling.map((r) => r.uid) });
  }
  return { delete: del, strip };
}

/** The dependents that name an owner (by UID). */
export function dependentsOf(ownerUid: string, dependents: readonly Dependent[]): Dependent[] {
  return dependents.filter((d) => d.ownerReferences.some((r) => r.uid === ownerUid));
}

/** The policy a delete asks for: DeleteOptions in the body, else the query; Background by default. */
export function propagationPolicy(
  body: unknown,
  query: URLSearchParams,
): PropagationPolicy | { readonly invalid: string } {
  const b = typeof body === 'object' && body !== null ? (body as Json) : {};
  let p: unknown = b.propagationPolicy ?? query.get('propagationPolicy') ?? undefined;
  if (p === undefined && b.orphanDependents === true) p = 'Orphan';
  if (p === undefined || p === '') return 'Background';
  if (p === 'Background' || p === 'Foreground' || p === 'Orphan') return p;
  return { invalid: String(p) };
}

/** An object without the references to `uid`. */
export function withoutOwner(o: Json, uids: readonly string[]): Json {
  const m = (o.metadata ?? {}) as Json;
  const refs = ownerReferencesOf(o).filter((r) => !uids.includes(r.uid));
  const { ownerReferences: _, ...rest } = m;
  return { ...o, metadata: refs.length === 0 ? rest : { ...rest, ownerReferences: refs } };
}
