import { execFile } from 'node:child_process';
import { AmbitError, ErrorCode } from '../errors.js';

/**
 * An HTTP request to a port on the loopback of a network namespace (where the mesh's admin endpoints
 * listen), made by a short Node process that enters it. Resolves to the body; rejects with `unreachable`
 * when nothing answers and with the body when the status is not 2xx.
 */
export function httpInNetns(
  netns: string,
  port: number,
  path: string,
  method: 'GET' | 'POST',
  unreachable: (why: string) => string,
): Promise<string> {
  const script = `fetch('http://127.0.0.1:${port}${path}', { method: '${method}' }).then(async (r) => { process.stdout.write(await r.text()); process.exitCode = r.ok ? 0 : 3; }, (e) => { process.stderr.write(e.cause?.message ?? e.message); process.exitCode = 1; })`;
  return new Promise((resolve, reject) => {
    execFile(
      'nsenter',
      [`--net=/run/netns/${netns}`, '--', process.execPath, '-e', script],
      { encoding: 'utf8', maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        if (err === null) resolve(stdout);
        else if (err.code === 3)
          reject(new AmbitError(ErrorCode.NOT_FOUND, `${method} ${path}: ${stdout.trim()}`));
        else reject(new AmbitError(ErrorCode.NOT_FOUND, unreachable(stderr.trim() || err.message)));
      },
    );
  });
}
