import { describeError } from '../errors.js';
import { createRootLogger } from '../telemetry/logger.js';
import { runControlPlane } from './app.js';
import { parseControlPlaneConfig } from './config.js';

const controller = new AbortController();
process.once('SIGTERM', () => controller.abort());
process.once('SIGINT', () => controller.abort());
try {
  const cfg = parseControlPlaneConfig(process.argv.slice(2));
  await runControlPlane(
    cfg,
    createRootLogger({ name: 'ambit-control-plane', level: cfg.logLevel }),
    controller.signal,
  );
} catch (err) {
  process.stderr.write(
    `${JSON.stringify({ level: 'fatal', msg: describeError(err), code: (err as { code?: string }).code })}\n`,
  );
  process.exitCode = 1;
}
process.exit();
