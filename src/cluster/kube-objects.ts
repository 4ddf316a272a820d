import { isIP } from 'node:net';
import { Fields, type IssueSink } from '../config/field-reader.js';
import { type FieldPath, formatPath, type SourceRef } from '../config/issue.js';
import { type Labels, PROTOCOLS, type Protocol, type ServicePort } from '../config/kube-types.js';
import { failClosedPolicy } from '../policy/fail-closed.js';
import { isMeshConfigKind, MESH_CONFIG_KINDS, parseMeshConfig } from './mesh-config.js';
import type {
  ClusterConfigObject,
  ClusterEndpointSlice,
  ClusterNamespace,
  ClusterNode,
  ClusterPod,
  ClusterResource,
  ClusterService,
  ClusterServiceAccount,
  ConfigObjectIssue,
  PodPhase,
  SliceEndpoint,
} from './resources.js';

/*
 * Kubernetes API objects (JSON, as an API server returns them) -> cluster resources. This is where the
 * API's wire shapes stop: the local cluster's API and a Kubernetes informer both hand objects to
 * `parseKubeObject`, and nothing past it sees JSON. API objects were validated by their API server,
 * so unknown fields are ignored here; what Ambit needs and cannot use is reported.
 */

/** Local mode records where an object came from (`file:line`) in this annotation. */
export const SOURCE_ANNOTATION = 'ambit.dev/source';

export type ParsedObject =
  | { readonly resource: ClusterResource }
  | { readonly ignored: string }
  | { readonly problem: string };

function collect(issues: ConfigObjectIssue[]): IssueSink {
  return {
    error: (p: FieldPath, m: string) => issues.push({ severity: 'error', path: formatPath(p), message: m }),
    warn: (p: FieldPath, m: string) => issues.push({ severity: 'warning', path: formatPath(p), message: m }),
  };
}

function labelsOf(m: Fields, key: 'labels' | 'annotations'): Labels {
  return m.stringMap(key) ?? {};
}

function sourceOf(annotations: Labels): SourceRef | undefined {
  const m = /^(.*):(\d+)$/.exec(annotations[SOURCE_ANNOTATION] ?? '');
  return m === null ? undefined : { file: m[1]!, line: Number(m[2]) };
}

/** Parses one API object; kinds Ambit does not read are `ignored`, broken ones a `problem`. */
export function parseKubeObject(obj: unknown): ParsedObject {
  const issues: ConfigObjectIssue[] = [];
  const f = Fields.of(obj, [], collect(issues), 'a Kubernetes object');
  if (f === undefined) return { problem: 'not a Kubernetes object' };
  const kind = f.string('kind');
  const apiVersion = f.string('apiVersion') ?? '';
  const m = f.object('metadata');
  const name = m?.string('name') ?? '';
  const namespace = m?.string('namespace') ?? '';
  const who = `${kind ?? '?'}/${namespace === '' ? '' : `${namespace}/`}${name}`;
  if (kind === undefined || m === undefined || name === '')
    return { problem: `${who}: kind and metadata.name are required` };
  const meta = { name, namespace, labels: labelsOf(m, 'labels'), annotations: labelsOf(m, 'annotations') };
  const errors = (): string | undefined => {
    const e = issues.filter((i) => i.severity === 'error');
    return e.length === 0 ? undefined : `${who}: ${e.map((i) => `${i.path}: ${i.message}`).join('; ')}`;
  };
  let resource: ClusterResource | undefined;
  switch (kind) {
    case 'Namespace':
      resource = { kind, name, labels: meta.labels } satisfies ClusterNamespace;
      break;
    case 'ServiceAccount':
      resource = { kind, namespace, name, uid: m.string('uid') ?? '' } satisfies ClusterServiceAccount;
      break;
    case 'Node':
      resource = parseNode(f, name);
      break;
    case 'Pod':
      resource = parsePod(f, m, meta);
      break;
    case 'Service':
      resource = parseService(f, meta);
      break;
    case 'EndpointSlice':
      resource = parseEndpointSlice(f, meta);
      break;
    default: {
      if (!isMeshConfigKind(kind)) return { ignored: `${who}: Ambit does not read ${kind}` };
      if (!MESH_CONFIG_KINDS[kind].includes(apiVersion))
        return { ignored: `${who}: ${apiVersion} is not Ambit's` };
      const own: ConfigObjectIssue[] = [];
      const spec = Fields.of(obj, [], collect(own))?.object('spec');
      const parsed = parseMeshConfig(kind, spec, meta);
      const source = sourceOf(meta.annotations);
      const errs = own.filter((i) => i.severity === 'error');
      const failClosed =
        kind === 'AuthorizationPolicy' && (parsed === undefined || errs.length > 0)
          ? failClosedPolicy(
              (obj as { spec?: unknown }).spec,
              { namespace, name },
              errs.map((i) => `${i.path}: ${i.message}`).join('; ') || 'could not be read',
            )
          : undefined;
      const config: ClusterConfigObject = {
        kind,
        namespace,
        name,
        ...(source === undefined ? {} : { source }),
        ...(parsed === undefined ? {} : { parsed }),
        issues: own,
        ...(failClosed === undefined ? {} : { failClosed }),
      };
      return { resource: config };
    }
  }
  const problem = errors();
  if (problem !== undefined || resource === undefined) return { problem: problem ?? `${who}: unreadable` };
  return { resource };
}

