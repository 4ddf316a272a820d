import type { Labels } from '../config/kube-types.js';
import type { ResponseFlag } from './outcomes.js';

/** What telemetry needs to know of a workload (a mesh Workload is one). */
export interface PeerWorkload {
  readonly name: string;
  readonly namespace: string;
  readonly app: string;
  readonly workloadName: string;
  readonly labels: Labels;
  readonly identity: string;
}

/** What telemetry needs to know of a Service (a MeshService is one). */
export interface PeerService {
  readonly hostname: string;
  readonly namespace: string;
  readonly name: string;
}

/** Istio's cluster id when none is configured. */
export const CLUSTER_ID = 'Kubernetes';

/** `unknown` for a missing label value, as Istio reports it. */
export function labelValue(v: string | undefined): string {
  return v === undefined || v === '' ? 'unknown' : v;
}

/** The source and destination labels of Istio's standard metrics, TCP and HTTP alike. */
export const PEER_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_service',
  'destination_service_namespace',
  'destination_service_name',
  'destination_workload',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_cluster',
] as const;

export const TCP_LABELS = [
  ...PEER_LABELS,
  'request_protocol',
  'response_flags',
  'connection_security_policy',
] as const;

export type PeerLabels = Record<(typeof PEER_LABELS)[number], string>;
export type TcpLabels = Record<(typeof TCP_LABELS)[number], string>;

export interface PeerFacts {
  readonly reporter: 'source' | 'destination' | 'waypoint';
  readonly src: PeerWorkload | undefined;
  readonly srcPrincipal: string | undefined;
  readonly dst: PeerWorkload | undefined;
  readonly dstPrincipal: string | undefined;
  readonly service: PeerService | undefined;
  /** The destination address, named when there is no Service. */
  readonly target: string | undefined;
}

/** Istio's source and destination labels; a value from a bounded set, `unknown` when missing. */
export function peerLabels(f: PeerFacts): PeerLabels {
  const s = f.src;
  const d = f.dst;
  return {
    reporter: f.reporter,
    source_workload: labelValue(s?.workloadName),
    source_canonical_service: labelValue(s?.app),
    source_canonical_revision: labelValue(s === undefined ? undefined : (s.labels.version ?? 'latest')),
    source_workload_namespace: labelValue(s?.namespace),
    source_principal: labelValue(f.srcPrincipal),
    source_app: labelValue(s?.app),
    source_version: labelValue(s?.labels.version),
    source_cluster: s === undefined ? 'unknown' : CLUSTER_ID,
    destination_service: labelValue(f.service?.hostname ?? f.target),
    destination_service_namespace: labelValue(f.service?.namespace),
    destination_service_name: labelValue(f.service?.name),
    destination_workload: labelValue(d?.workloadName),
    destination_canonical_service: labelValue(d?.app),
    destination_canonical_revision: labelValue(d === undefined ? undefined : (d.labels.version ?? 'latest')),
    destination_workload_namespace: labelValue(d?.namespace),
    destination_principal: labelValue(f.dstPrincipal),
    destination_app: labelValue(d?.app),
    destination_version: labelValue(d?.labels.version),
    destination_cluster: d === undefined ? 'unknown' : CLUSTER_ID,
  };
}

export function tcpLabels(
  f: PeerFacts & { readonly flag: ResponseFlag; readonly securityPolicy: string },
): TcpLabels {
  return {
    ...peerLabels(f),
    request_protocol: 'tcp',
    response_flags: f.flag,
    connection_security_policy: f.securityPolicy,
  };
}
