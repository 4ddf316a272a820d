import { createHash } from 'node:crypto';
import type { SourceRef } from '../config/issue.js';
import type { Labels, Manifests, PodSpec } from '../manifests/model.js';

/** A pod the manifests ask for: a Pod object, or one replica of a Deployment. */
export interface DesiredPod {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly annotations: Labels;
  /** `Deployment/<name>` for replicas. */
  readonly owner?: string;
  readonly spec: PodSpec;
  /** Changes whenever anything that requires a new pod changes. */
  readonly specHash: string;
  readonly source: SourceRef;
}

// The alphabet Kubernetes uses for generated name suffixes: no vowels, no look-alikes.
const SAFE = 'bcdfghjklmnpqrstvwxz2456789';

function safeEncode(hex: string, length: number): string {
  let n = BigInt(`0x${hex}`);
  let out = '';
  for (let i = 0; i < length; i++) {
    out += SAFE[Number(n % 27n)];
    n /= 27n;
  }
  return out;
}

function hash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

/**
 * Expands the manifests into pods. Replica names look like Kubernetes' (`backend-7c9f8d5b6d-x2kqz`):
 * the middle part hashes the pod template, so a template change yields new pods, as a rollout would.
 */
export function desiredPods(m: Manifests): DesiredPod[] {
  const out: DesiredPod[] = [];
  for (const p of m.pods) {
    out.push({
      namespace: p.meta.namespace,
      name: p.meta.name,
      labels: p.meta.labels,
      annotations: p.meta.annotations,
      spec: p.spec,
      specHash: hash({ l: p.meta.labels, a: p.meta.annotations, s: p.spec }),
      source: p.source,
    });
  }
  for (const d of m.deployments) {
    const templateHash = hash(d.template);
    const middle = safeEncode(templateHash.slice(0, 16), 10);
    for (let i = 0; i < d.replicas; i++) {
      const suffix = safeEncode(hash([d.meta.namespace, d.meta.name, middle, i]).slice(0, 16), 5);
      out.push({
        namespace: d.meta.namespace,
        name: `${d.meta.name}-${middle}-${suffix}`,
        labels: { ...d.template.labels, 'pod-template-hash': middle },
        annotations: d.template.annotations,
        owner: `Deployment/${d.meta.name}`,
        spec: d.template.spec,
        specHash: templateHash,
        source: d.source,
      });
    }
  }
  return out;
}

/**
 * The Deployments (`ns/name`) with fewer ready pods than replicas: what local mode still waits for
 * before it says the cluster is ready (a waypoint's Deployment is made by the control plane after
 * the manifests' pods have started: its pods come a moment later).
 */
export function unavailableDeployments(
  m: Pick<Manifests, 'deployments'>,
  pods: readonly {
    readonly namespace: string;
    readonly owner?: string;
    readonly ready: boolean;
    readonly deletedAt?: string;
  }[],
): string[] {
  return m.deployments.flatMap((d) => {
    const owner = `Deployment/${d.meta.name}`;
    const ready = pods.filter(
      (p) => p.namespace === d.meta.namespace && p.owner === owner && p.ready && p.deletedAt === undefined,
    ).length;
    return ready < d.replicas ? [`${d.meta.namespace}/${d.meta.name}`] : [];
  });
}