function parseNode(f: Fields, name: string): ClusterNode {
  const addresses =
    f.object('status')?.objects('addresses', (a) => {
      const type = a.string('type');
      const address = a.string('address');
      return type === 'InternalIP' && address !== undefined && isIP(address) !== 0 ? address : undefined;
    }) ?? [];
  addresses.sort((a, b) => isIP(a) - isIP(b));
  return { kind: 'Node', name, addresses };
}

const PHASES: readonly PodPhase[] = ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'];

function parsePod(
  f: Fields,
  m: Fields,
  meta: { name: string; namespace: string; labels: Labels; annotations: Labels },
): ClusterPod | undefined {
  const uid = m.string('uid', { required: true });
  const spec = f.object('spec', { required: true });
  const status = f.object('status');
  const fromList = status?.objects('podIPs', (p) =>
    p.string('ip', { check: (v) => (isIP(v) === 0 ? 'is not an IP' : undefined) }),
  );
  const single = status?.string('podIP');
  const ips = fromList !== undefined && fromList.length > 0 ? fromList : single === undefined ? [] : [single];
  const phase = status?.string('phase');
  const ready =
    status?.objects('conditions', (c) =>
      c.string('type') === 'Ready' ? c.string('status') === 'True' : undefined,
    )?.[0] ?? false;
  const qos = status?.oneOf('qosClass', ['Guaranteed', 'Burstable', 'BestEffort'] as const);
  if (uid === undefined || spec === undefined) return undefined;
  return {
    kind: 'Pod',
    uid,
    namespace: meta.namespace,
    name: meta.name,
    node: spec.string('nodeName') ?? '',
    serviceAccount: spec.string('serviceAccountName') ?? 'default',
    labels: meta.labels,
    annotations: meta.annotations,
    ips,
    phase: PHASES.includes(phase as PodPhase) ? (phase as PodPhase) : 'Unknown',
    ready,
    hostNetwork: spec.bool('hostNetwork') ?? false,
    ...(qos === undefined ? {} : { qosClass: qos }),
    terminating: m.has('deletionTimestamp'),
  };
}

function protocolOf(f: Fields): Protocol {
  const p = f.string('protocol') ?? 'TCP';
  return (PROTOCOLS as readonly string[]).includes(p) ? (p as Protocol) : 'TCP';
}

function parseService(
  f: Fields,
  meta: { name: string; namespace: string; labels: Labels; annotations: Labels },
): ClusterService {
  const spec = f.object('spec');
  const listed = spec?.stringList('clusterIPs') ?? [];
  const single = spec?.string('clusterIP');
  const vips = (listed.length > 0 ? listed : single === undefined ? [] : [single]).filter(
    (ip) => isIP(ip) !== 0,
  );
  const ports: ServicePort[] =
    spec?.objects('ports', (p) => {
      const port = p.int('port', { required: true, min: 1, max: 65535 });
      if (port === undefined) return undefined;
      const name = p.string('name');
      const appProtocol = p.string('appProtocol');
      const target = p.intOrString('targetPort', { min: 1, max: 65535 });
      return {
        ...(name === undefined ? {} : { name }),
        port,
        targetPort: target ?? port,
        protocol: protocolOf(p),
        ...(appProtocol === undefined ? {} : { appProtocol }),
      };
    }) ?? [];
  return {
    kind: 'Service',
    namespace: meta.namespace,
    name: meta.name,
    labels: meta.labels,
    annotations: meta.annotations,
    vips,
    ports,
  };
}

function parseEndpointSlice(
  f: Fields,
  meta: { name: string; namespace: string; labels: Labels },
): ClusterEndpointSlice | undefined {
  const service = meta.labels['kubernetes.io/service-name'];
  if (service === undefined) {
    f.sink.error(
      ['metadata', 'labels'],
      'has no kubernetes.io/service-name label, so it belongs to no Service',
    );
    return undefined;
  }
  const ports =
    f.objects('ports', (p) => {
      const port = p.int('port', { min: 1, max: 65535 });
      return port === undefined
        ? undefined
        : { name: p.string('name', { allowEmpty: true }) ?? '', port, protocol: protocolOf(p) };
    }) ?? [];
  const endpoints =
    f.objects('endpoints', (e): SliceEndpoint | undefined => {
      const addresses = e.stringList('addresses')?.filter((a) => isIP(a) !== 0) ?? [];
      // Kubernetes: a nil ready condition means ready.
      const ready = e.object('conditions')?.bool('ready') ?? true;
      const ref = e.object('targetRef');
      const isPod = ref?.string('kind') === 'Pod';
      const podUid = isPod ? ref?.string('uid') : undefined;
      const pod = isPod ? ref?.string('name') : undefined;
      const node = e.string('nodeName');
      return {
        addresses,
        ready,
        ...(podUid === undefined ? {} : { podUid }),
        ...(pod === undefined ? {} : { pod }),
        ...(node === undefined ? {} : { node }),
      };
    }) ?? [];
  return { kind: 'EndpointSlice', namespace: meta.namespace, name: meta.name, service, ports, endpoints };
}
