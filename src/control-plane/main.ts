import { systemClock } from '../clock.js';
import { CONTROL_PLANE_CALLS } from '../cluster/daemon-calls.js';
import { KubeClusterSource } from '../cluster/source-kube.js';
import { describeError } from '../errors.js';
import { KubeClient } from '../kube/client.js';
import { kubeTarget } from '../kube/kubeconfig.js';
import { KubeTokenReviewer } from '../kube/token-review.js';
import { createRootLogger } from '../telemetry/logger.js';
import { AMBIT_VERSION } from '../version.js';
import { startControlPlane } from './app.js';
import { CaRootPublisher } from './ca-root-publisher.js';
import { parseControlPlaneConfig } from './config.js';
import { StatusWriter } from './status-writer.js';
import { WaypointApplier } from './waypoint-applier.js';

const controller = new AbortController();
process.once('SIGTERM', () => controller.abort());
process.once('SIGINT', () => controller.abort());
try {
  const cfg = parseControlPlaneConfig(process.argv.slice(2));
  const log = createRootLogger({ name: 'ambit-control-plane', level: cfg.logLevel });
  const client = new KubeClient(kubeTarget(cfg.kube), CONTROL_PLANE_CALLS);
  const statusWriter = new StatusWriter(client, log.child({ component: 'status' }));
  // The CA's trust bundle as the ConfigMap ambit-ca-root-cert in every namespace (node pods, waypoints).
  const caRoots = new CaRootPublisher(client, log.child({ component: 'ca-root' }));
  caRoots.run(controller.signal);
  const cp = await startControlPlane(
    cfg,
    new KubeClusterSource(client),
    new KubeTokenReviewer(client),
    log,
    systemClock,
    statusWriter,
    caRoots,
  );
  // The waypoint controller: each waypoint Gateway's ServiceAccount, Deployment and Service.
  new WaypointApplier(
    client,
    { ...cfg.waypoints, trustDomain: cfg.trustDomain, version: AMBIT_VERSION },
    log.child({ component: 'waypoints' }),
  ).run(controller.signal);
  if (!controller.signal.aborted)
    await new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve()));
  statusWriter.close();
  await cp.stop();
} catch (err) {
  process.stderr.write(
    `${JSON.stringify({ level: 'fatal', msg: describeError(err), code: (err as { code?: string }).code })}\n`,
  );
  process.exitCode = 1;
}
process.exit();
