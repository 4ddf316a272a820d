import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Node.js 20 reached end of life in April 2026; Ambit runs on the 24 LTS line or newer. */
export const MIN_NODE_MAJOR = 24;

/**
 * True when this Node.js is new enough. Otherwise, when the checkout has its own Node (`make deps`
 * installs one into node_modules), runs the same command under it and exits with its status; else
 * says how to get one and exits 1. Daemons are started with `process.execPath`, so they run on the
 * same Node as the CLI.
 */
export function supportedRuntime(): boolean {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= MIN_NODE_MAJOR) return true;
  const here = dirname(fileURLToPath(import.meta.url));
  const local = join(here, '..', '..', 'node_modules', 'node', 'bin', 'node');
  if (existsSync(local) && realpathSync(local) !== realpathSync(process.execPath)) {
    const child = spawn(local, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
    // The terminal's Ctrl-C reaches both processes; a signal sent to this one is passed on.
    process.on('SIGINT', () => undefined);
    for (const sig of ['SIGTERM', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
    child.once('exit', (code, signal) =>
      process.exit(code ?? 128 + (signal === null ? 0 : constants.signals[signal])),
    );
    child.once('error', (err) => {
      process.stderr.write(`error: cannot run ${local}: ${err.message}\n`);
      process.exit(1);
    });
    return false;
  }
  process.stderr.write(
    `error: Ambit needs Node.js ${MIN_NODE_MAJOR} or newer; this is Node.js ${process.versions.node} (${process.execPath}).\n` +
      `  In a checkout, \`make deps\` installs Node.js ${MIN_NODE_MAJOR} into node_modules and \`npx ambit\` uses it;\n` +
      `  or install Node.js ${MIN_NODE_MAJOR} LTS (https://nodejs.org/en/download, or your distribution's nodejs package).\n`,
  );
  process.exitCode = 1;
  return false;
}
