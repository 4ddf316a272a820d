/**
 * Small value types of the Kubernetes API that every layer shares (labels, protocols, Service ports),
 * and the rules that go with them.
 */

export type Labels = Readonly<Record<string, string>>;

/** A pod's `status.qosClass`, from its containers' resources (the kubelet's cgroup layout depends on it). */
export const QOS_CLASSES = ['Guaranteed', 'Burstable', 'BestEffort'] as const;
export type QosClass = (typeof QOS_CLASSES)[number];

export const Protocol = { TCP: 'TCP', UDP: 'UDP', SCTP: 'SCTP' } as const;
export type Protocol = (typeof Protocol)[keyof typeof Protocol];
export const PROTOCOLS = Object.values(Protocol);

export interface ServicePort {
  readonly name?: string;
  readonly port: number;
  /** A container port number, or the name of a container port. */
  readonly targetPort: number | string;
  readonly protocol: Protocol;
  readonly appProtocol?: string;
}

/** True when every selector label is present with the same value (an empty selector selects nothing). */
export function selectorMatches(selector: Labels, labels: Labels): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

/**
 * The key under which a service port's target port is stored per endpoint: its name, or its number
 * as text for an unnamed port (EndpointSlices name an unnamed port '').
 */
export function servicePortKey(p: { readonly name?: string; readonly port: number }): string {
  return p.name ?? String(p.port);
}
