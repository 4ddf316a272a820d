import pino from 'pino';

export type Logger = pino.Logger;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * The one root logger of a process: pino JSON, one line per event, written to stdout or a file.
 * Components take a child (`log.child({ component: 'inbound' })`); errors go under `err`.
 */
export function createRootLogger(opts: { name: string; level?: LogLevel; file?: string }): Logger {
  const destination =
    opts.file === undefined
      ? pino.destination({ dest: 1, sync: true })
      : pino.destination({ dest: opts.file, mkdir: true, sync: true });
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
