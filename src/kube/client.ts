import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { Agent, request } from 'node:https';
import { AmbitError, ErrorCode } from '../errors.js';
import type { KubeCallTable } from './api-calls.js';
import type { KubeTarget } from './kubeconfig.js';

/** How long a request (not a watch) may take, as client-go's default timeout for a list. */
export const REQUEST_TIMEOUT_MS = 60_000;

/** An API server's answer that was not a success, with its `Status` reason when it sent one. */
export class KubeApiError extends AmbitError {
  constructor(
    readonly status: number,
    /** `Status.reason` (NotFound, Forbidden, Expired, ...), or '' when the body was not a Status. */
    readonly reason: string,
    message: string,
  ) {
    super(ErrorCode.KUBE_API, message);
    this.name = 'KubeApiError';
  }
}

interface Credentials {
  readonly agent: Agent;
  readonly token?: string;
}

/** A file's content, re-read only when its modification time or size changes. */
class WatchedFile {
  private stamp = '';
  private data: Buffer | undefined;
  constructor(readonly path: string) {}
  read(): { data: Buffer; changed: boolean } {
    const st = statSync(this.path);
    const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    if (stamp === this.stamp && this.data !== undefined) return { data: this.data, changed: false };
    this.data = readFileSync(this.path);
    this.stamp = stamp;
    return { data: this.data, changed: true };
  }
}

/**
 * A small Kubernetes API client over node:https: JSON requests and watch streams. It re-reads a token
 * file and a CA file when they change on disk (projected tokens and CA bundles rotate), and rebuilds its
 * connection pool when the CA does. Retrying is the caller's business (see reflector.ts).
 */
export class KubeClient {
  private readonly caFile: WatchedFile | undefined;
  private readonly tokenFile: WatchedFile | undefined;
  private agent: Agent | undefined;
  private token: string | undefined;

  constructor(
    readonly target: KubeTarget,
    /** The calls this client may make (a daemon's declared table); any other is refused before it is sent. */
    private readonly calls?: Pick<KubeCallTable, 'check'>,
  ) {
    this.caFile = target.caFile === undefined ? undefined : new WatchedFile(target.caFile);
    this.tokenFile = target.tokenFile === undefined ? undefined : new WatchedFile(target.tokenFile);
    this.token = target.token;
  }

  private credentials(): Credentials {
    let ca = this.target.caData;
    let caChanged = false;
    if (this.caFile !== undefined) {
      const r = this.caFile.read();
      ca = r.data;
      caChanged = r.changed;
    }
    if (this.agent === undefined || caChanged) {
      this.agent?.destroy();
      this.agent = new Agent({
        keepAlive: true,
        // Over HTTP/1.1 every watch holds a connection for its whole life: a cap on sockets would leave
        // the watches past it queued for ever (client-go multiplexes them over one HTTP/2 connection).
        maxSockets: Number.POSITIVE_INFINITY,
        ...(ca === undefined ? {} : { ca }),
        ...(this.target.certData === undefined ? {} : { cert: this.target.certData }),
        ...(this.target.keyData === undefined ? {} : { key: this.target.keyData }),
        rejectUnauthorized: !this.target.insecureSkipTlsVerify,
      });
    }
    if (this.tokenFile !== undefined) this.token = this.tokenFile.read().data.toString('utf8').trim();
    return { agent: this.agent, ...(this.token === undefined ? {} : { token: this.token }) };
  }

  private open(
    method: string,
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
    contentType = 'application/json',
  ): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      let creds: Credentials;
      try {
        this.calls?.check(method, path);
      } catch (err) {
        reject(err);
        return;
      }
      try {
        creds = this.credentials();
      } catch (err) {
        reject(new AmbitError(ErrorCode.KUBE_API, `${this.target.origin}: ${(err as Error).message}`));
        return;
      }
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request(`${this.target.server}${path}`, {
        method,
        agent: creds.agent,
        headers: {
          accept: 'application/json',
          'user-agent': 'ambit',
          ...(creds.token === undefined ? {} : { authorization: `Bearer ${creds.token}` }),
          ...(payload === undefined ? {} : { 'content-type': contentType, 'content-length': payload.length }),
        },
        ...(signal === undefined ? {} : { signal }),
      });
      req.once('response', resolve);
      req.once('error', (err) =>
        reject(
          signal?.aborted === true
            ? err
            : new AmbitError(ErrorCode.KUBE_API, `${method} ${this.target.server}${path}: ${err.message}`, {
                cause: err,
              }),
        ),
      );
      req.end(payload);
    });
  }

  /** A request whose answer is one JSON document; a status other than 2xx throws KubeApiError. */
  async json(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
    contentType?: string,
  ): Promise<unknown> {
    const res = await this.open(method, path, body, signal, contentType);
    const text = await readAll(res);
    if (res.statusCode === undefined || res.statusCode >= 300)
      throw apiError(method, path, res.statusCode ?? 0, text);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new KubeApiError(res.statusCode, '', `${method} ${path}: the answer is not JSON`);
    }
  }

  /** A streaming GET (a watch): resolves to the response once its status is 200. */
  async stream(path: string, signal: AbortSignal): Promise<IncomingMessage> {
    const res = await this.open('GET', path, undefined, signal);
    if (res.statusCode !== 200) throw apiError('GET', path, res.statusCode ?? 0, await readAll(res));
    return res;
  }

  close(): void {
    this.agent?.destroy();
  }
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.once('error', reject);
  });
}

/** The error for a non-2xx answer, from its `Status` body when there is one. */
export function apiError(method: string, path: string, status: number, text: string): KubeApiError {
  let reason = '';
  let message = text.trim().slice(0, 300);
  try {
    const s = JSON.parse(text) as { kind?: unknown; reason?: unknown; message?: unknown };
    if (s.kind === 'Status') {
      reason = typeof s.reason === 'string' ? s.reason : '';
      if (typeof s.message === 'string') message = s.message;
    }
  } catch {
    // Not JSON (a proxy's HTML page, an empty body): the text stands.
  }
  return new KubeApiError(
    status,
    reason,
    `${method} ${path}: ${status}${reason === '' ? '' : ` ${reason}`}: ${message}`,
  );
}
