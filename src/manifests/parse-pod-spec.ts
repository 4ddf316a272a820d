import type { Fields } from '../config/field-reader.js';
import { show } from '../config/issue.js';
import { PROTOCOLS } from '../config/kube-types.js';
import {
  absolutePath,
  dns1123Label,
  dns1123Subdomain,
  envVarName,
  ianaSvcName,
} from '../config/validators.js';
import {
  type Container,
  type ContainerPort,
  type EnvVar,
  type PodSpec,
  type Probe,
  type ProbeAction,
  RestartPolicy,
} from './model.js';
import { parseQuantity, type ResourceRequirements } from './pod-qos.js';

export interface PodSpecOptions {
  /**
   * Local mode runs each container's command as a host process, so there is no image entrypoint to
   * fall back on: `command` is required.
   */
  readonly requireCommand: boolean;
  /** Deployments only allow `Always`. */
  readonly onlyRestartAlways?: boolean;
  /** When known (local mode), `nodeName` must be one of these. */
  readonly nodeNames?: readonly string[];
}

/** Downward-API fields that local mode (and Kubernetes) can fill in. */
export const FIELD_REFS = [
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'spec.nodeName',
  'spec.serviceAccountName',
  'status.podIP',
  'status.hostIP',
] as const;

// Fields of a Kubernetes container/pod that are valid but have no meaning in local mode; they are
// accepted silently so real manifests work unchanged.
const IGNORED_CONTAINER_FIELDS = [
  'imagePullPolicy',
  'securityContext',
  'volumeMounts',
  'startupProbe',
  'lifecycle',
  'stdin',
  'tty',
  'terminationMessagePath',
  'terminationMessagePolicy',
  'envFrom',
  'volumeDevices',
  'resizePolicy',
  'restartPolicy',
];
const IGNORED_POD_FIELDS = [
  'volumes',
  'initContainers',
  'securityContext',
  'affinity',
  'tolerations',
  'nodeSelector',
  'dnsPolicy',
  'dnsConfig',
  'priorityClassName',
  'imagePullSecrets',
  'automountServiceAccountToken',
  'topologySpreadConstraints',
  'schedulerName',
  'hostname',
  'subdomain',
  'enableServiceLinks',
  'serviceAccount',
  'activeDeadlineSeconds',
  'shareProcessNamespace',
  'runtimeClassName',
  'preemptionPolicy',
  'priority',
  'readinessGates',
  'hostAliases',
];

export function parsePodSpec(f: Fields, opts: PodSpecOptions): PodSpec | undefined {
  f.expectOnly(
    [
      'containers',
      'serviceAccountName',
      'nodeName',
      'restartPolicy',
      'terminationGracePeriodSeconds',
      'hostNetwork',
    ],
    IGNORED_POD_FIELDS,
  );
  // A hostNetwork pod runs in its node's network namespace; it is never in the mesh (loop safety).
  const hostNetwork = f.bool('hostNetwork') ?? false;
  const located = f.objects(
    'containers',
    (cf) => {
      const c = parseContainer(cf, opts);
      return c === undefined ? undefined : { c, at: cf.path };
    },
    { required: true, nonEmpty: true },
  );
  const containers = located?.map((l) => l.c);
  const names = new Set<string>();
  for (const { c, at } of located ?? []) {
    if (names.has(c.name)) f.sink.error(at.concat('name'), `${show(c.name)} is used by another container`);
    names.add(c.name);
  }
  const serviceAccountName = f.string('serviceAccountName', { check: dns1123Subdomain }) ?? 'default';
  const nodes = opts.nodeNames;
  const nodeName = f.string('nodeName', {
    check: (v) =>
      dns1123Subdomain(v) ??
      (nodes === undefined || nodes.includes(v)
        ? undefined
        : `is not a node of this cluster (nodes: ${nodes.join(', ')})`),
  });
  const restartPolicy = f.oneOf('restartPolicy', Object.values(RestartPolicy)) ?? RestartPolicy.Always;
  if (opts.onlyRestartAlways && restartPolicy !== RestartPolicy.Always) {
    f.error('restartPolicy', `${show(restartPolicy)} is not allowed in a Deployment; only "Always" is`);
  }
  const terminationGracePeriodSeconds = f.int('terminationGracePeriodSeconds', { min: 0 }) ?? 30;
  if (containers === undefined) return undefined;
  return {
    containers,
    serviceAccountName,
    ...(nodeName === undefined ? {} : { nodeName }),
    restartPolicy,
    terminationGracePeriodSeconds,
    ...(hostNetwork ? { hostNetwork } : {}),
  };
}

function parseContainer(f: Fields, opts: PodSpecOptions): Container | undefined {
  f.expectOnly(
    [
      'name',
      'image',
      'command',
      'args',
      'env',
      'workingDir',
      'ports',
      'readinessProbe',
      'livenessProbe',
      'resources',
    ],
    IGNORED_CONTAINER_FIELDS,
  );
  const name = f.string('name', { required: true, check: dns1123Label });
  const image = f.string('image');
  if (opts.requireCommand && !f.has('command')) {
    f.error(
      'command',
      'is required: local mode runs the command on this host, so there is no image entrypoint to use',
    );
  }
  const command = f.stringList('command', { nonEmpty: true });
  const args = f.stringList('args') ?? [];
  const env = f.objects('env', parseEnvVar) ?? [];
  const workingDir = f.string('workingDir', { check: absolutePath });
  const locatedPorts =
    f.objects('ports', (pf) => {
      const p = parseContainerPort(pf);
      return p === undefined ? undefined : { p, at: pf.path };
    }) ?? [];
  const ports = locatedPorts.map((l) => l.p);
  const portNames = new Set<string>();
  for (const { p, at } of locatedPorts) {
    if (p.name === undefined) continue;
    if (portNames.has(p.name)) f.sink.error(at.concat('name'), `${show(p.name)} is used by another port`);
    portNames.add(p.name);
  }
  const readinessProbe = parseOptionalProbe(f, 'readinessProbe');
  const livenessProbe = parseOptionalProbe(f, 'livenessProbe');
  const resources = parseResources(f);
  if (name === undefined) return undefined;
  return {
    name,
    ...(image === undefined ? {} : { image }),
    command: command ?? [],
    args,
    env,
    ...(workingDir === undefined ? {} : { workingDir }),
    ports,
    ...(readinessProbe === undefined ? {} : { readinessProbe }),
    ...(livenessProbe === undefined ? {} : { livenessProbe }),
    ...(resources === undefined ? {} : { resources }),
  };
}

