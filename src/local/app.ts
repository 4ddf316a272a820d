import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, realpathSync, renameSync, watch, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONTROL_PLANE_CALLS } from '../cluster/daemon-calls.js';
import { TRUST_BUNDLE } from '../identity/ca.js';
import { issueServiceAccountToken, reviewServiceAccountToken } from '../identity/service-account-token.js';
import { writtenResources } from '../kube/api-calls.js';
import { ensureBpffs } from '../os/bpffs.js';
import { createCgroup } from '../os/cgroup.js';
import { createRootLogger } from '../telemetry/logger.js';
import { LocalCluster, manifestDisplayBase, type NodeComponent, TOKEN_REFRESH_MS } from './cluster.js';
import { type NodeCni, nodeCni } from './cni-runtime.js';
import type { LocalDaemonConfig } from './config.js';
import { controllerObjectProblems } from './controller-manifests.js';
import { LocalKubeApi } from './kube-api/local-api.js';
import { ManifestWriter } from './kube-api/manifest-writer.js';
import {
  type ClusterPaths,
  clusterBpfDir,
  clusterCgroupDir,
  clusterPaths,
  FABRIC_V4,
  fabricNetns,
  type NodeLayout,
  nodeLayout,
} from './layout.js';
import { ProgressChannel } from './progress.js';
import { teardownCluster } from './teardown.js';

const here = dirname(fileURLToPath(import.meta.url));

/** The node agents' ServiceAccount (the DaemonSet's pods run as it) and the pod each node's agent is. */
const NODE_SERVICE_ACCOUNT = { namespace: 'ambit-system', name: 'ambit-node' };

/**
 * Each node's credential: a projected ServiceAccount token of its agent's pod (ambit-system/ambit-node-<node>,
 * bound to that node), as the kubelet writes it into a DaemonSet pod. The control plane reviews it with
 * the API (TokenReview) and takes the node from the review. Rewritten well before it expires.
 */
