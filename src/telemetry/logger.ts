import pino from 'pino';
import type { LogLevel } from '../config/log-level.js';

export type Logger = pino.Logger;

export { LOG_LEVELS, type LogLevel } from '../config/log-level.js';

/**
 * The one root logger of a process: pino JSON, one line per event, written to stdout or a file.
 * Components take a child (`log.child({ component: 'inbound' })`); errors go under `err`.
 */
export function createRootLogger(opts: {
  name: string;
  level?: LogLevel;
  file?: string;
  sync?: boolean;
  /**
   * Asynchronous only: lines are gathered up to this many bytes and written together (one write per
   * batch instead of one per line), and at least every 200 ms.
   */
  bufferBytes?: number;
}): Logger {
  // Data-plane processes write asynchronously (an access line per connection must not cost a blocking
  // write on the hot path); lines still go out at once when the stream is idle, and are flushed on exit.
  const sync = opts.sync ?? true;
  const minLength = sync ? 0 : (opts.bufferBytes ?? 0);
  const destination =
    opts.file === undefined
      ? pino.destination({ dest: 1, sync, minLength })
      : pino.destination({ dest: opts.file, mkdir: true, sync, minLength });
  if (!sync) process.once('exit', () => destination.flushSync());
  if (minLength > 0) {
    setInterval(() => {
      try {
        destination.flush();
      } catch {
        // closed at exit
      }
    }, 200).unref();
  }
  return pino(
    {
      name: opts.name,
      level: opts.level ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
