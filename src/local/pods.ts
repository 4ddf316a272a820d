import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { QosClass } from '../config/kube-types.js';
import type { ServiceAccountClaims } from '../identity/service-account-token.js';
import type { Container } from '../manifests/model.js';
import { podQosClass } from '../manifests/pod-qos.js';
import { type BackoffPolicy, backoffDelay, RESTART_BACKOFF, RESTART_RESET_AFTER_MS } from '../net/backoff.js';
import { cgroupTree, createCgroup } from '../os/cgroup.js';
import type { Logger } from '../telemetry/logger.js';
import {
  bridgeResult,
  type CniPodRef,
  cniAdd,
  cniDel,
  linkMacs,
  type NodeCni,
  type NodeNetwork,
  readNodeNetwork,
} from './cni-runtime.js';
import { containerProcess } from './container-env.js';
import type { DesiredPod } from './desired-pods.js';
import {
  type ClusterPaths,
  containerCgroup,
  containerId,
  type NodeLayout,
  netnsEtcDir,
  podCgroup,
  podHostVeth,
  podNetns,
} from './layout.js';
import { createPodNetwork, deleteNetns } from './network.js';
import { CONTAINER_PATH, type SandboxPaths, startContainer, startPause, stopProcess } from './pod-runtime.js';
import { resolveProbe } from './probe.js';
import type { NodeProbers } from './probes.js';
import { hostsFile, resolvConf } from './services.js';
import type { ContainerState, PodPhase, PodState, ServiceState } from './state.js';

/** What a pod needs from the cluster it runs in. */
export interface PodHost {
  readonly cluster: string;
  readonly paths: ClusterPaths;
  /** Absolute cgroup v2 directory of the cluster. */
  readonly cgroupDir: string;
  readonly probers: NodeProbers;
  readonly log: Logger;
  /** Host folders that pods still see even under /tmp (which is private to each pod). */
  readonly keep?: readonly string[];
  /** The Services as they are now (container env and the hosts file name them). */
  services(): readonly ServiceState[];
  /**
   * A ServiceAccount token for a pod (what a kubelet projects into it), when the cluster signs them;
   * written to the pod's folder as `token` before its containers start.
   */
  readonly serviceAccountToken?: (claims: ServiceAccountClaims) => Promise<string>;
  /** A node's CNI folders, when the cluster runs node agents: every pod starts through the node's conflist. */
  readonly cni?: (node: NodeLayout) => NodeCni;
  /** The pod's state changed (a container started, exited, became ready). */
  onChange(): void;
  /** The sandbox died: the pod must be made anew. */
  onSandboxLost(pod: LocalPod): void;
  progress(message: string): void;
  isStopping(): boolean;
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
  attempt: number;
  timers: NodeJS.Timeout[];
  readyStreak: { ok: number; fail: number };
  liveStreak: { fail: number };
}

const STOP_GRACE_CAP_MS = 5_000;
/** A failed CNI ADD is retried as the kubelet retries a sandbox: doubling waits, here 1 s to 10 s. */
const CNI_RETRY_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 10_000, jitter: 'none' };

/**
 * One pod of a local cluster, as a kubelet and container runtime run it: a sandbox (network namespace,
 * cgroup, pause process holding its mounts), the CNI step, then its containers, restarted with the
 * kubelet's back-off and probed from the node.
 */
export class LocalPod {
  readonly uid = randomUUID();
  readonly netns: string;
  /** The pod's QoS class, from its containers' resources: it decides the pod's cgroup, as on a kubelet. */
  readonly qosClass: QosClass;
  readonly cgroupRel: string;
  readonly sandbox: SandboxPaths;
  readonly createdAt = new Date().toISOString();
  /** The sandbox's id, as a runtime names it to CNI plugins (CNI_CONTAINERID, K8S_POD_INFRA_CONTAINER_ID). */
  readonly sandboxId = randomBytes(32).toString('hex');
  pause?: ChildProcess;
  /** Why the sandbox is not ready (a CNI ADD failed); cleared once it is. */
  private sandboxError: string | undefined;
  /** What ADD ran, for DEL: the network config and the final result. */
  private cniDone: { net: NodeNetwork; result: unknown } | undefined;
  private cniAttempts = 0;
  private cniTimer: NodeJS.Timeout | undefined;
  private deletedAt: string | undefined;
  hosts = '';
  private readonly containers: LiveContainer[];

