import { MESH_CONFIG_KINDS, parseMeshConfig } from '../cluster/mesh-config.js';
import type { MeshConfigKind } from '../cluster/resources.js';
import { Fields } from '../config/field-reader.js';
import { type SourceRef, show } from '../config/issue.js';
import { PROTOCOLS } from '../config/kube-types.js';
import {
  dns1123Label,
  dns1123Subdomain,
  ianaSvcName,
  ipAddress,
  labelValue,
  qualifiedName,
} from '../config/validators.js';
import {
  type DeploymentObject,
  type IpFamily,
  IpFamilyPolicy,
  type KeptObject,
  type MeshObject,
  type NamespaceObject,
  type ObjectMeta,
  type PodObject,
  type ServiceAccountObject,
  type ServiceObject,
  type ServicePort,
} from './model.js';
import { type PodSpecOptions, parsePodSpec } from './parse-pod-spec.js';

export interface ParseOptions extends Omit<PodSpecOptions, 'onlyRestartAlways'> {}

type Parser = (f: Fields, head: ObjectHead, opts: ParseOptions) => MeshObject | undefined;

interface ObjectHead {
  readonly apiVersion: string;
  readonly kind: string;
  readonly meta: ObjectMeta;
  readonly source: SourceRef;
}

interface KindInfo {
  readonly apiVersions: readonly string[];
  readonly namespaced: boolean;
  /** Names of this kind must be DNS labels (Services, Namespaces) rather than subdomains. */
  readonly labelName?: boolean;
  readonly parse: Parser;
}

/** The object's whole body, kept for the local cluster's API (which serves it as it was written). */
function bodyOf(f: Fields): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const k of f.keys()) body[k] = f.raw(k);
  return body;
}

const keep: Parser = (f, head) => {
  const kept: KeptObject = { ...head, body: bodyOf(f) };
  return kept;
};

/**
 * A mesh config kind (security policy, Gateway API object): parsed into its typed value with the same
 * parser the daemons use, so that a mistake is reported here with file:line, and kept with the value.
 */
function meshConfig(kind: MeshConfigKind): KindInfo {
  return {
    apiVersions: MESH_CONFIG_KINDS[kind],
    namespaced: true,
    parse: (f, head) => {
      f.expectOnly(['apiVersion', 'kind', 'metadata', 'spec'], ['status']);
      const required =
        kind !== 'AuthorizationPolicy' && kind !== 'PeerAuthentication' && kind !== 'RequestAuthentication';
      const parsed = parseMeshConfig(kind, f.object('spec', { required }), head.meta);
      const kept: KeptObject = { ...head, body: bodyOf(f), ...(parsed === undefined ? {} : { parsed }) };
      return kept;
    },
  };
}

/**
 * Every kind Ambit understands. Mesh config kinds are parsed into their typed values and kept with
 * their bodies; kinds a later feature will read are kept whole; anything else is reported as unknown.
 */
export const KINDS: Readonly<Record<string, KindInfo>> = {
  Namespace: {
    apiVersions: ['v1'],
    namespaced: false,
    labelName: true,
    parse: (f, head): NamespaceObject => {
      f.expectOnly(['apiVersion', 'kind', 'metadata'], ['spec', 'status']);
      return { ...head, kind: 'Namespace' };
    },
  },
  ServiceAccount: {
    apiVersions: ['v1'],
    namespaced: true,
    parse: (f, head): ServiceAccountObject => {
      f.expectOnly(
        ['apiVersion', 'kind', 'metadata'],
        ['secrets', 'imagePullSecrets', 'automountServiceAccountToken'],
      );
      return { ...head, kind: 'ServiceAccount' };
    },
  },
  Pod: { apiVersions: ['v1'], namespaced: true, parse: parsePod },
  Deployment: { apiVersions: ['apps/v1'], namespaced: true, parse: parseDeployment },
  Service: { apiVersions: ['v1'], namespaced: true, labelName: true, parse: parseService },
  Gateway: meshConfig('Gateway'),
  HTTPRoute: meshConfig('HTTPRoute'),
  GRPCRoute: meshConfig('GRPCRoute'),
  ReferenceGrant: { apiVersions: ['gateway.networking.k8s.io/v1beta1'], namespaced: true, parse: keep },
  AuthorizationPolicy: meshConfig('AuthorizationPolicy'),
  PeerAuthentication: meshConfig('PeerAuthentication'),
  RequestAuthentication: meshConfig('RequestAuthentication'),
  BackendTrafficPolicy: meshConfig('BackendTrafficPolicy'),
  ConfigMap: { apiVersions: ['v1'], namespaced: true, parse: keep },
  Secret: { apiVersions: ['v1'], namespaced: true, parse: keep },
};

