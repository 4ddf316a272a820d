import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConfigIssue } from '../config/issue.js';
import { formatIssue } from '../config/issue.js';
import { loadManifests } from '../config/load-manifests.js';
import { type Container, type Manifests, objectKey } from '../config/model.js';
import { AmbitError, ErrorCode } from '../errors.js';
import { CNI_ADD_PATH, type CniAddRequest, type CniAddResponse } from '../kube/cni.js';
import { createCgroup } from '../os/cgroup.js';
import type { Logger } from '../telemetry/logger.js';
import { containerProcess } from './container-env.js';
import { type DesiredPod, desiredPods } from './desired-pods.js';
import {
  type ClusterPaths,
  fabricNetns,
  type NodeLayout,
  netnsEtcDir,
  nodeLayout,
  POD_HOST_MAX,
  POD_HOST_MIN,
  podAddresses,
  podCgroup,
  podHostVeth,
  podNetns,
  SERVICE_HOST_MAX,
  SERVICE_HOST_MIN,
  serviceAddresses,
} from './layout.js';
import { mergeReload, toManifests } from './manifest-merge.js';
import { applyNft, createFabric, createNode, createPodNetwork, deleteNetns, routeNodes } from './network.js';
import { CONTAINER_PATH, type SandboxPaths, startContainer, startPause, stopProcess } from './pod-runtime.js';
import { resolveProbe } from './probe.js';
import type { ProbeReply, ProbeRequest } from './prober-main.js';
import { allocate, pickNode } from './scheduler.js';
import { buildService, hostsFile, nftServiceRules, resolvConf } from './services.js';
import {
  type ContainerState,
  type LocalState,
  type PodPhase,
  type PodState,
  type ServiceState,
  writeState,
} from './state.js';

export interface ClusterConfig {
  readonly cluster: string;
  /** Absolute path of the manifests file or folder. */
  readonly manifests: string;
  readonly nodes: number;
  readonly paths: ClusterPaths;
  /** Absolute cgroup v2 directory of this cluster. */
  readonly cgroupDir: string;
  /** Script of the node prober (dist/local/prober-main.js). */
  readonly proberScript: string;
  /** The node agent's CNI socket, when the cluster runs node agents: pods are enrolled before they start. */
  readonly cniSocket?: (node: NodeLayout) => string;
}

/** A node-level daemon the cluster runs in every node's namespace (node agent, node proxy, ...). */
export interface NodeComponent {
  readonly name: string;
  argv(node: NodeLayout): string[];
  env?(node: NodeLayout): Record<string, string>;
  /** An HTTP readiness endpoint (on the node's loopback unless `host`); the cluster is ready when it answers 2xx. */
  readonly readiness?: { readonly port: number; readonly path: string; readonly host?: string };
  /** Runs once for the cluster, in the fabric namespace (a control-plane node), instead of once per node. */
  readonly cluster?: boolean;
}

interface LiveContainer {
  readonly spec: Container;
  child?: ChildProcess;
  state: ContainerState['state'];
  restarts: number;
  exitCode?: number;
  reason?: string;
  startedAt?: number;
  ready: boolean;
  backoffMs: number;
  timers: NodeJS.Timeout[];
  readyStreak: { ok: number; fail: number };
  liveStreak: { fail: number };
}

interface LivePod {
  readonly desired: DesiredPod;
  readonly uid: string;
  readonly node: NodeLayout;
  readonly host: number;
  readonly ip4: string;
  readonly ip6: string;
  readonly netns: string;
  readonly cgroupRel: string;
  readonly sandbox: SandboxPaths;
  readonly createdAt: string;
  pause?: ChildProcess;
  containers: LiveContainer[];
  terminating: boolean;
  reason?: string;
}

const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 16_000;
const BACKOFF_RESET_AFTER_MS = 10_000;
const STOP_GRACE_CAP_MS = 5_000;

function podKey(ns: string, name: string): string {
  return `${ns}/${name}`;
}

/**
 * A local cluster: nodes and pods as network namespaces, containers as supervised processes, Services as
 * VIPs (nftables on every node) and names (hosts files). It reconciles towards the manifests folder,
 * which it watches, and publishes what it runs as the state file.
 */
