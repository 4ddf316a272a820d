import { describeError } from '../errors.js';
import { profileUntilExit } from '../telemetry/cpu-profile.js';
import { createRootLogger } from '../telemetry/logger.js';
import { startNodeProxy } from './app.js';
import { parseNodeProxyConfig } from './config.js';
import { ebpfRedirection } from './redirection-ebpf.js';

/**
 * The node proxy: carries the traffic of the node's enrolled pods (one of the DaemonSet pod's two
 * containers; the node agent is the other, so that restarting the agent never touches a connection).
 */
const controller = new AbortController();
process.once('SIGTERM', () => controller.abort());
process.once('SIGINT', () => controller.abort());
try {
  const cfg = parseNodeProxyConfig(process.argv.slice(2));
  if (cfg.cpuProfile !== undefined) profileUntilExit(cfg.cpuProfile);
  const log = createRootLogger({ name: 'ambit-node-proxy', level: cfg.logLevel });
  const proxy = await startNodeProxy(
    cfg,
    { redirection: ebpfRedirection(cfg.bpfDir, log) },
    log,
    controller.signal,
  );
  if (proxy !== undefined) {
    if (!controller.signal.aborted)
      await new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve()));
    await proxy.stop();
  }
} catch (err) {
  process.stderr.write(
    `${JSON.stringify({ level: 'fatal', msg: describeError(err), code: (err as { code?: string }).code })}\n`,
  );
  process.exitCode = 1;
}
process.exit();
