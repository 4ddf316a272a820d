import { existsSync, writeFileSync } from 'node:fs';
import { Libbpf } from '../bpf/libbpf.js';
import type { ClusterSource } from '../cluster/source.js';
import { ClusterStore } from '../cluster/store.js';
import { AmbitError, ErrorCode } from '../errors.js';
import { failClosedNamespaces } from '../mesh/labels.js';
import { ensureBpffs } from '../os/bpffs.js';
import type { Logger } from '../telemetry/logger.js';
import {
  installPluginBinary,
  keepConfEntry,
  uninstallCni,
  writeEnrolledNamespaces,
} from './cni/cni-install.js';
import type { AgentConfig } from './config.js';
import { readNodeCgroupFacts, resolveNodeCgroups } from './node-cgroups.js';
import { podCgroupResolver } from './pod-cgroups.js';
import { AgentReadiness } from './readiness.js';
import { CniCalls } from './redirection/cni-calls.js';
import { cniSandboxesFile, SandboxRecord } from './redirection/cni-sandboxes.js';
import { startCniServer } from './redirection/cni-server.js';
import { desiredEnrollments, type Excluded } from './redirection/enrollment.js';
import type { ExclusionContext } from './redirection/enrollment-exclusion.js';
import { syncEnrollment } from './redirection/enrollment-sync.js';
import {
  applyInboundRules,
  inboundRules,
  installCaptureRouting,
  removeInboundCapture,
} from './redirection/inbound-capture.js';
import { type KubeGet, podLookup } from './redirection/pod-lookup.js';
import { RedirectPrograms, uninstallRedirect } from './redirection/redirect-programs.js';

/**
 * The node cleanup (`--uninstall`, run by `ambit uninstall` and local mode's teardown): removes what the
 * agent installed on the node and needs nothing of the cluster. The conflist entry goes first: from
 * then on the runtime no longer calls the plugin removed next.
 */
export async function uninstallNode(cfg: AgentConfig, log: Logger): Promise<void> {
  const cni = uninstallCni({ binDir: cfg.cniBinDir, confDir: cfg.cniConfDir, socket: cfg.cniSocket });
  uninstallRedirect(cfg.bpfDir);
  await removeInboundCapture();
  log.info({ bpfDir: cfg.bpfDir, ...cni }, 'CNI plugin, redirection and inbound capture removed');
}

/**
 * Composition root of the node agent: installs (or adopts) the redirection programs on the node's
 * pods cgroup, installs the CNI plugin and its conflist entry, enrolls pods before they start (the
 * plugin's calls on the CNI socket), and keeps the enrolled set in line with the cluster, which it
 * learns from a ClusterSource filtered to its own node's pods and the namespaces. It carries no
 * traffic: killing it leaves redirection and every connection in place. Only `--uninstall` removes
 * what it installed; a SIGTERM never does (a rolling update must not open a window without the mesh).
 */
