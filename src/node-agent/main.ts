import { describeError } from '../errors.js';
import { profileUntilExit } from '../telemetry/cpu-profile.js';
import { createRootLogger } from '../telemetry/logger.js';
import { runAgent } from './agent-app.js';
import { parseAgentConfig } from './agent-config.js';
import { runProxy } from './proxy-app.js';
import { parseProxyConfig } from './proxy-config.js';

/**
 * The node's two daemons, one image: `main.js agent` manages eBPF redirection and enrollment,
 * `main.js proxy` carries the traffic. They run as two containers of the DaemonSet pod (two processes
 * in local mode), so that restarting the agent never touches a connection.
 */
const [role, ...argv] = process.argv.slice(2);
const controller = new AbortController();
process.once('SIGTERM', () => controller.abort());
process.once('SIGINT', () => controller.abort());

try {
  if (role === 'agent') {
    const cfg = parseAgentConfig(argv);
    await runAgent(
      cfg,
      createRootLogger({ name: 'ambit-node-agent', level: cfg.logLevel }),
      controller.signal,
    );
  } else if (role === 'proxy') {
    const cfg = parseProxyConfig(argv);
    if (cfg.cpuProfile !== undefined) profileUntilExit(cfg.cpuProfile);
    await runProxy(
      cfg,
      createRootLogger({ name: 'ambit-node-proxy', level: cfg.logLevel }),
      controller.signal,
    );
  } else {
    process.stderr.write('usage: node-agent/main.js agent|proxy [flags]\n');
    process.exitCode = 2;
  }
} catch (err) {
  process.stderr.write(
    `${JSON.stringify({ level: 'fatal', msg: describeError(err), code: (err as { code?: string }).code })}\n`,
  );
  process.exitCode = 1;
}
process.exit();