// Istio's own group is recognised so that the error can say what to change.
const MOVED_GROUPS: Readonly<Record<string, string>> = {
  'security.istio.io/v1': 'security.ambit.dev/v1alpha1',
  'security.istio.io/v1beta1': 'security.ambit.dev/v1alpha1',
};

/**
 * Parses one document into a domain object. Problems go to the sink with their paths; the result is
 * undefined when the object cannot be used at all.
 */
export function parseObject(
  doc: unknown,
  file: string,
  line: number,
  sink: Fields['sink'],
  opts: ParseOptions,
): MeshObject | undefined {
  const f = Fields.of(doc, [], sink, 'a Kubernetes object (a mapping with apiVersion, kind and metadata)');
  if (f === undefined) return undefined;
  const apiVersion = f.string('apiVersion', { required: true });
  const kind = f.string('kind', { required: true });
  if (apiVersion === undefined || kind === undefined) return undefined;
  const info = KINDS[kind];
  if (info === undefined) {
    f.error(
      'kind',
      `${show(kind)} (${apiVersion}) is not a kind Ambit knows; known kinds: ${Object.keys(KINDS).join(', ')}`,
    );
    return undefined;
  }
  if (!info.apiVersions.includes(apiVersion)) {
    const moved = MOVED_GROUPS[apiVersion];
    f.error(
      'apiVersion',
      moved !== undefined
        ? `${show(apiVersion)} is Istio's; Ambit reads the same fields under ${show(moved)}`
        : `${show(apiVersion)} is not a version of ${kind}; use ${info.apiVersions.map((v) => show(v)).join(' or ')}`,
    );
    return undefined;
  }
  const meta = parseMeta(f, info);
  if (meta === undefined) return undefined;
  return info.parse(f, { apiVersion, kind, meta, source: { file, line } }, opts);
}

const IGNORED_META = [
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'managedFields',
  'ownerReferences',
  'finalizers',
  'generateName',
  'selfLink',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
];

function parseMeta(f: Fields, info: KindInfo): ObjectMeta | undefined {
  const m = f.object('metadata', { required: true });
  if (m === undefined) return undefined;
  m.expectOnly(['name', 'namespace', 'labels', 'annotations'], IGNORED_META);
  const name = m.string('name', { required: true, check: info.labelName ? dns1123Label : dns1123Subdomain });
  let namespace = '';
  if (info.namespaced) namespace = m.string('namespace', { check: dns1123Label }) ?? 'default';
  const labels = m.stringMap('labels', { keyCheck: qualifiedName, valueCheck: labelValue }) ?? {};
  const annotations = m.stringMap('annotations', { keyCheck: qualifiedName }) ?? {};
  // Keep going with a placeholder name so that the rest of the object is still checked; the error
  // above already rejects it.
  return { name: name ?? '', namespace, labels, annotations };
}

function parsePod(f: Fields, head: ObjectHead, opts: ParseOptions): PodObject | undefined {
  f.expectOnly(['apiVersion', 'kind', 'metadata', 'spec'], ['status']);
  const specFields = f.object('spec', { required: true });
  const spec = specFields === undefined ? undefined : parsePodSpec(specFields, opts);
  return spec === undefined ? undefined : { ...head, kind: 'Pod', spec };
}