  constructor(
    readonly desired: DesiredPod,
    readonly node: NodeLayout,
    /** Host number of the pod's addresses on its node. */
    readonly host: number,
    readonly ip4: string,
    readonly ip6: string,
    private readonly h: PodHost,
  ) {
    // A hostNetwork pod joins its node's network namespace instead of getting one of its own.
    this.netns = desired.spec.hostNetwork ? node.netns : podNetns(h.cluster, desired.namespace, desired.name);
    this.qosClass = podQosClass(desired.spec.containers);
    this.cgroupRel = podCgroup(node, this.uid, this.qosClass);
    this.sandbox = {
      netns: this.netns,
      cgroupDir: join(h.cgroupDir, this.cgroupRel),
      sandboxCgroupDir: join(h.cgroupDir, containerCgroup(this.cgroupRel, containerId(this.uid))),
      podDir: h.paths.podDir(desired.namespace, desired.name),
      ...(h.keep === undefined ? {} : { keep: h.keep }),
    };
    this.containers = desired.spec.containers.map((spec) => ({
      spec,
      state: 'waiting',
      restarts: 0,
      ready: false,
      attempt: 0,
      timers: [],
      readyStreak: { ok: 0, fail: 0 },
      liveStreak: { fail: 0 },
      reason: 'ContainerCreating',
    }));
  }

  get terminating(): boolean {
    return this.deletedAt !== undefined;
  }

  get key(): string {
    return `${this.desired.namespace}/${this.desired.name}`;
  }

  /**
   * Builds the sandbox (cgroup, network namespace with local mode's bridge, pause process), then runs
   * the node's chained CNI plugins and, once they succeeded, starts the containers.
   */
  async start(): Promise<void> {
    const d = this.desired;
    createCgroup(this.sandbox.cgroupDir);
    mkdirSync(this.sandbox.podDir, { recursive: true });
    if (d.spec.hostNetwork) return this.startHostNetwork();
    await createPodNetwork(this.node, {
      netns: this.netns,
      hostVeth: podHostVeth(d.namespace, d.name),
      ip4: this.ip4,
      ip6: this.ip6,
    });
    const etc = netnsEtcDir(this.netns);
    mkdirSync(etc, { recursive: true });
    this.hosts = hostsFile(
      { namespace: d.namespace, name: d.name, ip4: this.ip4, ip6: this.ip6 },
      this.h.services(),
    );
    writeFileSync(join(etc, 'hosts'), this.hosts);
    writeFileSync(join(etc, 'resolv.conf'), resolvConf(d.namespace));
    this.pause = await startPause(this.sandbox);
    this.pause.once('exit', () => {
      if (!this.terminating && !this.h.isStopping()) {
        this.h.log.warn({ pod: this.key }, 'pod sandbox died; recreating the pod');
        this.h.onSandboxLost(this);
      }
    });
    if (this.h.cni === undefined) {
      await this.startContainers();
      return;
    }
    // The CNI step runs on its own, retried with back-off, as a kubelet retries a sandbox whose network
    // failed: the rest of the cluster goes on meanwhile, and the pod's containers start only after it.
    void this.cniStep(this.h.cni(this.node));
  }

  private get cniRef(): CniPodRef {
    return {
      containerId: this.sandboxId,
      netnsPath: `/run/netns/${this.netns}`,
      namespace: this.desired.namespace,
      name: this.desired.name,
      uid: this.uid,
    };
  }

