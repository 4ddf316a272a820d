import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { LocalState } from '../../src/local/state.js';
import { ambit, downCluster, podExec, ROOT, type RunResult, runCmd, status, waitFor } from './helpers.js';

/*
 * What the waypoint e2e files share: a local cluster with a mesh namespace behind a waypoint
 * (WaypointCluster), the manifests they build it from, and reading a waypoint's metrics and log.
 */

/** One Prometheus sample, as a waypoint's metrics endpoint (15020) exposes it. */
export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** The name of the waypoint pod of `namespace` in a local cluster's state. */
export function waypointPodOf(state: LocalState, namespace: string): string {
  const p = state.pods.find((x) => x.namespace === namespace && x.name.startsWith('waypoint-'));
  if (p === undefined) throw new Error(`no waypoint pod in ${namespace}`);
  return p.name;
}

/** The labelled samples a waypoint pod serves on 15020, read from inside its network namespace. */
export async function scrapeWaypoint(cluster: string, namespace: string, pod: string): Promise<Sample[]> {
  const r = await runCmd('ip', [
    'netns',
    'exec',
    `${cluster}.pod.${namespace}.${pod}`,
    'curl',
    '-s',
    'http://127.0.0.1:15020/metrics',
  ]);
  const out: Sample[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^(\w+)\{(.*)\} ([0-9.e+-]+)$/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of m[2]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of the samples named `name` whose labels include `match`. */
export const sumSamples = (s: readonly Sample[], name: string, match: Record<string, string> = {}): number =>
  s
    .filter((x) => x.name === name && Object.entries(match).every(([k, v]) => x.labels[k] === v))
    .reduce((n, x) => n + x.value, 0);

/** hey's status code distribution: `[200] 40 responses`. */
export function heyCodes(out: string): Record<string, number> {
  const codes: Record<string, number> = {};
  for (const m of out.matchAll(/\[(\d{3})\]\s+(\d+) responses/g)) codes[m[1]!] = Number(m[2]);
  return codes;
}

export interface WaypointClusterOptions {
  /** The local cluster's name (`ambit local up --name`). */
  readonly name: string;
  /** The mesh namespace whose waypoint the file tests. */
  readonly namespace: string;
  readonly nodes: number;
}

/**
 * A local cluster for one waypoint e2e file. Made while the file is collected, so that its manifests
 * can name `fix` and `shared`; started by `up` in beforeAll; `down` in afterAll removes it and every
 * file it made.
 */
export class WaypointCluster {
  readonly name: string;
  readonly namespace: string;
  readonly nodes: number;
  /**
   * A folder both the pods and the test see, for what backends log for the test. Pods have a private
   * /tmp, and the checkout itself may be under /tmp (as CI's fresh clone can be): it is in /var/tmp.
   */
  readonly shared: string;
  /** The fixture programs the pods run (test/e2e/fixtures), copied into `shared`. */
  readonly fix: string;
  /** The manifests folder the cluster is started from and follows: a file written here applies live. */
  readonly manifests: string;
  #state: LocalState | undefined;

  constructor(o: WaypointClusterOptions) {
    this.name = o.name;
    this.namespace = o.namespace;
    this.nodes = o.nodes;
    this.shared = mkdtempSync(`/var/tmp/ambit-${o.name}-`);
    this.fix = join(this.shared, 'fixtures');
    cpSync(join(ROOT, 'test/e2e/fixtures'), this.fix, { recursive: true });
    this.manifests = join(this.shared, 'manifests');
    mkdirSync(this.manifests);
    mkdirSync(join(this.shared, 'kubectl'));
  }

  /** The cluster's state as `up` found it. */
  get state(): LocalState {
    if (this.#state === undefined) throw new Error(`cluster ${this.name} is not up`);
    return this.#state;
  }

  /**
   * Writes `files` (file name -> YAML) into the manifests folder and starts the cluster from it afresh
   * (a leftover of an earlier run is taken down first), waiting up to 150 s for it to be ready.
   */
  async up(files: Record<string, string>): Promise<void> {
    for (const [f, text] of Object.entries(files)) writeFileSync(join(this.manifests, f), text);
    await downCluster(this.name).catch(() => undefined);
    const up = await ambit(
      ['local', 'up', this.manifests, '--nodes', String(this.nodes), '--name', this.name, '--wait', '150s'],
      { timeoutMs: 170_000 },
    );
    expect(up.code, `${up.stdout}\n${up.stderr}`).toBe(0);
    this.#state = await status(this.name);
  }

  /** Takes the cluster down (failing if anything of it is left) and removes `shared`. */
  async down(): Promise<void> {
    try {
      await downCluster(this.name);
    } finally {
      rmSync(this.shared, { recursive: true, force: true });
    }
  }

  /** A command in a pod, of the mesh namespace unless told. */
  exec(pod: string, cmd: readonly string[], namespace = this.namespace): Promise<RunResult> {
    return podExec(this.name, pod, cmd, namespace);
  }

  /** kubectl with the cluster's admin kubeconfig. */
  kubectl(...args: string[]): Promise<RunResult> {
    return runCmd('kubectl', ['--kubeconfig', `/run/ambit/${this.name}/kube/admin.kubeconfig`, ...args], {
      timeoutMs: 30_000,
    });
  }

  /** `kubectl apply` of `yaml`, from `<name>.yaml` in a folder of its own (not the manifests folder). */
  kubectlApply(name: string, yaml: string): Promise<RunResult> {
    const f = join(this.shared, 'kubectl', `${name}.yaml`);
    writeFileSync(f, yaml);
    return this.kubectl('apply', '-f', f);
  }

  /** `kubectlApply`, and the test fails unless kubectl accepts it. */
  async apply(name: string, yaml: string): Promise<void> {
    const r = await this.kubectlApply(name, yaml);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  }

  /** The name of the mesh namespace's waypoint pod. */
  waypointPod(): string {
    return waypointPodOf(this.state, this.namespace);
  }

  /** The samples the mesh namespace's waypoint serves now. */
  waypointMetrics(): Promise<Sample[]> {
    return scrapeWaypoint(this.name, this.namespace, this.waypointPod());
  }

  /** The waypoint's log as it is now. */
  waypointLog(): string {
    return readFileSync(
      `/run/ambit/${this.name}/pods/${this.namespace}/${this.waypointPod()}/waypoint.log`,
      'utf8',
    );
  }

  /** The waypoint's access-log lines so far, parsed. */
  accessLog(): Record<string, unknown>[] {
    return this.waypointLog()
      .split('\n')
      .filter((l) => l.includes('"component":"access"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** The access-log line of the one request to `path` (when paths are unique per case), once written. */
  accessLogOf(path: string): Promise<Record<string, unknown>> {
    return waitFor(
      `the access-log line of ${path}`,
      () => this.accessLog().find((l) => l.path === path),
      10_000,
    );
  }
}

// Manifest builders. Each returns one or more YAML documents ending in a newline; `documents` joins them.

/** YAML documents in one stream. */
export const documents = (...docs: readonly string[]): string => docs.join('---\n');

/** A YAML flow mapping of strings: `{ app: "web", version: "v1" }`. */
const flow = (m: Record<string, string>): string =>
  `{ ${Object.entries(m)
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
    .join(', ')} }`;

/**
 * A Namespace in the ambient mesh whose traffic goes through its waypoint, and that waypoint: a Gateway
 * `waypoint` of class ambit-waypoint.
 */
export function meshNamespace(
  namespace: string,
  o: { labels?: Record<string, string>; gatewayAnnotations?: Record<string, string> } = {},
): string {
  const extra = Object.entries(o.labels ?? {}).map(([k, v]) => `, ${k}: ${JSON.stringify(v)}`);
  const annotations =
    o.gatewayAnnotations === undefined ? '' : `, annotations: ${flow(o.gatewayAnnotations)}`;
  return `apiVersion: v1
kind: Namespace
metadata:
  name: ${namespace}
  labels: { ambit.dev/dataplane-mode: ambient, ambit.dev/use-waypoint: waypoint${extra.join('')} }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: ${namespace}${annotations} }
spec:
  gatewayClassName: ambit-waypoint
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
`;
}

export const serviceAccount = (name: string, namespace: string): string =>
  `apiVersion: v1\nkind: ServiceAccount\nmetadata: { name: ${name}, namespace: ${namespace} }\n`;

/** A client pod that sleeps, for commands run in it, with a ServiceAccount (its identity) of its name. */
export function clientPod(o: { namespace: string; node: string; name?: string }): string {
  const name = o.name ?? 'client';
  return `${serviceAccount(name, o.namespace)}---
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${o.namespace}, labels: { app: ${name} } }
spec:
  serviceAccountName: ${name}
  nodeName: ${o.node}
  terminationGracePeriodSeconds: 1
  containers: [{ name: c, command: ["sleep", "infinity"] }]
`;
}

export interface DeploymentSpec {
  readonly name: string;
  readonly namespace: string;
  /** What the container runs (through `/bin/sh -c "exec …"`). */
  readonly command: string;
  /** The pods' labels, which the Deployment selects: `{ app: <name> }` unless told. */
  readonly labels?: Record<string, string>;
  readonly serviceAccount?: string;
  /** The node the pods run on; the scheduler picks one unless told. */
  readonly node?: string;
  /** The port the readiness probe connects to: 8080 unless told. */
  readonly port?: number;
  readonly replicas?: number;
}

/** A Deployment of one container that is ready once it accepts connections on its port. */
export function deployment(d: DeploymentSpec): string {
  const labels = flow(d.labels ?? { app: d.name });
  const placement = [
    ...(d.serviceAccount === undefined ? [] : [`      serviceAccountName: ${d.serviceAccount}\n`]),
    ...(d.node === undefined ? [] : [`      nodeName: ${d.node}\n`]),
  ].join('');
  return `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${d.name}, namespace: ${d.namespace} }
spec:
  replicas: ${d.replicas ?? 1}
  selector: { matchLabels: ${labels} }
  template:
    metadata: { labels: ${labels} }
    spec:
${placement}      containers:
        - name: app
          command: ["/bin/sh", "-c", ${JSON.stringify(`exec ${d.command}`)}]
          readinessProbe: { tcpSocket: { port: ${d.port ?? 8080} }, periodSeconds: 1 }
`;
}

export interface ServiceSpec {
  readonly name: string;
  readonly namespace: string;
  /** `{ app: <name> }` unless told. */
  readonly selector?: Record<string, string>;
  /** 80 unless told. */
  readonly port?: number;
  /** 8080 unless told. */
  readonly targetPort?: number;
  /** http unless told. */
  readonly appProtocol?: string;
  /** The port's name: http unless told. */
  readonly portName?: string;
}

/** A Service of one port. */
export function service(s: ServiceSpec): string {
  return `apiVersion: v1
kind: Service
metadata: { name: ${s.name}, namespace: ${s.namespace} }
spec:
  selector: ${flow(s.selector ?? { app: s.name })}
  ports: [{ name: ${s.portName ?? 'http'}, port: ${s.port ?? 80}, targetPort: ${s.targetPort ?? 8080}, appProtocol: ${s.appProtocol ?? 'http'} }]
`;
}

/** A Deployment and the Service of its name in front of it (on port 80 unless `svc` says otherwise). */
export function app(
  d: DeploymentSpec,
  svc: Omit<ServiceSpec, 'name' | 'namespace' | 'selector'> = {},
): string {
  return documents(
    deployment(d),
    service({ name: d.name, namespace: d.namespace, selector: d.labels, targetPort: d.port, ...svc }),
  );
}

/** The python3 the fixture programs run with. */
export const PY = '/usr/bin/python3';

/** A fixture program (test/e2e/fixtures, copied to `fix`) run with python3. */
export const fixtureCommand = (fix: string, script: string, args: string): string =>
  `${PY} -u ${fix}/${script} ${args}`;

/** The echo server on 8080, answering with what it was sent and its `name`; `flags` for its options. */
export const echoCommand = (fix: string, name: string, flags = ''): string =>
  fixtureCommand(fix, 'echo-server.py', `--name ${name} --port 8080${flags === '' ? '' : ` ${flags}`}`);
