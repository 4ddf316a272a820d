import {
  CA_ROOT_CONFIGMAP,
  CA_ROOT_KEY,
  CA_ROOT_MANAGED_BY,
  MANAGED_BY_LABEL,
} from '../gateway-api/waypoint-render.js';
import type { Json } from '../kube/field-paths.js';

/*
 * What the CA root publisher (ca-root-publisher.ts) decides, as pure functions: which namespaces get
 * the ConfigMap `ambit-ca-root-cert`, what it holds, and whether one observed in a namespace must be
 * applied again.
 *
 * Which namespaces: every namespace that is not being deleted, the system ones (kube-system,
 * kube-public, kube-node-lease) included. Istio's namespace controller skips those because istiod
 * never meshes them; Ambit neither refuses a waypoint Gateway nor enrollment there, and a node pod or
 * waypoint whose ConfigMap is missing does not start, so skipping them would leave a pod that Ambit
 * accepted unable to run. What is published is a public root certificate, nothing secret: one small
 * object per namespace is the whole cost. A namespace being deleted is skipped (the API refuses new
 * objects in it).
 */

/** The label that marks the ConfigMap as the control plane's (`kubectl get cm -A -l ...`). */
export const CA_ROOT_LABELS: Readonly<Record<string, string>> = { [MANAGED_BY_LABEL]: CA_ROOT_MANAGED_BY };

/** The ConfigMaps are watched by name in every namespace (a field selector the API serves for every kind). */
export const CA_ROOT_FIELD_SELECTOR = `metadata.name=${CA_ROOT_CONFIGMAP}`;

export interface CaRootConfigMap {
  readonly apiVersion: 'v1';
  readonly kind: 'ConfigMap';
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly labels: Record<string, string>;
  };
  readonly data: Record<string, string>;
}

/** The PEM text of a trust bundle: every root, the signing one first, each ending in a newline. */
export function bundleText(bundle: readonly string[]): string {
  return bundle.map((pem) => (pem.endsWith('\n') ? pem : `${pem}\n`)).join('');
}

/** The ConfigMap as the control plane applies it in `namespace`. */
export function caRootConfigMap(namespace: string, bundle: readonly string[]): CaRootConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: CA_ROOT_CONFIGMAP, namespace, labels: { ...CA_ROOT_LABELS } },
    data: { [CA_ROOT_KEY]: bundleText(bundle) },
  };
}

export interface ObservedNamespace {
  readonly name: string;
  /** `status.phase`: `Terminating` once the namespace is being deleted. */
  readonly phase?: string;
  readonly deleting?: boolean;
}

/** Reads what the decision needs from a Namespace as the API serves it. */
export function observedNamespace(o: Json): ObservedNamespace | undefined {
  const m = (o.metadata ?? {}) as Json;
  if (typeof m.name !== 'string' || m.name === '') return undefined;
  const phase = ((o.status ?? {}) as Json).phase;
  return {
    name: m.name,
    ...(typeof phase === 'string' ? { phase } : {}),
    ...(m.deletionTimestamp !== undefined && m.deletionTimestamp !== null ? { deleting: true } : {}),
  };
}

/** The namespaces that get the ConfigMap (see above), sorted. */
export function caRootNamespaces(namespaces: readonly ObservedNamespace[]): string[] {
  return namespaces
    .filter((n) => n.phase !== 'Terminating' && n.deleting !== true)
    .map((n) => n.name)
    .sort();
}

/**
 * Why an observed ConfigMap must be applied again, or undefined when it holds what the control plane
 * sets: missing (deleted, or the namespace is new), the bundle differs (a rotation, or someone edited
 * it), or the label is gone. Fields others added (another key, another label) are theirs: server-side
 * apply leaves them, so they are no reason.
 */
export function caRootDrift(desired: CaRootConfigMap, observed: Json | undefined): string | undefined {
  if (observed === undefined) return 'missing';
  const data = (observed.data ?? {}) as Json;
  if (data[CA_ROOT_KEY] !== desired.data[CA_ROOT_KEY])
    return data[CA_ROOT_KEY] === undefined ? `${CA_ROOT_KEY} is missing` : `${CA_ROOT_KEY} differs`;
  const labels = (((observed.metadata ?? {}) as Json).labels ?? {}) as Json;
  for (const [k, v] of Object.entries(desired.metadata.labels))
    if (labels[k] !== v) return `label ${k} is not ${v}`;
  return undefined;
}

/** The ConfigMaps to apply now (namespace and why): none before the bundle is known. */
export function planCaRoots(
  namespaces: readonly ObservedNamespace[],
  bundle: readonly string[] | undefined,
  observed: ReadonlyMap<string, Json>,
): { object: CaRootConfigMap; why: string }[] {
  if (bundle === undefined || bundle.length === 0) return [];
  const out: { object: CaRootConfigMap; why: string }[] = [];
  for (const ns of caRootNamespaces(namespaces)) {
    const object = caRootConfigMap(ns, bundle);
    const why = caRootDrift(object, observed.get(ns));
    if (why !== undefined) out.push({ object, why });
  }
  return out;
}
