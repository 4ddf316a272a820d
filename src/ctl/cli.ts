import { describeError, ErrorCode, hasCode } from '../errors.js';
import { AMBIT_VERSION } from '../version.js';
import { caCommand } from './ca-commands.js';
import { checkCommand } from './check.js';
import { helpFor, USAGE } from './help.js';
import { installCommand, namespaceCommand, uninstallCommand } from './install-commands.js';
import { localCommand } from './local-commands.js';
import { explainCommand, proxyConfigCommand } from './proxy-commands.js';
import { readSettings } from './settings.js';
import { waypointCommand } from './waypoint-commands.js';

async function main(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const help = helpFor(argv);
  if (help !== undefined) {
    process.stdout.write(`${help}\n`);
    return 0;
  }
  switch (cmd) {
    case 'local':
      return localCommand(rest, readSettings());
    case 'proxy-config':
      return proxyConfigCommand(rest, readSettings());
    case 'explain':
      return explainCommand(rest, readSettings());
    case 'waypoint':
      return waypointCommand(rest, readSettings());
    case 'install':
      return installCommand(rest, readSettings());
    case 'uninstall':
      return uninstallCommand(rest, readSettings());
    case 'namespace':
      return namespaceCommand(rest, readSettings());
    case 'check':
      return checkCommand(rest, readSettings());
    case 'ca':
      return caCommand(rest, readSettings());
    case 'version':
    case '--version':
      // `--runtime` also names the Node.js it runs on (the CLI hands over to Node 24 when started older).
      process.stdout.write(
        rest.includes('--runtime')
          ? `ambit ${AMBIT_VERSION} (Node.js ${process.version}, ${process.execPath})\n`
          : `ambit ${AMBIT_VERSION}\n`,
      );
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return cmd === undefined ? 2 : 0;
    default:
      process.stderr.write(`error: unknown command "${cmd}"\n\n${USAGE}\n`);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`error: ${describeError(err)}\n`);
  process.exitCode = hasCode(err, ErrorCode.USAGE) ? 2 : 1;
}