  /** Runs the node's chained CNI plugins (ADD); on failure shows why and tries again later. */
  private async cniStep(cni: NodeCni): Promise<void> {
    if (this.terminating || this.h.isStopping()) return;
    const d = this.desired;
    let net: NodeNetwork | undefined;
    try {
      net = readNodeNetwork(cni.confDir);
      const macs = await linkMacs(this.node.netns, podHostVeth(d.namespace, d.name), this.netns);
      const primary = bridgeResult(this.node, {
        netnsPath: this.cniRef.netnsPath,
        hostVeth: podHostVeth(d.namespace, d.name),
        ...macs,
        ip4: this.ip4,
        ip6: this.ip6,
      });
      const r = await cniAdd(cni, net, this.cniRef, primary);
      if (this.terminating || this.h.isStopping()) return;
      this.cniDone = { net, result: r.result };
      this.sandboxError = undefined;
      this.h.log.info(
        { pod: this.key, plugins: r.plugins, attempts: this.cniAttempts + 1 },
        'pod network ready (CNI ADD)',
      );
      this.h.progress(
        `network of ${this.key} ready (CNI ${r.plugins.length === 0 ? 'primary only' : r.plugins.join(', ')})`,
      );
      await this.startContainers();
    } catch (err) {
      if (this.terminating || this.h.isStopping()) return;
      // As a runtime does after a failed ADD: DEL of the chain, so that no plugin keeps half a pod.
      if (net !== undefined) await cniDel(cni, net, this.cniRef, undefined).catch(() => undefined);
      const wait = backoffDelay(this.cniAttempts++, CNI_RETRY_BACKOFF);
      this.sandboxError = `FailedCreatePodSandBox: ${(err as Error).message}`;
      this.h.log.warn({ pod: this.key, err, retryInMs: wait }, 'pod network failed (CNI ADD); the pod waits');
      this.h.progress(
        `pod ${this.key} waits for its network: ${(err as Error).message}; retrying in ${Math.round(wait / 1000)}s`,
      );
      this.h.onChange();
      this.cniTimer = setTimeout(() => void this.cniStep(cni), wait);
    }
  }

  private async startContainers(): Promise<void> {
    await this.writeToken();
    for (const c of this.containers) this.run(c);
    this.h.onChange();
  }

  /** A hostNetwork pod: the sandbox in the node's network namespace, no pod network and no CNI step (as a kubelet). */
  private async startHostNetwork(): Promise<void> {
    this.pause = await startPause(this.sandbox);
    this.pause.once('exit', () => {
      if (!this.terminating && !this.h.isStopping()) this.h.onSandboxLost(this);
    });
    await this.writeToken();
    for (const c of this.containers) this.run(c);
  }

  /** Where the pod's ServiceAccount token is (a kubelet projects it; here it is a file in the pod's folder). */
  get tokenFile(): string {
    return join(this.sandbox.podDir, 'token');
  }

  /** Issues the pod's ServiceAccount token anew (at start, and before the last one expires). */
  async writeToken(): Promise<void> {
    if (this.h.serviceAccountToken === undefined || this.terminating) return;
    const d = this.desired;
    const token = await this.h.serviceAccountToken({
      namespace: d.namespace,
      serviceAccount: d.spec.serviceAccountName,
      pod: d.name,
      podUid: this.uid,
      node: this.node.name,
    });
    writeFileSync(`${this.tokenFile}.new`, `${token}\n`, { mode: 0o600 });
    renameSync(`${this.tokenFile}.new`, this.tokenFile);
  }

  /** Rewrites the pod's hosts file when the Services changed (in place: the pod sees this inode). */
  refreshHosts(): void {
    if (this.terminating || this.desired.spec.hostNetwork) return;
    const d = this.desired;
    const text = hostsFile(
      { namespace: d.namespace, name: d.name, ip4: this.ip4, ip6: this.ip6 },
      this.h.services(),
    );
    if (text === this.hosts) return;
    writeFileSync(join(netnsEtcDir(this.netns), 'hosts'), text);
    this.hosts = text;
  }

