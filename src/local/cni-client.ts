import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { CNI_ADD_PATH, type CniAddRequest, type CniAddResponse } from '../api/cni.js';
import { AmbitError, ErrorCode } from '../errors.js';

/**
 * The CNI step of a pod start: asks the node agent to enroll the pod before its containers start,
 * waiting for the agent while it starts up (as a CNI plugin blocks pod creation).
 */
export async function cniAdd(
  socketPath: string,
  body: CniAddRequest,
  waitMs = 30_000,
): Promise<CniAddResponse> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await post(socketPath, body);
    } catch (err) {
      if (Date.now() > deadline) {
        throw new AmbitError(
          ErrorCode.PRECONDITION,
          `the node agent did not enroll the pod (${socketPath}): ${(err as Error).message}`,
          { cause: err },
        );
      }
      await sleep(200);
    }
  }
}

function post(socketPath: string, body: CniAddRequest): Promise<CniAddResponse> {
  return new Promise<CniAddResponse>((resolve, reject) => {
    const req = httpRequest(
      { socketPath, path: CNI_ADD_PATH, method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => {
          text += d.toString();
        });
        res.on('end', () => {
          if (res.statusCode === 200) resolve(JSON.parse(text) as CniAddResponse);
          else reject(new AmbitError(ErrorCode.COMMAND_FAILED, `CNI add: HTTP ${res.statusCode}: ${text}`));
        });
      },
    );
    req.once('error', reject);
    req.end(JSON.stringify(body));
  });
}