function parseResources(f: Fields): ResourceRequirements | undefined {
  const r = f.object('resources');
  if (r === undefined) return undefined;
  r.expectOnly(['requests', 'limits'], ['claims']);
  const quantities = (key: string): Record<string, string> => {
    const q = r.object(key);
    const out: Record<string, string> = {};
    for (const name of q?.keys() ?? []) {
      const v = q?.raw(name);
      const text = typeof v === 'number' ? String(v) : v;
      if (typeof text !== 'string' || parseQuantity(text) === undefined) {
        q?.error(name, `${show(v)} is not a quantity (such as 500m, 1, 128Mi)`);
        continue;
      }
      out[name] = text;
    }
    return out;
  };
  return { requests: quantities('requests'), limits: quantities('limits') };
}

function parseEnvVar(f: Fields): EnvVar | undefined {
  f.expectOnly(['name', 'value', 'valueFrom']);
  const name = f.string('name', { required: true, check: envVarName });
  const value = f.string('value', { allowEmpty: true });
  let fieldRef: string | undefined;
  const from = f.object('valueFrom');
  if (from !== undefined) {
    const ref = from.object('fieldRef');
    if (ref === undefined) {
      from.error('fieldRef', 'is required (local mode supports valueFrom.fieldRef only)');
    } else {
      fieldRef = ref.oneOf('fieldPath', FIELD_REFS, { required: true });
    }
    if (value !== undefined) f.error('valueFrom', 'cannot be set together with value');
  }
  if (name === undefined) return undefined;
  return { name, ...(value === undefined ? {} : { value }), ...(fieldRef === undefined ? {} : { fieldRef }) };
}

function parseContainerPort(f: Fields): ContainerPort | undefined {
  f.expectOnly(['name', 'containerPort', 'protocol'], ['hostPort', 'hostIP']);
  const name = f.string('name', { check: ianaSvcName });
  const containerPort = f.int('containerPort', { required: true, min: 1, max: 65535 });
  const protocol = f.oneOf('protocol', PROTOCOLS) ?? 'TCP';
  if (containerPort === undefined) return undefined;
  return { ...(name === undefined ? {} : { name }), containerPort, protocol };
}

function parseOptionalProbe(f: Fields, key: string): Probe | undefined {
  const p = f.object(key);
  return p === undefined ? undefined : parseProbe(p);
}

function parseProbe(f: Fields): Probe | undefined {
  f.expectOnly(
    [
      'exec',
      'httpGet',
      'tcpSocket',
      'initialDelaySeconds',
      'periodSeconds',
      'timeoutSeconds',
      'successThreshold',
      'failureThreshold',
    ],
    ['grpc', 'terminationGracePeriodSeconds'],
  );
  const handlers = ['exec', 'httpGet', 'tcpSocket'].filter((k) => f.has(k));
  if (handlers.length !== 1) {
    f.sink.error(
      f.path,
      handlers.length === 0
        ? 'needs exactly one of exec, httpGet or tcpSocket'
        : `sets ${handlers.join(' and ')}; exactly one of exec, httpGet or tcpSocket is allowed`,
    );
  }
  let action: ProbeAction | undefined;
  const exec = f.object('exec');
  if (exec !== undefined) {
    const command = exec.stringList('command', { required: true, nonEmpty: true });
    if (command !== undefined) action = { type: 'exec', command };
  }
  const http = f.object('httpGet');
  if (http !== undefined) {
    http.expectOnly(['path', 'port', 'scheme'], ['host', 'httpHeaders']);
    const port = http.intOrString('port', { required: true, min: 1, max: 65535, check: ianaSvcName });
    const path = http.string('path', { check: absolutePath }) ?? '/';
    const scheme = http.oneOf('scheme', ['HTTP', 'HTTPS'] as const) ?? 'HTTP';
    if (port !== undefined) action = { type: 'httpGet', path, port, scheme };
  }
  const tcp = f.object('tcpSocket');
  if (tcp !== undefined) {
    tcp.expectOnly(['port'], ['host']);
    const port = tcp.intOrString('port', { required: true, min: 1, max: 65535, check: ianaSvcName });
    if (port !== undefined) action = { type: 'tcpSocket', port };
  }
  const initialDelaySeconds = f.int('initialDelaySeconds', { min: 0 }) ?? 0;
  const periodSeconds = f.int('periodSeconds', { min: 1 }) ?? 10;
  const timeoutSeconds = f.int('timeoutSeconds', { min: 1 }) ?? 1;
  const successThreshold = f.int('successThreshold', { min: 1 }) ?? 1;
  const failureThreshold = f.int('failureThreshold', { min: 1 }) ?? 3;
  if (action === undefined || handlers.length !== 1) return undefined;
  return { action, initialDelaySeconds, periodSeconds, timeoutSeconds, successThreshold, failureThreshold };
}