  private run(c: LiveContainer): void {
    if (this.terminating || this.h.isStopping() || this.pause?.pid === undefined) return;
    const d = this.desired;
    const { env, argv } = containerProcess(
      c.spec,
      {
        name: d.name,
        namespace: d.namespace,
        uid: this.uid,
        node: this.node.name,
        serviceAccount: d.spec.serviceAccountName,
        ip4: this.ip4,
        hostIp: this.node.ip4,
      },
      this.h.services(),
      CONTAINER_PATH,
    );
    const child = startContainer(this.pause.pid, {
      cgroupDir: this.containerCgroupDir(c),
      command: argv,
      workingDir: c.spec.workingDir ?? '/',
      env,
      logFile: this.h.paths.containerLog(d.namespace, d.name, c.spec.name),
    });
    c.child = child;
    c.state = 'running';
    c.startedAt = Date.now();
    delete c.exitCode;
    delete c.reason;
    c.readyStreak = { ok: 0, fail: 0 };
    c.liveStreak = { fail: 0 };
    c.ready = c.spec.readinessProbe === undefined;
    this.probeLoops(c);
    child.once('error', (err) =>
      this.h.log.error({ err, pod: this.key, container: c.spec.name }, 'container failed to start'),
    );
    child.once('exit', (code, signal) => this.onExit(c, child, code, signal));
    this.h.onChange();
  }

  /** Where a container's processes (and its exec probes) run: its scope below the pod's cgroup. */
  private containerCgroupDir(c: LiveContainer): string {
    return join(this.h.cgroupDir, containerCgroup(this.cgroupRel, containerId(this.uid, c.spec.name)));
  }

  private onExit(
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
    if (this.terminating || this.h.isStopping()) return;
    this.h.log.warn({ pod: this.key, container: c.spec.name, exitCode: c.exitCode }, 'container exited');
    const policy = this.desired.spec.restartPolicy;
    if (policy === 'Always' || (policy === 'OnFailure' && c.exitCode !== 0)) {
      // The kubelet's CrashLoopBackOff: doubling waits, forgotten after a run that lasted.
      if (Date.now() - (c.startedAt ?? 0) > RESTART_RESET_AFTER_MS) c.attempt = 0;
      c.reason = 'CrashLoopBackOff';
      c.state = 'waiting';
      const wait = backoffDelay(c.attempt++, RESTART_BACKOFF);
      c.timers.push(
        setTimeout(() => {
          c.restarts++;
          this.run(c);
        }, wait),
      );
    }
    this.h.onChange();
  }

