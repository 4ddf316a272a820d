import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AMBIT_CNI_TYPE } from '../cni/conflist.js';
import type { ConfigIssue } from '../config/issue.js';
import { formatIssue } from '../config/issue.js';
import { AmbitError, ErrorCode } from '../errors.js';
import type { ServiceAccountClaims } from '../identity/service-account-token.js';
import { BUILTIN_NAMESPACES, loadManifests } from '../manifests/load-manifests.js';
import { type Manifests, objectKey } from '../manifests/model.js';
import { createCgroup } from '../os/cgroup.js';
import type { Logger } from '../telemetry/logger.js';
import { apiObjects } from './api-objects.js';
import { type NodeCni, readNodeNetwork, writeNodeCni } from './cni-runtime.js';
import { pendingWaypoints, withControllerObjects } from './controller-manifests.js';
import { DaemonSupervisor, type NodeComponent } from './daemons.js';
import { type DesiredPod, desiredPods, unavailableDeployments } from './desired-pods.js';
import {
  type ClusterPaths,
  type NodeLayout,
  nodeLayout,
  POD_HOST_MAX,
  POD_HOST_MIN,
  podAddresses,
} from './layout.js';
import { mergeReload, toManifests } from './manifest-merge.js';
import { applyNft, createFabric, createNode, routeNodes } from './network.js';
import { LocalPod, type PodHost } from './pods.js';
import { NodeProbers } from './probes.js';
import type { ProgressChannel } from './progress.js';
import { allocate, pickNode } from './scheduler.js';
import { VipAllocator } from './service-ipam.js';
import { buildService, nftServiceRules } from './services.js';
import { type LocalState, type PodState, type ServiceState, writeState } from './state.js';

export type { NodeComponent } from './daemons.js';

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
  /** A node's CNI folders, when the cluster runs node agents: pods start through the node's conflist. */
  readonly cni?: (node: NodeLayout) => NodeCni;
  /** Signs pods' ServiceAccount tokens (as the API server's TokenRequest does). */
  readonly serviceAccountToken?: (claims: ServiceAccountClaims) => Promise<string>;
  /**
   * Host folders pods must still see although their /tmp is private: the Ambit installation that
   * waypoint pods run (a checkout may live under /tmp).
   */
  readonly keep?: readonly string[];
  /**
   * Publishes the cluster as Kubernetes objects: local mode's API server (kube-api/) serves them.
   * `controllerObjects` names (Kind/namespace/name) the objects that came from `controllerObjects()`.
   */
  readonly publishApi: (
    objects: readonly Record<string, unknown>[],
    controllerObjects: ReadonlySet<string>,
  ) => void;
  /** Called once the fabric's network namespace exists, before any daemon starts (the API listens there). */
  readonly onFabric?: () => Promise<void>;
  /**
   * The objects controllers made through the API (the control plane's waypoint Deployments, Services
   * and ServiceAccounts): run like declared ones.
   */
  readonly controllerObjects?: () => readonly Record<string, unknown>[];
}

/** How long pod starts wait for the node agents' CNI plugin at cluster start. */
const CNI_READY_WAIT_MS = 60_000;

/** A kubelet refreshes projected tokens well before they expire. */
export const TOKEN_REFRESH_MS = 60 * 60_000;

/**
 * A local cluster: nodes and pods as network namespaces, containers as supervised processes, Services as
 * VIPs (nftables on every node) and names (hosts files). It reconciles towards the manifests folder,
 * which it watches, and publishes what it runs: the state file (for the CLI) and the local cluster's
 * API (Kubernetes objects, for the mesh's daemons). Pods, probes, daemons and VIPs each have their own
 * module; this class orders the steps and runs one change at a time.
 */
