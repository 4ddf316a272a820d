import { AmbitError, ErrorCode } from '../errors.js';

/**
 * Runs a node:util parseArgs call and turns its errors (unknown flag, missing value) into a usage
 * error that names the daemon, instead of a raw TypeError.
 */
export function parseFlags<T>(parse: () => T, daemon: string): T {
  try {
    return parse();
  } catch (err) {
    throw new AmbitError(ErrorCode.USAGE, `${daemon} configuration: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