  /** Readiness and liveness probes, from the node, as the kubelet runs them. */
  private probeLoops(c: LiveContainer): void {
    const target = () => ({
      ip: this.ip4,
      cgroupDir: this.containerCgroupDir(c),
      pausePid: this.pause?.pid ?? 0,
    });
    const loop = (kind: 'readiness' | 'liveness'): void => {
      const spec = kind === 'readiness' ? c.spec.readinessProbe : c.spec.livenessProbe;
      if (spec === undefined) return;
      const probe = resolveProbe(spec.action, c.spec.ports);
      const tick = async (): Promise<void> => {
        if (c.state !== 'running' || this.terminating) return;
        const outcome =
          probe === undefined
            ? {
                ok: false,
                message: `probe port ${JSON.stringify((spec.action as { port?: unknown }).port)} is not a named port of the container`,
              }
            : await this.h.probers.probe(this.node, {
                probe,
                target: target(),
                timeoutMs: spec.timeoutSeconds * 1000,
              });
        if (c.state !== 'running') return;
        if (kind === 'readiness') {
          if (outcome.ok) {
            c.readyStreak = { ok: c.readyStreak.ok + 1, fail: 0 };
            if (!c.ready && c.readyStreak.ok >= spec.successThreshold) {
              c.ready = true;
              this.h.onChange();
            }
          } else {
            c.readyStreak = { ok: 0, fail: c.readyStreak.fail + 1 };
            if (c.ready && c.readyStreak.fail >= spec.failureThreshold) {
              c.ready = false;
              this.h.log.warn(
                { pod: this.key, container: c.spec.name, probe: outcome.message },
                'readiness probe failed',
              );
              this.h.onChange();
            }
          }
        } else if (outcome.ok) {
          c.liveStreak.fail = 0;
        } else if (++c.liveStreak.fail >= spec.failureThreshold) {
          this.h.log.warn(
            { pod: this.key, container: c.spec.name, probe: outcome.message },
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

  /** Stops the containers (SIGTERM, then SIGKILL after the grace period) and the sandbox process. */
  async stopProcesses(): Promise<void> {
    this.deletedAt ??= new Date().toISOString();
    clearTimeout(this.cniTimer);
    const grace = Math.min(this.desired.spec.terminationGracePeriodSeconds * 1000, STOP_GRACE_CAP_MS);
    await Promise.all(
      this.containers.map(async (c) => {
        for (const t of c.timers) clearTimeout(t);
        if (c.child !== undefined) await stopProcess(c.child, grace);
      }),
    );
    if (this.pause !== undefined) await stopProcess(this.pause, 1000);
  }

  /** Stops the pod and removes its network namespace, files and cgroup. */
  async delete(): Promise<void> {
    this.h.progress(`deleting pod ${this.key}`);
    await this.stopProcesses();
    const cni = this.h.cni?.(this.node);
    if (cni !== undefined && this.cniDone !== undefined) {
      // The runtime tears the sandbox's network down before the namespace goes (CNI DEL, in reverse).
      const failures = await cniDel(cni, this.cniDone.net, this.cniRef, this.cniDone.result);
      for (const f of failures) this.h.log.warn({ pod: this.key }, `CNI DEL: ${f}`);
      this.cniDone = undefined;
    }
    if (!this.desired.spec.hostNetwork) {
      await deleteNetns(this.netns);
      rmSync(netnsEtcDir(this.netns), { recursive: true, force: true });
    }
    await removeCgroupDir(this.sandbox.cgroupDir);
  }

  phase(): PodPhase {
    if (this.terminating) return 'Terminating';
    if (this.pause === undefined) return 'Pending';
    const states = this.containers.map((c) => c.state);
    if (states.some((s) => s === 'running')) return 'Running';
    if (states.every((s) => s === 'terminated'))
      return this.containers.every((c) => c.exitCode === 0) ? 'Succeeded' : 'Failed';
    return this.containers.some((c) => c.restarts > 0 || c.reason === 'CrashLoopBackOff')
      ? 'Running'
      : 'Pending';
  }

  state(): PodState {
    const d = this.desired;
    const containers: ContainerState[] = this.containers.map((c) => ({
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
      namespace: d.namespace,
      name: d.name,
      uid: this.uid,
      node: this.node.name,
      netns: this.netns,
      ip4: this.ip4,
      ip6: this.ip6,
      cgroup: this.cgroupRel,
      qosClass: this.qosClass,
      ...(d.spec.hostNetwork ? { hostNetwork: true } : {}),
      serviceAccount: d.spec.serviceAccountName,
      labels: d.labels,
      annotations: d.annotations,
      ...(d.owner === undefined ? {} : { owner: d.owner }),
      phase: this.phase(),
      ready: !this.terminating && containers.every((c) => c.ready),
      ...(this.pause?.pid === undefined ? {} : { pausePid: this.pause.pid }),
      containers,
      ports: d.spec.containers.flatMap((c) => c.ports),
      createdAt: this.createdAt,
      ...(this.deletedAt === undefined ? {} : { deletedAt: this.deletedAt }),
      ...(this.sandboxError === undefined ? {} : { message: this.sandboxError }),
    };
  }
}

/** Removes a pod cgroup and its container scopes; rmdir fails with EBUSY for a moment after the last process exits. */
async function removeCgroupDir(dir: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    try {
      for (const d of cgroupTree(dir)) rmdirSync(d);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') throw err;
      await sleep(20);
    }
  }
}