export class LocalCluster {
  readonly nodes: NodeLayout[];
  private readonly pods = new Map<string, LivePod>();
  private readonly vips = new Map<string, { n: number; addrs: string[] }>();
  private services: ServiceState[] = [];
  private manifests: Manifests | undefined;
  private issues: readonly ConfigIssue[] = [];
  private readonly probers = new Map<string, ChildProcess>();
  private readonly probeWaiters = new Map<number, (r: ProbeReply) => void>();
  private nextProbeId = 1;
  private readonly components = new Map<
    string,
    { node: NodeLayout; comp: NodeComponent; child?: ChildProcess; restarts: number; ready: boolean }
  >();
  private appliedNft = '';
  private readonly appliedHosts = new Map<string, string>();
  private generation = 0;
  private phase: LocalState['phase'] = 'starting';
  private stopping = false;
  private queue: Promise<void> = Promise.resolve();
  private syncScheduled = false;
  private readyAnnounced = false;

  constructor(
    private readonly cfg: ClusterConfig,
    private readonly log: Logger,
    private readonly nodeComponents: readonly NodeComponent[] = [],
  ) {
    this.nodes = Array.from({ length: cfg.nodes }, (_, i) => nodeLayout(cfg.cluster, i + 1));
  }

  private progress(msg: string, extra: Record<string, unknown> = {}): void {
    this.log.info({ progress: true, ...extra }, msg);
  }

  /** Builds the nodes and the fabric, starts node daemons, then applies the manifests. */
  async start(): Promise<void> {
    this.progress(`creating ${this.nodes.length} nodes joined by a fabric link`);
    for (const node of this.nodes) {
      createCgroup(join(this.cfg.cgroupDir, node.podsCgroup));
      createCgroup(join(this.cfg.cgroupDir, node.systemCgroup));
    }
    await createFabric(this.cfg.cluster);
    for (const node of this.nodes) await createNode(this.cfg.cluster, node);
    await routeNodes(this.nodes);
    for (const node of this.nodes) this.startProber(node);
    for (const comp of this.nodeComponents.filter((c) => c.cluster === true))
      this.startComponent(this.nodes[0]!, comp);
    for (const node of this.nodes) {
      for (const comp of this.nodeComponents.filter((c) => c.cluster !== true))
        this.startComponent(node, comp);
    }
    await this.exclusive(() => this.reload());
    this.phase = 'running';
    this.scheduleSync();
  }

