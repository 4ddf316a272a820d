import { spawn } from 'node:child_process';
import { AmbitError, ErrorCode } from '../errors.js';

/** Which cluster kubectl talks to: its own flags, passed through (Ambit has no kubeconfig code of its own). */
export interface KubectlTarget {
  readonly kubeconfig?: string;
  readonly context?: string;
}

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
}

/** Runs kubectl; the seam the cluster commands are tested through. */
export interface KubectlRunner {
  /**
   * `capture`: stdout is returned (a query); otherwise kubectl's output goes to the user's terminal
   * as it comes (an apply, a rollout). stderr always goes to the terminal.
   */
  run(
    args: readonly string[],
    o?: { readonly stdin?: string; readonly capture?: boolean },
  ): Promise<KubectlResult>;
}

/** The kubectl arguments that pick the cluster, before the command's own. */
export function targetArgs(t: KubectlTarget): string[] {
  return [
    ...(t.kubeconfig === undefined ? [] : [`--kubeconfig=${t.kubeconfig}`]),
    ...(t.context === undefined ? [] : [`--context=${t.context}`]),
  ];
}

/** The real kubectl, a child process; a missing binary is said so, with how to get one. */
export function spawnKubectl(bin: string, target: KubectlTarget): KubectlRunner {
  return {
    run: (args, o = {}) =>
      new Promise((resolve, reject) => {
        const child = spawn(bin, [...targetArgs(target), ...args], {
          stdio: [
            o.stdin === undefined ? 'ignore' : 'pipe',
            o.capture === true ? 'pipe' : 'inherit',
            'inherit',
          ],
        });
        const out: Buffer[] = [];
        child.stdout?.on('data', (c: Buffer) => out.push(c));
        child.once('error', (err: NodeJS.ErrnoException) =>
          reject(
            err.code === 'ENOENT'
              ? new AmbitError(
                  ErrorCode.PRECONDITION,
                  `${bin} not found: the cluster commands run kubectl (install it, put it on PATH, or set AMBIT_KUBECTL)`,
                )
              : new AmbitError(ErrorCode.COMMAND_FAILED, `${bin}: ${err.message}`, { cause: err }),
          ),
        );
        child.once('close', (code) =>
          resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8') }),
        );
        if (o.stdin !== undefined) child.stdin?.end(o.stdin);
      }),
  };
}

/** Runs kubectl and throws when it fails (its own message is already on the terminal). */
export async function mustRun(
  k: KubectlRunner,
  args: readonly string[],
  o: { readonly stdin?: string; readonly capture?: boolean } = {},
): Promise<string> {
  const r = await k.run(args, o);
  if (r.code !== 0)
    throw new AmbitError(ErrorCode.COMMAND_FAILED, `kubectl ${args.join(' ')} exited with status ${r.code}`);
  return r.stdout;
}
