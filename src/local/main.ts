import { describeError } from '../errors.js';
import { runLocalDaemon } from './app.js';
import { parseLocalDaemonConfig } from './config.js';

/**
 * The local cluster daemon: started detached by `ambit local up`, stopped by `ambit local down`
 * (SIGTERM). Flags only; the CLI has already resolved configuration and validated the manifests.
 */
try {
  await runLocalDaemon(parseLocalDaemonConfig(process.argv.slice(2)));
} catch (err) {
  process.stderr.write(`ambit local daemon: ${describeError(err)}\n`);
  process.exit(2);
}