  /** Runs one change at a time; reconciliation steps never interleave. */
  private exclusive(fn: () => Promise<void>): Promise<void> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch((err: unknown) => this.log.error({ err }, 'reconcile step failed'));
    return this.queue;
  }

  /** Re-reads the manifests and reconciles; called at start and by the folder watch. */
  requestReload(): Promise<void> {
    return this.exclusive(() => this.reload());
  }

  private async reload(): Promise<void> {
    if (this.stopping) return;
    let loaded: ReturnType<typeof loadManifests>;
    try {
      loaded = loadManifests(
        this.cfg.manifests,
        { requireCommand: true, nodeNames: this.nodes.map((n) => n.name) },
        manifestDisplayBase(this.cfg.manifests),
      );
    } catch (err) {
      this.log.error({ err }, 'cannot read the manifests; keeping the current cluster');
      return;
    }
    for (const issue of loaded.issues) {
      this.log[issue.severity === 'error' ? 'error' : 'warn'](
        { file: issue.file, line: issue.line, path: issue.path, object: issue.object },
        `rejected: ${formatIssue(issue)}`,
      );
    }
    const effective = toManifests(mergeReload(this.manifests, loaded.manifests, loaded.issues));
    this.manifests = effective;
    this.issues = loaded.issues;
    this.generation++;
    await this.reconcilePods(effective);
    await this.syncNow();
  }

  private async reconcilePods(m: Manifests): Promise<void> {
    const desired = desiredPods(m);
    const wanted = new Map(desired.map((d) => [podKey(d.namespace, d.name), d]));
    const toStop: LivePod[] = [];
    for (const [key, pod] of this.pods) {
      const d = wanted.get(key);
      if (d === undefined || d.specHash !== pod.desired.specHash) toStop.push(pod);
    }
    await Promise.all(toStop.map((p) => this.deletePod(p)));
    for (const d of desired) {
      const key = podKey(d.namespace, d.name);
      if (this.pods.has(key)) continue;
      try {
        await this.createPod(d);
      } catch (err) {
        this.log.error({ err, pod: key }, 'cannot create pod; retrying in 5s');
        const half = this.pods.get(key);
        if (half !== undefined) await this.deletePod(half);
        setTimeout(() => void this.requestReload(), 5000);
      }
    }
  }

  private async createPod(d: DesiredPod): Promise<void> {
    const placed = [...this.pods.values()].map((p) => ({
      node: p.node.name,
      ...(p.desired.owner === undefined ? {} : { owner: p.desired.owner }),
    }));
    const node = pickNode(
      {
        ...(d.spec.nodeName === undefined ? {} : { nodeName: d.spec.nodeName }),
        ...(d.owner === undefined ? {} : { owner: d.owner }),
      },
      this.nodes,
      placed,
    );
    if (node === undefined)
      throw new AmbitError(ErrorCode.NOT_FOUND, `no node for pod ${d.namespace}/${d.name}`);
    const used = new Set([...this.pods.values()].filter((p) => p.node.name === node.name).map((p) => p.host));
    const host = allocate(used, POD_HOST_MIN, POD_HOST_MAX);
    if (host === undefined)
      throw new AmbitError(ErrorCode.IPAM_EXHAUSTED, `node ${node.name} has no free pod address`);
    const { ip4, ip6 } = podAddresses(node, host);
    const netns = podNetns(this.cfg.cluster, d.namespace, d.name);
    const cgroupRel = podCgroup(node, d.namespace, d.name);
    const sandbox: SandboxPaths = {
      netns,
      cgroupDir: join(this.cfg.cgroupDir, cgroupRel),
      podDir: this.cfg.paths.podDir(d.namespace, d.name),
    };
    const pod: LivePod = {
      desired: d,
      uid: randomUUID(),
      node,
      host,
      ip4,
      ip6,
      netns,
      cgroupRel,
      sandbox,
      createdAt: new Date().toISOString(),
      containers: d.spec.containers.map((spec) => ({
        spec,
        state: 'waiting',
        restarts: 0,
        ready: false,
        backoffMs: BACKOFF_START_MS,
        timers: [],
        readyStreak: { ok: 0, fail: 0 },
        liveStreak: { fail: 0 },
        reason: 'ContainerCreating',
      })),
      terminating: false,
    };
    this.pods.set(podKey(d.namespace, d.name), pod);
    this.progress(`starting pod ${d.namespace}/${d.name} on ${node.name} (${ip4}, ${ip6})`, {
      pod: `${d.namespace}/${d.name}`,
      node: node.name,
    });
    createCgroup(sandbox.cgroupDir);
    mkdirSync(sandbox.podDir, { recursive: true });
    await createPodNetwork(node, { netns, hostVeth: podHostVeth(d.namespace, d.name), ip4, ip6 });
    const etc = netnsEtcDir(netns);
    mkdirSync(etc, { recursive: true });
    const hosts = hostsFile({ namespace: d.namespace, name: d.name, ip4, ip6 }, this.services);
    writeFileSync(join(etc, 'hosts'), hosts);
    this.appliedHosts.set(podKey(d.namespace, d.name), hosts);
    writeFileSync(join(etc, 'resolv.conf'), resolvConf(d.namespace));
    pod.pause = await startPause(sandbox);
    pod.pause.once('exit', () => {
      if (!pod.terminating && !this.stopping) {
        this.log.warn({ pod: podKey(d.namespace, d.name) }, 'pod sandbox died; recreating the pod');
        void this.exclusive(async () => {
          await this.deletePod(pod);
          await this.createPod(d).catch((err: unknown) => this.log.error({ err }, 'cannot recreate pod'));
          await this.syncNow();
        });
      }
    });
    if (this.cfg.cniSocket !== undefined) {
      const nsLabels = this.manifests?.namespaces.find((n) => n.meta.name === d.namespace)?.meta.labels ?? {};
      const r = await cniAdd(this.cfg.cniSocket(node), {
        pod: {
          uid: pod.uid,
          namespace: d.namespace,
          name: d.name,
          node: node.name,
          labels: d.labels,
          annotations: d.annotations,
          cgroup: cgroupRel,
          ips: [ip4, ip6],
        },
        namespaceLabels: nsLabels,
      });
      if (r.enrolled)
        this.progress(`enrolled ${d.namespace}/${d.name} in the mesh`, { pod: `${d.namespace}/${d.name}` });
    }
    for (const c of pod.containers) this.runContainer(pod, c);
  }

  private runContainer(pod: LivePod, c: LiveContainer): void {
    if (pod.terminating || this.stopping || pod.pause?.pid === undefined) return;
    const d = pod.desired;
    const { env, argv } = containerProcess(
      c.spec,
      {
        name: d.name,
        namespace: d.namespace,
        uid: pod.uid,
        node: pod.node.name,
        serviceAccount: d.spec.serviceAccountName,
        ip4: pod.ip4,
        hostIp: pod.node.ip4,
      },
      this.services,
      CONTAINER_PATH,
    );
    const logFile = this.cfg.paths.containerLog(d.namespace, d.name, c.spec.name);
    const child = startContainer(pod.sandbox, pod.pause.pid, {
      command: argv,
      workingDir: c.spec.workingDir ?? '/',
      env,
      logFile,
    });
    c.child = child;
    c.state = 'running';
    c.startedAt = Date.now();
    delete c.exitCode;
    delete c.reason;
    c.readyStreak = { ok: 0, fail: 0 };
    c.liveStreak = { fail: 0 };
    c.ready = c.spec.readinessProbe === undefined;
    this.startProbes(pod, c);
    child.once('error', (err) =>
      this.log.error(
        { err, pod: podKey(d.namespace, d.name), container: c.spec.name },
        'container failed to start',
      ),
    );
    child.once('exit', (code, signal) => this.onContainerExit(pod, c, child, code, signal));
    this.scheduleSync();
  }

  private onContainerExit(
    pod: LivePod,
    c: LiveContainer,
    child: ChildProcess,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): void {
    if (c.child !== child) return;
    for (const t of c.timers) clearTimeout(t);
    c.timers = [];
    delete c.child;
    c.state = 'terminated';
    c.ready = false;
    c.exitCode = code ?? 128 + (signal === null ? 0 : 9);
    c.reason = code === 0 ? 'Completed' : signal !== null ? `Killed (${signal})` : 'Error';
    const key = podKey(pod.desired.namespace, pod.desired.name);
    if (pod.terminating || this.stopping) return;
    this.log.warn({ pod: key, container: c.spec.name, exitCode: c.exitCode }, 'container exited');
    const policy = pod.desired.spec.restartPolicy;
    const restart = policy === 'Always' || (policy === 'OnFailure' && c.exitCode !== 0);
    if (restart) {
      const ran = Date.now() - (c.startedAt ?? 0);
      if (ran > BACKOFF_RESET_AFTER_MS) c.backoffMs = BACKOFF_START_MS;
      c.reason = 'CrashLoopBackOff';
      c.state = 'waiting';
      const wait = c.backoffMs;
      c.backoffMs = Math.min(c.backoffMs * 2, BACKOFF_MAX_MS);
      c.timers.push(
        setTimeout(() => {
          c.restarts++;
          this.runContainer(pod, c);
        }, wait),
      );
    }
    this.scheduleSync();
  }

  private startProbes(pod: LivePod, c: LiveContainer): void {
    const target = () => ({ ip: pod.ip4, cgroupDir: pod.sandbox.cgroupDir, pausePid: pod.pause?.pid ?? 0 });
    const loop = (kind: 'readiness' | 'liveness'): void => {
      const spec = kind === 'readiness' ? c.spec.readinessProbe : c.spec.livenessProbe;
      if (spec === undefined) return;
      const probe = resolveProbe(spec.action, c.spec.ports);
      const tick = async (): Promise<void> => {
        if (c.state !== 'running' || pod.terminating) return;
        const outcome =
          probe === undefined
            ? {
                ok: false,
                message: `probe port ${JSON.stringify((spec.action as { port?: unknown }).port)} is not a named port of the container`,
              }
            : await this.probe(pod.node, { probe, target: target(), timeoutMs: spec.timeoutSeconds * 1000 });
        if (c.state !== 'running') return;
        if (kind === 'readiness') {
          if (outcome.ok) {
            c.readyStreak = { ok: c.readyStreak.ok + 1, fail: 0 };
            if (!c.ready && c.readyStreak.ok >= spec.successThreshold) {
              c.ready = true;
              this.scheduleSync();
            }
          } else {
            c.readyStreak = { ok: 0, fail: c.readyStreak.fail + 1 };
            if (c.ready && c.readyStreak.fail >= spec.failureThreshold) {
              c.ready = false;
              this.log.warn(
                {
                  pod: `${pod.desired.namespace}/${pod.desired.name}`,
                  container: c.spec.name,
                  probe: outcome.message,
                },
                'readiness probe failed',
              );
              this.scheduleSync();
            }
          }
        } else if (outcome.ok) {
          c.liveStreak.fail = 0;
        } else if (++c.liveStreak.fail >= spec.failureThreshold) {
          this.log.warn(
            {
              pod: `${pod.desired.namespace}/${pod.desired.name}`,
              container: c.spec.name,
              probe: outcome.message,
            },
            'liveness probe failed; restarting container',
          );
          c.liveStreak.fail = 0;
          c.child?.kill('SIGKILL');
          return;
        }
        c.timers.push(setTimeout(() => void tick(), spec.periodSeconds * 1000));
      };
      c.timers.push(setTimeout(() => void tick(), spec.initialDelaySeconds * 1000));
    };
    loop('readiness');
    loop('liveness');
  }

  private probe(node: NodeLayout, req: Omit<ProbeRequest, 'id'>): Promise<ProbeReply> {
    const prober = this.probers.get(node.name);
    const id = this.nextProbeId++;
    if (prober === undefined || !prober.connected)
      return Promise.resolve({ id, ok: false, message: `the prober of ${node.name} is not running` });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.probeWaiters.delete(id);
        resolve({ id, ok: false, message: 'probe timed out' });
      }, req.timeoutMs + 2000);
      this.probeWaiters.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      prober.send({ id, ...req } satisfies ProbeRequest);
    });
  }

  private startProber(node: NodeLayout): void {
    const log = this.cfg.paths.nodeDir(node.name);
    mkdirSync(log, { recursive: true });
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        'echo $$ >"$0" && exec "$@"',
        join(this.cfg.cgroupDir, node.systemCgroup, 'cgroup.procs'),
        // nsenter, not `ip netns exec`: node daemons keep the host's mounts (/sys/fs/bpf, the cgroup tree),
        // which `ip netns exec` would hide behind a fresh /sys.
        'nsenter',
        `--net=/run/netns/${node.netns}`,
        '--',
        process.execPath,
        this.cfg.proberScript,
      ],
      { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], detached: true },
    );
    child.on('message', (r: ProbeReply) => this.probeWaiters.get(r.id)?.(r));
    child.once('exit', () => {
      this.probers.delete(node.name);
      if (!this.stopping) {
        this.log.warn({ node: node.name }, 'node prober exited; restarting it');
        setTimeout(() => this.startProber(node), 1000);
      }
    });
    this.probers.set(node.name, child);
  }

  private startComponent(node: NodeLayout, comp: NodeComponent): void {
    // A cluster component runs in the fabric namespace, in the control cgroup, logging next to the state;
    // a node component in its node. `node` is where it is probed from.
    const cluster = comp.cluster === true;
    const key = cluster ? comp.name : `${node.name}/${comp.name}`;
    const entry = this.components.get(key) ?? { node, comp, restarts: 0, ready: false };
    entry.ready = comp.readiness === undefined;
    this.components.set(key, entry);
    const logDir = cluster ? this.cfg.paths.dir : this.cfg.paths.nodeDir(node.name);
    mkdirSync(logDir, { recursive: true });
    const out = join(logDir, `${comp.name}.log`);
    const cgroup = cluster
      ? join(this.cfg.cgroupDir, 'control', comp.name)
      : join(this.cfg.cgroupDir, node.systemCgroup);
    createCgroup(cgroup);
    const netns = cluster ? fabricNetns(this.cfg.cluster) : node.netns;
    const [cmd, ...args] = comp.argv(node);
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        'echo $$ >"$0" && exec "$@" >>"$LOG_FILE" 2>&1',
        join(cgroup, 'cgroup.procs'),
        // nsenter, not `ip netns exec`: daemons keep the host's mounts (/sys/fs/bpf, the cgroup tree),
        // which `ip netns exec` would hide behind a fresh /sys.
        'nsenter',
        `--net=/run/netns/${netns}`,
        '--',
        cmd!,
        ...args,
      ],
      {
        stdio: 'ignore',
        detached: true,
        env: { ...process.env, ...(comp.env?.(node) ?? {}), LOG_FILE: out },
      },
    );
    entry.child = child;
    if (comp.readiness !== undefined) void this.awaitComponentReady(entry, child, comp.readiness);
    child.once('exit', (code, signal) => {
      delete entry.child;
      entry.ready = comp.readiness === undefined;
      if (this.stopping || this.phase === 'stopping') return;
      entry.restarts++;
      this.log.warn(
        { node: node.name, component: comp.name, code, signal },
        'node component exited; restarting it',
      );
      setTimeout(
        () => {
          // The cluster may have begun stopping meanwhile: a component started now would outlive teardown.
          if (!this.stopping && this.phase !== 'stopping') this.startComponent(node, comp);
        },
        Math.min(500 * 2 ** Math.min(entry.restarts, 5), 16_000),
      );
    });
  }

  /** Probes a node daemon's readiness endpoint from inside its node until it answers, like a kubelet would. */
  private async awaitComponentReady(
    entry: { node: NodeLayout; comp: NodeComponent; child?: ChildProcess; ready: boolean },
    child: ChildProcess,
    readiness: { port: number; path: string; host?: string },
  ): Promise<void> {
    while (!this.stopping && entry.child === child) {
      const r = await this.probe(entry.node, {
        probe: { type: 'httpGet', path: readiness.path, port: readiness.port, scheme: 'HTTP' },
        target: { ip: readiness.host ?? '127.0.0.1', cgroupDir: '', pausePid: 0 },
        timeoutMs: 1000,
      });
      if (r.ok && entry.child === child) {
        entry.ready = true;
        this.progress(`${entry.comp.name} on ${entry.node.name} is ready`, {
          node: entry.node.name,
          component: entry.comp.name,
        });
        this.scheduleSync();
        return;
      }
      await sleep(200);
    }
  }

  private async deletePod(pod: LivePod): Promise<void> {
    const key = podKey(pod.desired.namespace, pod.desired.name);
    if (this.pods.get(key) !== pod) return;
    pod.terminating = true;
    this.progress(`deleting pod ${key}`, { pod: key });
    const grace = Math.min(pod.desired.spec.terminationGracePeriodSeconds * 1000, STOP_GRACE_CAP_MS);
    await Promise.all(
      pod.containers.map(async (c) => {
        for (const t of c.timers) clearTimeout(t);
        if (c.child !== undefined) await stopProcess(c.child, grace);
      }),
    );
    if (pod.pause !== undefined) await stopProcess(pod.pause, 1000);
    await deleteNetns(pod.netns);
    rmSync(netnsEtcDir(pod.netns), { recursive: true, force: true });
    await removeCgroupDir(pod.sandbox.cgroupDir);
    this.pods.delete(key);
    this.appliedHosts.delete(key);
  }

  /** Debounced: recompute Services and publish state after runtime events (exits, probe results). */
  private scheduleSync(): void {
    if (this.syncScheduled || this.stopping) return;
    this.syncScheduled = true;
    setTimeout(() => {
      this.syncScheduled = false;
      void this.exclusive(() => this.syncNow());
    }, 50);
  }

  private async syncNow(): Promise<void> {
    if (this.stopping) return;
    const m = this.manifests;
    const podStates = this.podStates();
    if (m !== undefined) {
      const keep = new Set(m.services.map((s) => objectKey(s)));
      for (const key of this.vips.keys()) if (!keep.has(key)) this.vips.delete(key);
      this.services = m.services.map((svc) => buildService(svc, this.vipsFor(svc), podStates));
    }
    const rules = nftServiceRules(this.services);
    if (rules !== this.appliedNft) {
      for (const node of this.nodes) await applyNft(node.netns, rules);
      this.appliedNft = rules;
    }
    for (const [key, pod] of this.pods) {
      if (pod.terminating) continue;
      const text = hostsFile(
        { namespace: pod.desired.namespace, name: pod.desired.name, ip4: pod.ip4, ip6: pod.ip6 },
        this.services,
      );
      if (this.appliedHosts.get(key) !== text) {
        // Rewritten in place: the pod sees this file through a bind mount of this very inode.
        writeFileSync(join(netnsEtcDir(pod.netns), 'hosts'), text);
        this.appliedHosts.set(key, text);
      }
    }
    this.publish(podStates);
  }

  private vipsFor(svc: Manifests['services'][number]): string[] {
    const key = objectKey(svc);
    if (svc.clusterIP === 'None') return [];
    const existing = this.vips.get(key);
    if (existing !== undefined) return existing.addrs;
    const used = new Set([...this.vips.values()].map((v) => v.n));
    let n: number | undefined;
    if (svc.clusterIP !== undefined) {
      const parts = svc.clusterIP.split('.');
      n =
        parts.length === 4 && parts[0] === '10' && parts[1] === '96'
          ? Number(parts[2]) * 256 + Number(parts[3])
          : undefined;
      if (n === undefined || used.has(n)) {
        this.log.error(
          { service: key, clusterIP: svc.clusterIP },
          'clusterIP is outside 10.96.0.0/16 or taken; allocating another',
        );
        n = undefined;
      }
    }
    n ??= allocate(used, SERVICE_HOST_MIN, SERVICE_HOST_MAX);
    if (n === undefined) {
      this.log.error({ service: key }, 'no free Service VIP');
      return [];
    }
    const a = serviceAddresses(n);
    const addrs = svc.ipFamilies.map((f) => (f === 'IPv4' ? a.ip4 : a.ip6));
    this.vips.set(key, { n, addrs });
    return addrs;
  }

  private podStates(): PodState[] {
    return [...this.pods.values()].map((p) => {
      const containers: ContainerState[] = p.containers.map((c) => ({
        name: c.spec.name,
        state: c.state,
        ...(c.child?.pid === undefined ? {} : { pid: c.child.pid }),
        ready: c.ready,
        restarts: c.restarts,
        ...(c.exitCode === undefined ? {} : { exitCode: c.exitCode }),
        ...(c.reason === undefined ? {} : { reason: c.reason }),
        ...(c.startedAt === undefined ? {} : { startedAt: new Date(c.startedAt).toISOString() }),
      }));
      return {
        namespace: p.desired.namespace,
        name: p.desired.name,
        uid: p.uid,
        node: p.node.name,
        netns: p.netns,
        ip4: p.ip4,
        ip6: p.ip6,
        cgroup: p.cgroupRel,
        serviceAccount: p.desired.spec.serviceAccountName,
        labels: p.desired.labels,
        annotations: p.desired.annotations,
        ...(p.desired.owner === undefined ? {} : { owner: p.desired.owner }),
        phase: podPhase(p),
        ready: !p.terminating && containers.every((c) => c.ready),
        ...(p.pause?.pid === undefined ? {} : { pausePid: p.pause.pid }),
        containers,
        ports: p.desired.spec.containers.flatMap((c) => c.ports),
        createdAt: p.createdAt,
      };
    });
  }

  private publish(pods: PodState[]): void {
    const m = this.manifests;
    const state: LocalState = {
      version: 1,
      cluster: this.cfg.cluster,
      manifests: this.cfg.manifests,
      daemonPid: process.pid,
      cgroupDir: this.cfg.cgroupDir,
      phase: this.phase,
      nodes: this.nodes,
      namespaces: (m?.namespaces ?? []).map((n) => ({ name: n.meta.name, labels: n.meta.labels })),
      pods,
      services: this.services,
      daemons: [...this.components.values()].map((c) => ({
        node: c.comp.cluster === true ? '' : c.node.name,
        name: c.comp.name,
        ...(c.child?.pid === undefined ? {} : { pid: c.child.pid }),
        ready: c.ready,
        restarts: c.restarts,
      })),
      issues: this.issues,
      kept: (m?.kept ?? []).map((k) => ({
        kind: k.kind,
        apiVersion: k.apiVersion,
        namespace: k.meta.namespace,
        name: k.meta.name,
        file: k.source.file,
        line: k.source.line,
        body: k.body,
      })),
      generation: this.generation,
      updatedAt: new Date().toISOString(),
    };
    writeState(this.cfg.paths.state, state);
    if (
      this.phase === 'running' &&
      !this.readyAnnounced &&
      pods.every((p) => p.ready || p.phase === 'Succeeded') &&
      [...this.components.values()].every((c) => c.ready)
    ) {
      this.readyAnnounced = true;
      this.log.info(
        { progress: true, event: 'ready', pods: pods.length },
        `all ${pods.length} pods are ready`,
      );
    }
  }

  /** Stops every pod and node daemon, gracefully, in parallel. */
  async stop(): Promise<void> {
    this.phase = 'stopping';
    await this.queue.catch(() => undefined);
    this.stopping = true;
    this.progress('stopping pods');
    await Promise.all(
      [...this.pods.values()].map(async (pod) => {
        pod.terminating = true;
        const grace = Math.min(pod.desired.spec.terminationGracePeriodSeconds * 1000, STOP_GRACE_CAP_MS);
        await Promise.all(
          pod.containers.map(async (c) => {
            for (const t of c.timers) clearTimeout(t);
            if (c.child !== undefined) await stopProcess(c.child, grace);
          }),
        );
        if (pod.pause !== undefined) await stopProcess(pod.pause, 1000);
      }),
    );
    await Promise.all(
      [...this.components.values()].map((e) =>
        e.child === undefined ? undefined : stopProcess(e.child, 5000),
      ),
    );
    for (const p of this.probers.values()) p.kill('SIGTERM');
  }
}