async function writeNodeTokens(
  paths: ClusterPaths,
  nodes: readonly NodeLayout[],
  key: Uint8Array,
  uids: Map<string, string>,
): Promise<void> {
  for (const node of nodes) {
    const uid = uids.get(node.name) ?? randomUUID();
    uids.set(node.name, uid);
    const token = await issueServiceAccountToken(
      key,
      {
        namespace: NODE_SERVICE_ACCOUNT.namespace,
        serviceAccount: NODE_SERVICE_ACCOUNT.name,
        pod: `ambit-node-${node.name}`,
        podUid: uid,
        node: node.name,
      },
      TOKEN_TTL_SECONDS,
      Math.floor(Date.now() / 1000),
    );
    mkdirSync(paths.nodeDir(node.name), { recursive: true });
    const file = join(paths.nodeDir(node.name), 'token');
    writeFileSync(`${file}.tmp`, `${token}\n`, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }
}

/**
 * The key the local cluster signs ServiceAccount tokens with, as an API server's service-account
 * signing key: it stays in this process (the API's TokenReview checks tokens; nobody else needs it).
 */
function issueServiceAccountKey(): { key: Uint8Array } {
  return { key: new Uint8Array(randomBytes(32)) };
}

/** Projected tokens live 12 hours (the kubelet's default for a bound token is an hour to a day). */
const TOKEN_TTL_SECONDS = 12 * 3600;

/** Composition root of the local daemon: builds the cluster, watches the manifests, tears down on SIGTERM. */
export async function runLocalDaemon(cfg: LocalDaemonConfig): Promise<void> {
  const paths = clusterPaths(cfg.runRoot, cfg.cluster);
  mkdirSync(paths.dir, { recursive: true });
  const log = createRootLogger({ name: 'ambit-local', level: cfg.logLevel, file: paths.daemonLog });
  const progress = new ProgressChannel(paths.progress);
  writeFileSync(paths.lock, `${process.pid}\n`);
  const cgroupDir = clusterCgroupDir(cfg.cgroupRoot, cfg.cluster);
  const control = join(cgroupDir, 'control');
  createCgroup(control);
  writeFileSync(join(control, 'cgroup.procs'), String(process.pid));

  // bpffs must be mounted in the host's mount namespace, where every node agent pins.
  await ensureBpffs(cfg.bpfRoot);
  const bpfDir = clusterBpfDir(cfg.bpfRoot, cfg.cluster);
  const agentMain = join(here, '..', 'node-agent', 'main.js');
  const proxyMain = join(here, '..', 'node-proxy', 'main.js');
  const cni = (node: NodeLayout): NodeCni => nodeCni(paths.nodeDir(node.name));
  // The node agent's readiness claim, which the node proxy's readiness requires (src/node/agent-ready.ts).
  const agentReadyFile = (node: NodeLayout): string => join(paths.nodeDir(node.name), 'agent-ready.json');
  // Node credentials: what projected ServiceAccount tokens are for node agents in a cluster.
  const caDir = join(paths.dir, 'ca');
  const saKey = issueServiceAccountKey();
  const nodes = Array.from({ length: cfg.nodes }, (_, i) => nodeLayout(cfg.cluster, i + 1));
  const nodeUids = new Map<string, string>();
  await writeNodeTokens(paths, nodes, saKey.key, nodeUids);
  setInterval(
    () =>
      void writeNodeTokens(paths, nodes, saKey.key, nodeUids).catch((err: unknown) =>
        log.error({ err }, 'cannot refresh the node tokens'),
      ),
    TOKEN_REFRESH_MS,
  ).unref();
  // The Kubernetes API the daemons (and kubectl) read the cluster from, with a kubeconfig per reader.
  const api = new LocalKubeApi({
    dir: join(paths.dir, 'kube'),
    cluster: cfg.cluster,
    fabricAddress: FABRIC_V4,
    log,
    containerLog: (ns, pod, c) => paths.containerLog(ns, pod, c),
    reviewToken: (token, audiences) =>
      reviewServiceAccountToken(saKey.key, token, audiences, Math.floor(Date.now() / 1000)),
  });
  await api.start();
  // The control plane is the controller of the waypoint Gateways and the routes: it writes their
  // status, and applies each waypoint's objects (what its ClusterRole allows in a cluster).
  const controlPlaneKubeconfig = api.daemonKubeconfig('control-plane', {
    writesStatus: true,
    writes: writtenResources(CONTROL_PLANE_CALLS),
  });
  const agentKubeconfig = new Map(nodes.map((n) => [n.name, api.daemonKubeconfig(`node-agent-${n.name}`)]));
  const controlPlane = `${FABRIC_V4}:15012`;
  // The node's CNI folders, as the DaemonSet mounts /opt/cni/bin, /etc/cni/net.d and /var/run/ambit.
  const agentCniFlags = (node: NodeLayout): string[] => [
    '--cni-socket',
    cni(node).socket,
    '--cni-bin-dir',
    cni(node).binDir,
    '--cni-conf-dir',
    cni(node).confDir,
  ];
  const components: NodeComponent[] = [
    {
      name: 'control-plane',
      cluster: true,
      readiness: { port: 15014, path: '/ready', host: FABRIC_V4 },
      argv: () => [
        process.execPath,
        join(here, '..', 'control-plane', 'main.js'),
        '--ca-dir',
        caDir,
        '--node-service-account',
        `${NODE_SERVICE_ACCOUNT.namespace}/${NODE_SERVICE_ACCOUNT.name}`,
        '--kubeconfig',
        controlPlaneKubeconfig,
        ...(cfg.certTtl === undefined ? [] : ['--cert-ttl', cfg.certTtl]),
        // Waypoint pods reach it on the fabric; they run this build with Node (pods have no images)
        // and read their token and trust bundle where the local kubelet puts them.
        '--waypoint-control-plane',
        controlPlane,
        '--waypoint-command',
        process.execPath,
        '--waypoint-command',
        join(here, '..', 'l7-waypoint', 'main.js'),
        '--waypoint-env',
        `AMBIT_TOKEN_FILE=${join(paths.dir, 'pods', '$(POD_NAMESPACE)', '$(POD_NAME)', 'token')}`,
        '--waypoint-env',
        `AMBIT_CA_BUNDLE=${join(caDir, TRUST_BUNDLE)}`,
        '--waypoint-env',
        `AMBIT_LOG_LEVEL=${cfg.logLevel}`,
        '--log-level',
        cfg.logLevel,
      ],
    },
    {
      name: 'node-agent',
      // The node cleanup `ambit uninstall` runs: pins, links, nftables, the conflist entry, the plugin.
      uninstall: (node) => [
        process.execPath,
        agentMain,
        '--uninstall',
        '--bpf-dir',
        join(bpfDir, node.name),
        ...agentCniFlags(node),
        '--log-level',
        cfg.logLevel,
      ],
      argv: (node) => [
        process.execPath,
        agentMain,
        '--node',
        node.name,
        '--cgroup-root',
        cfg.cgroupRoot,
        '--pods-cgroup',
        // The node's kubepods.slice: local pods are laid out as the kubelet's systemd driver lays them out.
        join(cgroupDir, node.podsCgroup),
        '--bpf-dir',
        join(bpfDir, node.name),
        '--proxy-ip4',
        node.proxy4,
        '--proxy-ip6',
        node.proxy6,
        '--kubeconfig',
        agentKubeconfig.get(node.name) ?? '',
        ...agentCniFlags(node),
        '--status-file',
        join(paths.nodeDir(node.name), 'enrollment.json'),
        '--ready-file',
        agentReadyFile(node),
        '--log-level',
        cfg.logLevel,
      ],
    },
    {
      name: 'node-proxy',
      readiness: { port: 15021, path: '/healthz/ready' },
      argv: (node) => [
        process.execPath,
        proxyMain,
        '--node',
        node.name,
        '--outbound-ip',
        node.proxy4,
        '--outbound-ip',
        node.proxy6,
        '--bpf-dir',
        join(bpfDir, node.name),
        '--control-plane',
        controlPlane,
        '--ca-bundle',
        join(caDir, TRUST_BUNDLE),
        '--token-file',
        join(paths.nodeDir(node.name), 'token'),
        // Readiness as in the DaemonSet: the agent's links attached and first view reconciled, too.
        '--agent-ready-file',
        agentReadyFile(node),
        '--log-level',
        cfg.logLevel,
      ],
    },
  ];
  const cluster = new LocalCluster(
    {
      cluster: cfg.cluster,
      manifests: cfg.manifests,
      nodes: cfg.nodes,
      paths,
      cgroupDir,
      proberScript: join(here, 'prober-main.js'),
      // The installation (dist/ and node_modules/, where Node itself is) and the Node binary.
      keep: [realpathSync(join(here, '..', '..')), dirname(realpathSync(process.execPath))],
      cni,
      publishApi: (objects, controllerObjects) => api.publish(objects, controllerObjects),
      onFabric: () => api.listenInNetns(fabricNetns(cfg.cluster), join(here, 'netns-listen-main.js')),
      controllerObjects: () => api.controllerObjects.all(),
      serviceAccountToken: (claims) =>
        issueServiceAccountToken(saKey.key, claims, TOKEN_TTL_SECONDS, Math.floor(Date.now() / 1000)),
    },
    log,
    progress,
    components,
  );

  api.setWriter(
    new ManifestWriter({
      manifests: cfg.manifests,
      displayBase: manifestDisplayBase(cfg.manifests),
      parseOptions: () => cluster.parseOptions(),
      store: api.store,
      reload: () => cluster.requestReload(),
      managedBy: (resource, object) => {
        if (resource.kind === 'Pod') {
          const owner = ((object.metadata as { ownerReferences?: { kind?: string; name?: string }[] })
            .ownerReferences ?? [])[0];
          if (owner !== undefined)
            return `this pod is made by ${owner.kind} ${owner.name}: scale or change the ${owner.kind} instead`;
        }
        return undefined;
      },
    }),
    {
      validate: (object) => controllerObjectProblems(object, cluster.parseOptions()),
      reload: () => cluster.requestReload(),
    },
  );

  let shuttingDown = false;
  const shutdown = async (code: number): Promise<never> => {
    if (shuttingDown) return new Promise(() => undefined);
    shuttingDown = true;
    log.info('shutting down the local cluster');
    progress.emit('step', 'shutting down the local cluster');
    try {
      await cluster.stop();
    } catch (err) {
      log.error({ err }, 'stopping pods failed; removing them by force');
    }
    // The daemons stopped with SIGTERM, which never uninstalls: the explicit node cleanup comes now.
    await cluster.uninstallNodes().catch((err: unknown) => log.error({ err }, 'node cleanup failed'));
    // Leave the cluster cgroup first: teardown kills everything still in it.
    writeFileSync(join(cfg.cgroupRoot, 'cgroup.procs'), String(process.pid));
    try {
      const report = await teardownCluster({
        cluster: cfg.cluster,
        clusterCgroup: cgroupDir,
        runDir: paths.dir,
        bpfDir: clusterBpfDir(cfg.bpfRoot, cfg.cluster),
        selfPid: process.pid,
      });
      // The run folder (and the progress channel in it) is gone now; the log's file is still open.
      log.info({ ...report, killed: report.killed.length }, 'local cluster removed');
    } catch (err) {
      // `ambit local down` tears down again after this process has gone, and reports what is left.
      log.error({ err }, 'teardown incomplete');
      process.exit(1);
    }
    process.exit(code);
  };
  process.on('SIGTERM', () => void shutdown(0));
  process.on('SIGINT', () => void shutdown(0));

  try {
    await cluster.start();
  } catch (err) {
    log.error({ err }, `local cluster failed to start: ${(err as Error).message}`);
    progress.emit('failed', `local cluster failed to start: ${(err as Error).message}`);
    await shutdown(1);
  }

  // The manifests folder is the source of truth: edits apply live, per object.
  const watched = existsSync(cfg.manifests) ? cfg.manifests : dirname(cfg.manifests);
  let timer: NodeJS.Timeout | undefined;
  watch(watched, { recursive: true }, () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      log.info({ manifests: cfg.manifests }, 'manifests changed; reconciling');
      void cluster.requestReload();
    }, 200);
  });
}
