import { describeError } from '../errors.js';
import { createRootLogger } from '../telemetry/logger.js';
import { startWaypoint } from './app.js';
import { parseWaypointConfig } from './config.js';

/**
 * The waypoint: the L7 proxy of the Services (or pods) that use one Gateway of class ambit-waypoint.
 * It runs in its own pods, rendered from the Gateway, and reads everything from its environment.
 */
const controller = new AbortController();
process.once('SIGTERM', () => controller.abort());
process.once('SIGINT', () => controller.abort());
try {
  const cfg = parseWaypointConfig(process.argv.slice(2));
  // The access log is asynchronous and batched: a line per request must not cost a write per line.
  const log = createRootLogger({
    name: 'ambit-waypoint',
    level: cfg.logLevel,
    sync: false,
    bufferBytes: 8 * 1024,
  });
  const waypoint = await startWaypoint(cfg, {}, log, controller.signal);
  if (waypoint !== undefined) {
    if (!controller.signal.aborted)
      await new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve()));
    await waypoint.stop();
  }
} catch (err) {
  process.stderr.write(
    `${JSON.stringify({ level: 'fatal', msg: describeError(err), code: (err as { code?: string }).code })}\n`,
  );
  process.exitCode = 1;
}
process.exit();