/**
 * The CNI step: asks the node agent to enroll a pod before its containers start, waiting for the agent
 * while it starts up (as a CNI plugin would block pod creation).
 */
async function cniAdd(socketPath: string, body: CniAddRequest): Promise<CniAddResponse> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await new Promise<CniAddResponse>((resolve, reject) => {
        const req = httpRequest(
          { socketPath, path: CNI_ADD_PATH, method: 'POST', headers: { 'content-type': 'application/json' } },
          (res) => {
            let text = '';
            res.on('data', (d: Buffer) => {
              text += d.toString();
            });
            res.on('end', () => {
              if (res.statusCode === 200) resolve(JSON.parse(text) as CniAddResponse);
              else
                reject(new AmbitError(ErrorCode.COMMAND_FAILED, `CNI add: HTTP ${res.statusCode}: ${text}`));
            });
          },
        );
        req.once('error', reject);
        req.end(JSON.stringify(body));
      });
    } catch (err) {
      if (Date.now() > deadline) {
        throw new AmbitError(
          ErrorCode.PRECONDITION,
          `the node agent did not enroll the pod (${socketPath}): ${(err as Error).message}`,
          { cause: err },
        );
      }
      await sleep(200);
    }
  }
}

/** Issues name files relative to the manifests folder (or the folder of a single manifest file). */
function manifestDisplayBase(manifests: string): string {
  try {
    return statSync(manifests).isDirectory() ? manifests : dirname(manifests);
  } catch {
    return dirname(manifests);
  }
}

function podPhase(p: LivePod): PodPhase {
  if (p.terminating) return 'Terminating';
  if (p.pause === undefined) return 'Pending';
  const states = p.containers.map((c) => c.state);
  if (states.some((s) => s === 'running')) return 'Running';
  if (states.every((s) => s === 'terminated')) {
    return p.containers.every((c) => c.exitCode === 0) ? 'Succeeded' : 'Failed';
  }
  return p.containers.some((c) => c.restarts > 0 || c.reason === 'CrashLoopBackOff') ? 'Running' : 'Pending';
}

/** rmdir of a cgroup fails with EBUSY for a moment after its last process exits. */
async function removeCgroupDir(dir: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') throw err;
      await sleep(20);
    }
  }
}