function parseDeployment(f: Fields, head: ObjectHead, opts: ParseOptions): DeploymentObject | undefined {
  f.expectOnly(['apiVersion', 'kind', 'metadata', 'spec'], ['status']);
  const spec = f.object('spec', { required: true });
  if (spec === undefined) return undefined;
  spec.expectOnly(
    ['replicas', 'selector', 'template'],
    ['strategy', 'revisionHistoryLimit', 'progressDeadlineSeconds', 'minReadySeconds', 'paused'],
  );
  const replicas = spec.int('replicas', { min: 0, max: 100 }) ?? 1;
  const selector = spec.object('selector', { required: true });
  let matchLabels: Readonly<Record<string, string>> | undefined;
  if (selector !== undefined) {
    selector.expectOnly(['matchLabels'], []);
    if (selector.has('matchExpressions'))
      selector.error('matchExpressions', 'is not supported; use matchLabels');
    matchLabels = selector.stringMap('matchLabels', {
      required: true,
      keyCheck: qualifiedName,
      valueCheck: labelValue,
    });
    if (matchLabels !== undefined && Object.keys(matchLabels).length === 0)
      selector.error('matchLabels', 'must not be empty');
  }
  const template = spec.object('template', { required: true });
  if (template === undefined) return undefined;
  template.expectOnly(['metadata', 'spec']);
  const tmeta = template.object('metadata');
  tmeta?.expectOnly(['labels', 'annotations'], ['name', 'namespace', 'creationTimestamp']);
  const labels = tmeta?.stringMap('labels', { keyCheck: qualifiedName, valueCheck: labelValue }) ?? {};
  const annotations = tmeta?.stringMap('annotations', { keyCheck: qualifiedName }) ?? {};
  if (matchLabels !== undefined) {
    const mismatch = Object.entries(matchLabels).find(([k, v]) => labels[k] !== v);
    if (mismatch !== undefined) {
      spec.sink.error(
        template.at('metadata').concat('labels'),
        `do not match spec.selector.matchLabels (${mismatch[0]}=${mismatch[1]} is missing); the Deployment would select none of its pods`,
      );
    }
  }
  const podSpecFields = template.object('spec', { required: true });
  const podSpec =
    podSpecFields === undefined
      ? undefined
      : parsePodSpec(podSpecFields, { ...opts, onlyRestartAlways: true });
  if (podSpec === undefined || matchLabels === undefined) return undefined;
  return {
    ...head,
    kind: 'Deployment',
    replicas,
    selector: matchLabels,
    template: { labels, annotations, spec: podSpec },
  };
}

