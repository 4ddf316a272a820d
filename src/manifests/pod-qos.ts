import type { QosClass } from '../config/kube-types.js';

/** A container's `resources`, as written (quantities as strings). */
export interface ResourceRequirements {
  readonly requests: Readonly<Record<string, string>>;
  readonly limits: Readonly<Record<string, string>>;
}

const SUFFIXES: Readonly<Record<string, number>> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** The value of a Kubernetes quantity (`500m`, `1.5`, `128Mi`, `1e3`), or undefined when it is not one. */
export function parseQuantity(q: string): number | undefined {
  const m =
    /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:([eE][+-]?[0-9]+)|(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?)$/.exec(
      q,
    );
  if (m === null) return undefined;
  const n = Number(m[1]);
  if (m[2] !== undefined) return n * 10 ** Number(m[2].slice(1));
  return n * (SUFFIXES[m[3] ?? ''] as number);
}

/** The resources the QoS class looks at (the kubelet ignores the others, such as ephemeral-storage). */
const QOS_RESOURCES = ['cpu', 'memory'] as const;

/**
 * A pod's QoS class, the kubelet's way: BestEffort when no container requests or limits cpu or
 * memory; Guaranteed when every container limits both and requests what it limits (a missing request
 * defaults to the limit, as the API server fills it in); Burstable otherwise. Zero quantities count
 * as unset.
 */
export function podQosClass(containers: readonly { readonly resources?: ResourceRequirements }[]): QosClass {
  let any = false;
  let guaranteed = true;
  for (const c of containers) {
    for (const r of QOS_RESOURCES) {
      const limit = nonZero(c.resources?.limits[r]);
      const request = nonZero(c.resources?.requests[r]) ?? limit;
      if (limit !== undefined || request !== undefined) any = true;
      if (limit === undefined || request !== limit) guaranteed = false;
    }
  }
  if (!any) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

function nonZero(q: string | undefined): number | undefined {
  const v = q === undefined ? undefined : parseQuantity(q);
  return v === undefined || v === 0 ? undefined : v;
}