export class LocalCluster {
  readonly nodes: NodeLayout[];
  private readonly pods = new Map<string, LocalPod>();
  private readonly vips = new VipAllocator();
  private services: ServiceState[] = [];
  /** What the manifests declare (what a reload merges into). */
  private declared: Manifests | undefined;
  /** What runs: the declared objects and those controllers made through the API. */
  private manifests: Manifests | undefined;
  /** The objects of `manifests` that controllers made (objectKey). */
  private controllerKeys: ReadonlySet<string> = new Set();
  private issues: readonly ConfigIssue[] = [];
  private readonly probers: NodeProbers;
  private readonly daemons: DaemonSupervisor;
  private readonly podHost: PodHost;
  private appliedNft = '';
  private generation = 0;
  private phase: LocalState['phase'] = 'starting';
  private stopping = false;
  private queue: Promise<void> = Promise.resolve();
  private syncScheduled = false;
  private readyAnnounced = false;
  private tokenTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cfg: ClusterConfig,
    private readonly log: Logger,
    private readonly progress: ProgressChannel,
    private readonly nodeComponents: readonly NodeComponent[] = [],
  ) {
    this.nodes = Array.from({ length: cfg.nodes }, (_, i) => nodeLayout(cfg.cluster, i + 1));
    this.probers = new NodeProbers({
      script: cfg.proberScript,
      cgroupDir: cfg.cgroupDir,
      nodeDir: cfg.paths.nodeDir,
      log,
    });
    this.daemons = new DaemonSupervisor({
      cluster: cfg.cluster,
      cgroupDir: cfg.cgroupDir,
      runDir: cfg.paths.dir,
      nodeDir: cfg.paths.nodeDir,
      probers: this.probers,
      log,
      onChange: () => this.scheduleSync(),
      onReady: (node, comp) => this.step(`${comp.name} on ${node.name} is ready`),
    });
    this.podHost = {
      cluster: cfg.cluster,
      paths: cfg.paths,
      cgroupDir: cfg.cgroupDir,
      probers: this.probers,
      log,
      services: () => this.services,
      ...(cfg.keep === undefined ? {} : { keep: cfg.keep }),
      ...(cfg.cni === undefined ? {} : { cni: cfg.cni }),
      ...(cfg.serviceAccountToken === undefined ? {} : { serviceAccountToken: cfg.serviceAccountToken }),
      onChange: () => this.scheduleSync(),
      onSandboxLost: (pod) =>
        void this.exclusive(async () => {
          await this.deletePod(pod);
          await this.createPod(pod.desired).catch((err: unknown) =>
            this.log.error({ err }, 'cannot recreate pod'),
          );
          await this.syncNow();
        }),
      progress: (m) => this.step(m),
      isStopping: () => this.stopping,
    };
  }

  private step(message: string, extra: Record<string, unknown> = {}): void {
    this.log.info({ progress: true, ...extra }, message);
    this.progress.emit('step', message);
  }

  /** Builds the nodes and the fabric, starts node daemons, then applies the manifests. */
  async start(): Promise<void> {
    this.step(`creating ${this.nodes.length} nodes joined by a fabric link`);
    for (const node of this.nodes) {
      createCgroup(join(this.cfg.cgroupDir, node.podsCgroup));
      createCgroup(join(this.cfg.cgroupDir, node.systemCgroup));
      // The primary CNI's config, as its installer writes it on a real node; the node agent adds itself.
      if (this.cfg.cni !== undefined) writeNodeCni(this.cfg.cni(node), node);
    }
    await createFabric(this.cfg.cluster);
    await this.cfg.onFabric?.();
    for (const node of this.nodes) await createNode(this.cfg.cluster, node);
    await routeNodes(this.cfg.cluster, this.nodes);
    for (const node of this.nodes) this.probers.start(node);
    for (const comp of this.nodeComponents.filter((c) => c.cluster === true))
      this.daemons.start(this.nodes[0]!, comp);
    for (const node of this.nodes) {
      for (const comp of this.nodeComponents.filter((c) => c.cluster !== true))
        this.daemons.start(node, comp);
    }
    if (this.cfg.cni !== undefined) await this.awaitCniPlugin(this.cfg.cni);
    await this.exclusive(() => this.reload());
    this.phase = 'running';
    this.scheduleSync();
    this.tokenTimer = setInterval(() => {
      for (const pod of this.pods.values())
        pod
          .writeToken()
          .catch((err: unknown) => this.log.error({ err, pod: pod.key }, 'cannot refresh the pod token'));
    }, TOKEN_REFRESH_MS);
    this.tokenTimer.unref();
  }

  /**
   * Holds pod starts until every node's conflist chains Ambit's plugin (the node agent inserts it at its
   * first sync), as a node is tainted not-ready for pods until its CNI is: otherwise the first pods
   * would start through the primary network alone, enrolled only later from the API view.
   */
  private async awaitCniPlugin(cni: (node: NodeLayout) => NodeCni): Promise<void> {
    const missing = (): NodeLayout[] =>
      this.nodes.filter((n) => {
        try {
          return !readNodeNetwork(cni(n).confDir).chained.some((p) => p.type === AMBIT_CNI_TYPE);
        } catch {
          return true;
        }
      });
    if (missing().length === 0) return;
    this.step('waiting for the node agents to insert the Ambit CNI plugin');
    const deadline = Date.now() + CNI_READY_WAIT_MS;
    while (!this.stopping && Date.now() < deadline) {
      if (missing().length === 0) return;
      await sleep(100);
    }
    const left = missing();
    if (left.length > 0)
      this.log.warn(
        { nodes: left.map((n) => n.name) },
        'the node agents have not inserted the Ambit CNI plugin yet; starting pods without it (they are enrolled from the API view)',
      );
  }

  /** Runs one change at a time; reconciliation steps never interleave. */
  private exclusive(fn: () => Promise<void>): Promise<void> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch((err: unknown) => this.log.error({ err }, 'reconcile step failed'));
    return this.queue;
  }

  /** How manifests are parsed here (what the API's writes are validated with). */
  parseOptions(): { requireCommand: true; nodeNames: string[] } {
    return { requireCommand: true, nodeNames: this.nodes.map((n) => n.name) };
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
    const effective = toManifests(mergeReload(this.declared, loaded.manifests, loaded.issues));
    this.declared = effective;
    const w = withControllerObjects(effective, this.cfg.controllerObjects?.() ?? [], this.parseOptions());
    for (const issue of w.issues) {
      this.log[issue.severity === 'error' ? 'error' : 'warn'](
        { file: issue.file, line: issue.line, path: issue.path, object: issue.object },
        `controller object: ${formatIssue(issue)}`,
      );
    }
    this.controllerKeys = w.inEffect;
    this.manifests = w.manifests;
    this.issues = [...loaded.issues, ...w.issues];
    this.generation++;
    // The API has the namespaces (and below, each pod) before any pod starts, as in a cluster: the
    // node agent's CNI step looks them up there.
    this.publish([...this.pods.values()].map((p) => p.state()));
    await this.reconcilePods(w.manifests);
    await this.syncNow();
  }

  private async reconcilePods(m: Manifests): Promise<void> {
    const desired = desiredPods(m);
    const wanted = new Map(desired.map((d) => [`${d.namespace}/${d.name}`, d]));
    const toStop = [...this.pods.values()].filter(
      (pod) => wanted.get(pod.key)?.specHash !== pod.desired.specHash,
    );
    await Promise.all(toStop.map((p) => this.deletePod(p)));
    for (const d of desired) {
      const key = `${d.namespace}/${d.name}`;
      if (this.pods.has(key)) continue;
      try {
        await this.createPod(d);
      } catch (err) {
        this.log.error({ err, pod: key }, 'cannot create pod; retrying in 5s');
        this.progress.emit('error', `cannot create pod ${key}: ${(err as Error).message}; retrying in 5s`);
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
    // A hostNetwork pod has its node's addresses (host 0: outside the pod range, never allocated).
    const host = d.spec.hostNetwork ? 0 : allocate(used, POD_HOST_MIN, POD_HOST_MAX);
    if (host === undefined)
      throw new AmbitError(ErrorCode.IPAM_EXHAUSTED, `node ${node.name} has no free pod address`);
    const { ip4, ip6 } = d.spec.hostNetwork ? { ip4: node.ip4, ip6: node.ip6 } : podAddresses(node, host);
    const pod = new LocalPod(d, node, host, ip4, ip6, this.podHost);
    this.pods.set(pod.key, pod);
    this.publish([...this.pods.values()].map((p) => p.state()));
    this.step(`starting pod ${pod.key} on ${node.name} (${ip4}, ${ip6})`, { pod: pod.key, node: node.name });
    await pod.start();
  }

  private async deletePod(pod: LocalPod): Promise<void> {
    if (this.pods.get(pod.key) !== pod) return;
    await pod.delete();
    this.pods.delete(pod.key);
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
    const podStates = [...this.pods.values()].map((p) => p.state());
    if (m !== undefined) {
      this.vips.retain(new Set(m.services.map((s) => objectKey(s))));
      this.services = m.services.map((svc) => {
        const key = objectKey(svc);
        const { vips, problem } = this.vips.vipsFor({
          key,
          ...(svc.clusterIP === undefined ? {} : { clusterIP: svc.clusterIP }),
          ipFamilies: svc.ipFamilies,
        });
        if (problem !== undefined) this.log.error({ service: key, clusterIP: svc.clusterIP }, problem);
        return buildService(svc, vips, podStates);
      });
    }
    const rules = nftServiceRules(this.services);
    if (rules !== this.appliedNft) {
      for (const node of this.nodes) await applyNft(node.netns, rules);
      this.appliedNft = rules;
    }
    for (const pod of this.pods.values()) pod.refreshHosts();
    this.publish(podStates);
  }

  private publish(pods: PodState[]): void {
    const m = this.manifests;
    const declared = (m?.namespaces ?? []).map((n) => ({ name: n.meta.name, labels: n.meta.labels }));
    const state: LocalState = {
      version: 1,
      cluster: this.cfg.cluster,
      manifests: this.cfg.manifests,
      daemonPid: process.pid,
      cgroupDir: this.cfg.cgroupDir,
      phase: this.phase,
      nodes: this.nodes,
      namespaces: declared,
      pods,
      services: this.services,
      daemons: this.daemons.states(),
      issues: this.issues,
      generation: this.generation,
      updatedAt: new Date().toISOString(),
    };
    writeState(this.cfg.paths.state, state);
    const builtin = BUILTIN_NAMESPACES.filter((n) => !declared.some((d) => d.name === n)).map((name) => ({
      name,
      labels: {},
    }));
    this.cfg.publishApi(
      apiObjects({
        namespaces: [...builtin, ...declared],
        nodes: this.nodes,
        pods,
        services: this.services,
        config: m?.kept ?? [],
        deployments: m?.deployments ?? [],
        serviceAccounts: m?.serviceAccounts ?? [],
      }),
      this.controllerKeys,
    );
    if (
      this.phase === 'running' &&
      !this.readyAnnounced &&
      pods.every((p) => p.ready || p.phase === 'Succeeded') &&
      this.daemons.allReady &&
      (m === undefined || (pendingWaypoints(m).length === 0 && unavailableDeployments(m, pods).length === 0))
    ) {
      this.readyAnnounced = true;
      this.log.info({ pods: pods.length }, `all ${pods.length} pods are ready`);
      this.progress.emit('ready', `all ${pods.length} pods are ready`);
    }
  }

  /** The explicit node cleanup of every node component (after stop(): a stopped daemon never cleans up). */
  async uninstallNodes(): Promise<void> {
    for (const node of this.nodes)
      for (const comp of this.nodeComponents.filter((c) => c.cluster !== true && c.uninstall !== undefined))
        await this.daemons.uninstall(node, comp);
  }

  /** Stops every pod and node daemon, gracefully, in parallel. */
  async stop(): Promise<void> {
    this.phase = 'stopping';
    clearInterval(this.tokenTimer);
    this.daemons.freeze();
    await this.queue.catch(() => undefined);
    this.stopping = true;
    this.step('stopping pods');
    await Promise.all([...this.pods.values()].map((pod) => pod.stopProcesses()));
    await this.daemons.stop();
    this.probers.stop();
  }
}

/** Issues name files relative to the manifests folder (or the folder of a single manifest file). */
export function manifestDisplayBase(manifests: string): string {
  try {
    return statSync(manifests).isDirectory() ? manifests : dirname(manifests);
  } catch {
    return dirname(manifests);
  }
}