function parseService(f: Fields, head: ObjectHead): ServiceObject | undefined {
  f.expectOnly(['apiVersion', 'kind', 'metadata', 'spec'], ['status']);
  const spec = f.object('spec', { required: true });
  if (spec === undefined) return undefined;
  spec.expectOnly(
    ['type', 'clusterIP', 'clusterIPs', 'ports', 'selector', 'ipFamilyPolicy', 'ipFamilies'],
    [
      'sessionAffinity',
      'sessionAffinityConfig',
      'internalTrafficPolicy',
      'externalTrafficPolicy',
      'publishNotReadyAddresses',
      'trafficDistribution',
    ],
  );
  const rawType = spec.raw('type');
  if (rawType === 'ExternalName') {
    spec.error('type', '"ExternalName" Services are not supported by Ambit');
    return undefined;
  }
  const type = spec.oneOf('type', ['ClusterIP', 'NodePort', 'LoadBalancer'] as const) ?? 'ClusterIP';
  const clusterIP = spec.string('clusterIP', { check: (v) => (v === 'None' ? undefined : ipAddress(v)) });
  const headless = clusterIP === 'None';
  // Checks across ports use each port's own path, so that an earlier broken item does not shift the index.
  const located =
    spec.objects(
      'ports',
      (pf) => {
        const p = parseServicePort(pf);
        return p === undefined ? undefined : { p, at: pf.path };
      },
      { required: !headless, nonEmpty: !headless },
    ) ?? [];
  const ports = located.map((l) => l.p);
  const rawPorts = spec.raw('ports');
  const multi = Array.isArray(rawPorts) && rawPorts.length > 1;
  const names = new Set<string>();
  const fronts = new Set<string>();
  for (const { p, at } of located) {
    if (multi && p.name === undefined)
      spec.sink.error(at.concat('name'), 'is required when a Service has more than one port');
    if (p.name !== undefined) {
      if (names.has(p.name)) spec.sink.error(at.concat('name'), `${show(p.name)} is used by another port`);
      names.add(p.name);
    }
    const front = `${p.port}/${p.protocol}`;
    if (fronts.has(front)) spec.sink.error(at.concat('port'), `${p.port}/${p.protocol} is declared twice`);
    fronts.add(front);
  }
  const selector = spec.stringMap('selector', { keyCheck: qualifiedName, valueCheck: labelValue });
  const ipFamilyPolicy =
    spec.oneOf('ipFamilyPolicy', Object.values(IpFamilyPolicy)) ?? IpFamilyPolicy.SingleStack;
  const ipFamilies = spec.list<IpFamily>('ipFamilies', (v, path) => {
    if (v === 'IPv4' || v === 'IPv6') return v;
    spec.sink.error(path, `${show(v)} is not one of IPv4, IPv6`);
    return undefined;
  });
  if (ipFamilies !== undefined && ipFamilies.length > 2)
    spec.error('ipFamilies', 'lists more than two families');
  if (ipFamilies !== undefined && new Set(ipFamilies).size !== ipFamilies.length)
    spec.error('ipFamilies', 'lists a family twice');
  if (ipFamilyPolicy === 'SingleStack' && ipFamilies !== undefined && ipFamilies.length > 1) {
    spec.error('ipFamilies', 'lists two families but ipFamilyPolicy is SingleStack');
  }
  const families: IpFamily[] =
    ipFamilies !== undefined && ipFamilies.length > 0
      ? [...ipFamilies]
      : ipFamilyPolicy === 'SingleStack'
        ? ['IPv4']
        : ['IPv4', 'IPv6'];
  if (ipFamilyPolicy !== 'SingleStack' && families.length === 1)
    families.push(families[0] === 'IPv4' ? 'IPv6' : 'IPv4');
  if (clusterIP !== undefined && !headless) {
    const fam: IpFamily = clusterIP.includes(':') ? 'IPv6' : 'IPv4';
    if (families[0] !== fam)
      spec.error('clusterIP', `${show(clusterIP)} is ${fam} but the primary family is ${families[0]}`);
  }
  return {
    ...head,
    kind: 'Service',
    type,
    ...(clusterIP === undefined ? {} : { clusterIP }),
    ports,
    ...(selector === undefined || Object.keys(selector).length === 0 ? {} : { selector }),
    ipFamilyPolicy,
    ipFamilies: families,
  };
}

function parseServicePort(f: Fields): ServicePort | undefined {
  f.expectOnly(['name', 'port', 'targetPort', 'protocol', 'appProtocol'], ['nodePort']);
  const name = f.string('name', { check: dns1123Label });
  const port = f.int('port', { required: true, min: 1, max: 65535 });
  const targetPort = f.intOrString('targetPort', { min: 1, max: 65535, check: ianaSvcName });
  const protocol = f.oneOf('protocol', PROTOCOLS) ?? 'TCP';
  const appProtocol = f.string('appProtocol');
  if (port === undefined) return undefined;
  return {
    ...(name === undefined ? {} : { name }),
    port,
    targetPort: targetPort ?? port,
    protocol,
    ...(appProtocol === undefined ? {} : { appProtocol }),
  };
}
