import { execFile } from 'node:child_process';
import { AmbitError, ErrorCode } from '../errors.js';

export interface RunOptions {
  /** Text written to the command's stdin. */
  readonly input?: string;
  /** Error codes (exit statuses) that are not failures, e.g. "already exists". */
  readonly okStderr?: RegExp;
  readonly timeoutMs?: number;
}

/**
 * Runs a system tool (ip, nft, mount, ...) and returns its stdout. A failure becomes an AmbitError
 * that names the command and carries the tool's own message.
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err === null) return resolve(stdout);
        if (opts.okStderr?.test(stderr)) return resolve(stdout);
        const code = (err as NodeJS.ErrnoException).code;
        const why =
          code === 'ENOENT'
            ? `${cmd} is not installed (run \`make deps\`)`
            : (stderr.trim() || err.message).split('\n').slice(0, 5).join('; ');
        reject(
          new AmbitError(ErrorCode.COMMAND_FAILED, `\`${[cmd, ...args].join(' ')}\` failed: ${why}`, {
            cause: err,
          }),
        );
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Runs `ip -n <netns> -batch -` with one command per line; one process for many changes. */
export function ipBatch(netns: string | undefined, lines: readonly string[]): Promise<string> {
  const args = netns === undefined ? ['-batch', '-'] : ['-n', netns, '-batch', '-'];
  return run('ip', args, { input: `${lines.join('\n')}\n` });
}

/** Runs a command inside a network namespace (`ip netns exec`). */
export function inNetns(
  netns: string,
  cmd: string,
  args: readonly string[],
  opts?: RunOptions,
): Promise<string> {
  return run('ip', ['netns', 'exec', netns, cmd, ...args], opts);
}
