import { NODE_AGENT_CALLS, NODE_AGENT_KINDS } from '../cluster/daemon-calls.js';
import { KubeClusterSource } from '../cluster/source-kube.js';
import { describeError } from '../errors.js';
import { KubeApiError, KubeClient } from '../kube/client.js';
import { kubeTarget } from '../kube/kubeconfig.js';
import { withdrawAgentReady } from '../node/agent-ready.js';
import { createRootLogger } from '../telemetry/logger.js';
import { runAgent, uninstallNode } from './app.js';
import { parseAgentConfig } from './config.js';

/**
 * The node agent: manages eBPF redirection and enrollment (one of the DaemonSet pod's two containers;
 * the node proxy is the other, so that restarting the agent never touches a connection).
 */
const controller = new AbortController();
process.once('SIGTERM', () => controller.abort());
process.once('SIGINT', () => controller.abort());
try {
  const cfg = parseAgentConfig(process.argv.slice(2));
  // First thing: a claim on the host path may be a dead agent's (SIGKILL, OOM) and must not make the
  // pod ready while this one starts; this agent claims again once it is ready itself.
  if (!cfg.uninstall && cfg.readyFile !== undefined) withdrawAgentReady(cfg.readyFile);
  const log = createRootLogger({ name: 'ambit-node-agent', level: cfg.logLevel });
  if (cfg.uninstall) {
    await uninstallNode(cfg, log);
    process.exit();
  }
  // The agent reads only what its node needs: its own pods (fieldSelector=spec.nodeName) and namespaces.
  const client = new KubeClient(kubeTarget(cfg.kube), NODE_AGENT_CALLS);
  const source = new KubeClusterSource(client, { kinds: NODE_AGENT_KINDS, node: cfg.node });
  // A CNI call may come before the watch has the pod: one GET of the pod (or namespace) it names.
  const kubeGet = (path: string): Promise<unknown> =>
    client
      .json('GET', path)
      .catch((err: unknown) =>
        err instanceof KubeApiError && err.status === 404 ? undefined : Promise.reject(err),
      );
  await runAgent(cfg, source, kubeGet, log, controller.signal);
} catch (err) {
  process.stderr.write(
    `${JSON.stringify({ level: 'fatal', msg: describeError(err), code: (err as { code?: string }).code })}\n`,
  );
  process.exitCode = 1;
}
process.exit();
