import type { MeshConfigValue } from '../cluster/resources.js';
import type { SourceRef } from '../config/issue.js';
import type { Labels, Protocol, ServicePort } from '../config/kube-types.js';
import type { ResourceRequirements } from './pod-qos.js';

export type { Labels, Protocol, ServicePort } from '../config/kube-types.js';

/**
 * Readonly domain types for the Kubernetes objects Ambit reads. Wire shapes (YAML, API objects) stop
 * at the parsers in this folder; everything past them works on these types.
 */

export interface ObjectMeta {
  readonly name: string;
  /** '' for cluster-scoped kinds (Namespace). */
  readonly namespace: string;
  readonly labels: Labels;
  readonly annotations: Labels;
}

interface ObjectBase {
  readonly apiVersion: string;
  readonly meta: ObjectMeta;
  readonly source: SourceRef;
}

export interface NamespaceObject extends ObjectBase {
  readonly kind: 'Namespace';
}

export interface ServiceAccountObject extends ObjectBase {
  readonly kind: 'ServiceAccount';
}

export interface ContainerPort {
  readonly name?: string;
  readonly containerPort: number;
  readonly protocol: Protocol;
}

/** An environment variable: a literal value or a downward-API field reference. */
export interface EnvVar {
  readonly name: string;
  readonly value?: string;
  /** `metadata.name`, `metadata.namespace`, `status.podIP`, `spec.nodeName`, `spec.serviceAccountName`, ... */
  readonly fieldRef?: string;
}

export type ProbeAction =
  | { readonly type: 'exec'; readonly command: readonly string[] }
  | {
      readonly type: 'httpGet';
      readonly path: string;
      readonly port: number | string;
      readonly scheme: 'HTTP' | 'HTTPS';
    }
  | { readonly type: 'tcpSocket'; readonly port: number | string };

export interface Probe {
  readonly action: ProbeAction;
  readonly initialDelaySeconds: number;
  readonly periodSeconds: number;
  readonly timeoutSeconds: number;
  readonly successThreshold: number;
  readonly failureThreshold: number;
}

export interface Container {
  readonly name: string;
  readonly image?: string;
  readonly command: readonly string[];
  readonly args: readonly string[];
  readonly env: readonly EnvVar[];
  readonly workingDir?: string;
  readonly ports: readonly ContainerPort[];
  readonly readinessProbe?: Probe;
  readonly livenessProbe?: Probe;
  /** Requests and limits: local mode runs nothing with them but the pod's QoS class (and cgroup) follows. */
  readonly resources?: ResourceRequirements;
}

export const RestartPolicy = { Always: 'Always', OnFailure: 'OnFailure', Never: 'Never' } as const;
export type RestartPolicy = (typeof RestartPolicy)[keyof typeof RestartPolicy];

export interface PodSpec {
  readonly containers: readonly Container[];
  readonly serviceAccountName: string;
  readonly nodeName?: string;
  readonly restartPolicy: RestartPolicy;
  readonly terminationGracePeriodSeconds: number;
  /** The pod shares its node's network namespace and addresses (no pod network, no CNI step). */
  readonly hostNetwork?: true;
}

export interface PodObject extends ObjectBase {
  readonly kind: 'Pod';
  readonly spec: PodSpec;
}

export interface PodTemplate {
  readonly labels: Labels;
  readonly annotations: Labels;
  readonly spec: PodSpec;
}

export interface DeploymentObject extends ObjectBase {
  readonly kind: 'Deployment';
  /** The object as the manifest wrote it: what the API serves (so `kubectl edit` sees every field). */
  readonly manifest?: Readonly<Record<string, unknown>>;
  readonly replicas: number;
  readonly selector: Labels;
  readonly template: PodTemplate;
}

export const IpFamilyPolicy = {
  SingleStack: 'SingleStack',
  PreferDualStack: 'PreferDualStack',
  RequireDualStack: 'RequireDualStack',
} as const;
export type IpFamilyPolicy = (typeof IpFamilyPolicy)[keyof typeof IpFamilyPolicy];

export type IpFamily = 'IPv4' | 'IPv6';

export interface ServiceObject extends ObjectBase {
  readonly kind: 'Service';
  readonly type: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  /** A fixed VIP, `None` for a headless Service, or undefined to have one allocated. */
  readonly clusterIP?: string;
  readonly ports: readonly ServicePort[];
  /** Undefined means the Service has no selector (its endpoints are managed elsewhere). */
  readonly selector?: Labels;
  readonly ipFamilyPolicy: IpFamilyPolicy;
  readonly ipFamilies: readonly IpFamily[];
}

/**
 * An object of a kind that the mesh reads (security policies, Gateway API objects, ...), kept whole
 * for the local cluster's API. Mesh config kinds carry their parsed value too.
 */
export interface KeptObject extends ObjectBase {
  readonly kind: string;
  readonly body: Readonly<Record<string, unknown>>;
  readonly parsed?: MeshConfigValue;
}

export type MeshObject =
  | NamespaceObject
  | ServiceAccountObject
  | PodObject
  | DeploymentObject
  | ServiceObject
  | KeptObject;

/** Everything one set of manifests declares, by kind. */
export interface Manifests {
  readonly namespaces: readonly NamespaceObject[];
  readonly serviceAccounts: readonly ServiceAccountObject[];
  readonly pods: readonly PodObject[];
  readonly deployments: readonly DeploymentObject[];
  readonly services: readonly ServiceObject[];
  readonly kept: readonly KeptObject[];
}

/** `Kind/namespace/name`, or `Kind/name` for cluster-scoped objects. */
export function objectKey(obj: { readonly kind: string; readonly meta: ObjectMeta }): string {
  return obj.meta.namespace === ''
    ? `${obj.kind}/${obj.meta.name}`
    : `${obj.kind}/${obj.meta.namespace}/${obj.meta.name}`;
}
