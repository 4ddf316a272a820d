import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { CNI_CALL_PATH, type CniErrorBody, CniErrorCode, parseCniCall } from '../../api/cni.js';
import type { Logger } from '../../telemetry/logger.js';
import type { CniCalls } from './cni-calls.js';

const BODY_LIMIT = 1024 * 1024;

async function readBody(req: IncomingMessage): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > BODY_LIMIT) throw new Error(`request body over ${BODY_LIMIT} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A plain body with its length: the plugin reads no chunked encoding. */
function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': text.length }).end(text);
}

/** The version an error is written in: the call's config's, when the body carries one. */
function versionOf(raw: unknown): string {
  const v = (raw as { config?: { cniVersion?: unknown } } | undefined)?.config?.cniVersion;
  return typeof v === 'string' && v !== '' ? v : FALLBACK_VERSION;
}

/** For a body that is not JSON at all (the plugin never sends one): the plugin's newest version. */
const FALLBACK_VERSION = '1.1.0';

function cniError(version: string, code: number, msg: string, details = ''): CniErrorBody {
  return { cniVersion: version, code, msg, details };
}

/**
 * The node agent's CNI endpoint, on a Unix socket: the plugin (ambit-cni) forwards every CNI call
 * here (see src/api/cni.ts). A failure is answered with a CNI error object, which the plugin prints.
 */
export function startCniServer(socketPath: string, calls: CniCalls, log: Logger): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== CNI_CALL_PATH)
      return reply(
        res,
        404,
        cniError(FALLBACK_VERSION, CniErrorCode.INVALID_CONFIG, `the agent serves POST ${CNI_CALL_PATH}`),
      );
    let raw: unknown;
    readBody(req)
      .then(async (text) => {
        try {
          raw = JSON.parse(text);
        } catch (err) {
          return reply(
            res,
            400,
            cniError(
              FALLBACK_VERSION,
              CniErrorCode.DECODE,
              'the CNI call is not JSON',
              (err as Error).message,
            ),
          );
        }
        const call = parseCniCall(raw);
        if (typeof call === 'string')
          return reply(
            res,
            400,
            cniError(versionOf(raw), CniErrorCode.INVALID_CONFIG, `bad CNI call: ${call}`),
          );
        const r = await calls.handle(call);
        return reply(res, r.status, r.body);
      })
      .catch((err: unknown) => {
        log.error({ err }, 'CNI call failed');
        reply(
          res,
          500,
          cniError(
            versionOf(raw),
            CniErrorCode.TRY_AGAIN_LATER,
            'the node agent failed the CNI call',
            (err as Error).message,
          ),
        );
      });
  });
  mkdirSync(dirname(socketPath), { recursive: true });
  if (existsSync(socketPath)) unlinkSync(socketPath);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve(server));
  });
}