export async function runAgent(
  cfg: AgentConfig,
  source: ClusterSource,
  kubeGet: KubeGet,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  if (cfg.uninstall) return uninstallNode(cfg, log);
  // Before anything is installed: a host or a flag that would put redirection in the wrong place stops here.
  const node = resolveNodeCgroups(cfg, readNodeCgroupFacts());
  log.info(
    {
      cgroupRoot: node.cgroupRoot,
      podsCgroup: node.podsCgroup,
      layout: node.layout,
      ownCgroup: node.ownCgroup,
      from: node.discoveredFrom,
    },
    'kubelet cgroup layout',
  );
  const exclusion: ExclusionContext = {
    node: cfg.node,
    podsCgroup: node.podsCgroup,
    ...(node.ownCgroup === undefined ? {} : { ownCgroup: node.ownCgroup }),
  };
  if (!existsSync(cfg.cniPlugin))
    throw new AmbitError(
      ErrorCode.PRECONDITION,
      `the CNI plugin binary ${cfg.cniPlugin} does not exist (build it with \`make cni\`, or set --cni-plugin)`,
    );
  // As a pod (cluster mode) a bpffs of its own would be private to the agent's container: refused.
  await ensureBpffs(cfg.bpfDir, { mayMount: cfg.podUid === undefined });
  const programs = new RedirectPrograms(
    new Libbpf(),
    {
      bpfDir: cfg.bpfDir,
      objectPath: cfg.bpfObject,
      podsCgroup: node.podsCgroup,
      cgroupRoot: node.cgroupRoot,
      proxy: { ip4: cfg.proxyIp4, ip6: cfg.proxyIp6, port: cfg.outboundPort },
    },
    log.child({ component: 'redirection' }),
  );
  const report = programs.install();
  log.info(
    { ...report, attached: programs.attached(), podsCgroup: node.podsCgroup },
    'redirection installed',
  );
  // The readiness contract with the node proxy (readiness.ts): claimed once the first cluster view is
  // reconciled without error with every link attached, refreshed on a heartbeat while that holds,
  // withdrawn on shutdown. What the last reconcile (sync below) ended with:
  let reconcileError: string | undefined = 'no cluster view reconciled yet';
  const readiness = new AgentReadiness(
    {
      file: cfg.readyFile,
      node: cfg.node,
      podsCgroup: node.podsCgroup,
      attached: () => programs.attached(),
      enrolled: () => programs.enrolled().size,
      reconcileError: () => reconcileError,
      log: log.child({ component: 'readiness' }),
    },
    signal,
  );
  const cgroups = podCgroupResolver(node.layout);

  // Inbound capture: plaintext to enrolled pods goes through the proxy (PeerAuthentication, policy).
  const capture = { port: cfg.inboundPort };
  await installCaptureRouting();
  const ipsById = new Map<bigint, readonly string[]>();
  let appliedRules = '';
  const syncCapture = async (): Promise<void> => {
    const ids = [...programs.enrolled().keys()];
    const rules = inboundRules(capture, ids.flatMap((id) => ipsById.get(id) ?? []).sort());
    if (rules === appliedRules) return;
    await applyInboundRules(rules);
    appliedRules = rules;
  };
  await syncCapture();

  // Names of enrolled pods by cgroup id, for the status file (`ambit local status` shows it).
  const names = new Map<bigint, string>();
  // Pods the labels put in the mesh that loop safety keeps out, from the last sync.
  let excluded: readonly Excluded[] = [];
  const writeStatus = (): void => {
    if (cfg.statusFile === undefined) return;
    const enrolled = [...programs.enrolled().keys()].map((id) => ({
      pod: names.get(id) ?? 'unknown',
      cgroupId: id.toString(),
    }));
    writeFileSync(
      cfg.statusFile,
      `${JSON.stringify({ node: cfg.node, updatedAt: new Date().toISOString(), enrolled, excluded }, null, 2)}\n`,
    );
  };
  const enrollLog = log.child({ component: 'enrollment' });
  const store = new ClusterStore();
  // Which sandbox enrolled each pod, kept beside the socket so that a restarted agent still knows.
  const sandboxes = new SandboxRecord(cniSandboxesFile(cfg.cniSocket));
  const calls = new CniCalls({
    sandboxes,
    exclusion,
    cgroups,
    target: programs,
    lookup: podLookup(store, kubeGet, enrollLog),
    onEnrolled: (id, pod, ips) => {
      names.set(id, pod);
      ipsById.set(id, ips);
      writeStatus();
      // The pod's containers start after this call returns: capture must be in place before.
      return syncCapture();
    },
    onUnenrolled: (id) => {
      names.delete(id);
      ipsById.delete(id);
      writeStatus();
      return syncCapture();
    },
    log: log.child({ component: 'cni' }),
  });
  const server = await startCniServer(cfg.cniSocket, calls, enrollLog);
  signal.addEventListener('abort', () => server.close());
  const plugin = installPluginBinary(cfg.cniPlugin, cfg.cniBinDir);
  log.info({ plugin, socket: cfg.cniSocket }, 'CNI plugin installed');
  // What the plugin reads when it cannot reach this agent (see ambit-cni.c): rewritten on every change.
  let namespacesText: string | undefined;
  const writeNamespaces = (): void => {
    const meshNamespaces = failClosedNamespaces(store.namespaces.values(), store.pods.values());
    namespacesText = writeEnrolledNamespaces(cfg.cniSocket, meshNamespaces, namespacesText);
  };
  const sync = (): void => {
    try {
      writeNamespaces();
    } catch (err) {
      enrollLog.error({ err }, 'cannot write the enrolled-namespaces file; will retry on the next change');
    }
    try {
      const pods = [...store.pods.values()].filter((p) => p.node === cfg.node);
      const out: Excluded[] = [];
      const desired = desiredEnrollments(
        pods,
        (ns) => store.namespaces.get(ns)?.labels,
        exclusion,
        cgroups,
        out,
      );
      excluded = out.sort((a, b) => a.pod.localeCompare(b.pod));
      const r = syncEnrollment(
        programs,
        {
          desired,
          knownPods: pods.flatMap((p) => cgroups.resolve(p) ?? []),
          podsCgroup: node.podsCgroup,
        },
        enrollLog,
      );
      try {
        sandboxes.retain(programs.enrolled().keys());
      } catch (err) {
        enrollLog.warn({ err }, 'cannot persist the sandbox record');
      }
      for (const [id, pod] of r.names) names.set(id, pod);
      for (const [id, ips] of r.ips) ipsById.set(id, ips);
      writeStatus();
      void syncCapture().catch((err: unknown) => enrollLog.error({ err }, 'updating inbound capture failed'));
      reconcileError = undefined;
    } catch (err) {
      reconcileError = `enrollment sync failed: ${(err as Error).message}`;
      enrollLog.error({ err }, 'enrollment sync failed; will retry on the next change');
    }
  };
  const clusterLog = log.child({ component: 'cluster', source: source.description });
  let synced = false;
  readiness.tracking(source).watch(
    {
      onEvents: (events) => {
        store.apply(events);
        if (synced) sync();
      },
      onSynced: () => {
        const first = !synced;
        synced = true;
        clusterLog.info({ pods: store.pods.size, namespaces: store.namespaces.size }, 'cluster view synced');
        sync();
        // The plugin goes into the conflist only once the enrolled-namespaces file is right, so that
        // the first pod it is called for is decided on this view, also when the agent then goes away.
        if (first)
          keepConfEntry(
            cfg.cniConfDir,
            { socket: cfg.cniSocket, excludeNamespaces: cfg.cniExcludeNamespaces },
            log.child({ component: 'cni' }),
            signal,
          );
      },
      onError: (message) => clusterLog.warn(message),
    },
    signal,
  );
  // A periodic reconcile besides the watch: whatever drifted (a map entry removed behind the agent's
  // back, a DEL it should not have acted on) heals within one interval.
  const resync = setInterval(() => {
    if (synced) sync();
  }, cfg.resyncSeconds * 1000);
  signal.addEventListener('abort', () => clearInterval(resync));
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve());
  });
  programs.close();
}
