import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createServingCredentials } from '../../identity/x509.js';
import type { TokenReviewStatus } from '../../kube/token-review.js';
import type { Logger } from '../../telemetry/logger.js';
import { type ApiPrincipal, type ApiWriter, createApiHandler } from './server.js';
import { ApiStore } from './store.js';

/** Where the cluster's daemons reach the API: the fabric address, on the API server's usual port. */
export const FABRIC_API_PORT = 6443;

export interface LocalApiOptions {
  /** Folder for the API's CA, tokens and kubeconfigs. */
  readonly dir: string;
  readonly cluster: string;
  /** Addresses the serving certificate names besides loopback (the fabric's). */
  readonly fabricAddress: string;
  readonly log: Logger;
  /** Where a container's output is (for `kubectl logs`). */
  readonly containerLog?: (namespace: string, pod: string, container: string) => string;
  /** `POST tokenreviews`, when the cluster issues tokens that daemons review. */
  readonly reviewToken?: (token: string, audiences: readonly string[]) => Promise<TokenReviewStatus>;
}

export interface LocalApiPaths {
  /** kubeconfig for the user (kubectl, `ambit local kubeconfig`), over loopback. */
  readonly adminKubeconfig: string;
  /** kubeconfig of a daemon (`control-plane`, `node-agent-<node>`), over the fabric. */
  kubeconfigFor(principal: string): string;
}

/**
 * Local mode's Kubernetes API server, put together: a CA and serving certificate of its own, a bearer
 * token per principal (the user, the control plane, each node agent), kubeconfig files, and listeners on
 * loopback (for the user) and on the fabric (for the daemons), all feeding one HTTPS server.
 */
export class LocalKubeApi implements LocalApiPaths {
  readonly store = new ApiStore();
  private writer: ApiWriter | undefined;
  private readonly principals = new Map<string, ApiPrincipal>();
  private https: HttpsServer | undefined;
  private readonly listeners: Server[] = [];
  private caPem = '';
  private port = 0;
  readonly adminKubeconfig: string;

  constructor(private readonly o: LocalApiOptions) {
    this.adminKubeconfig = join(o.dir, 'admin.kubeconfig');
  }

  kubeconfigFor(principal: string): string {
    return join(this.o.dir, `${principal}.kubeconfig`);
  }

  setWriter(w: ApiWriter): void {
    this.writer = w;
  }

  /** Creates the certificates, starts the loopback listener and writes the user's kubeconfig. */
  async start(): Promise<void> {
    mkdirSync(join(this.o.dir, 'tokens'), { recursive: true, mode: 0o700 });
    const creds = await createServingCredentials({
      org: `ambit local ${this.o.cluster} API`,
      dns: [
        'localhost',
        'kubernetes',
        'kubernetes.default',
        'kubernetes.default.svc',
        'kubernetes.default.svc.cluster.local',
      ],
      ips: ['127.0.0.1', '::1', this.o.fabricAddress],
      days: 3650,
    });
    this.caPem = creds.caPem;
    writeFileSync(join(this.o.dir, 'ca.crt'), this.caPem);
    // The writer arrives after the cluster exists; the handler asks for it on each write.
    const handler = createApiHandler({
      store: this.store,
      writer: { write: (req) => this.writerOrFail().write(req) },
      authenticate: (token) => (token === undefined ? undefined : this.principals.get(token)),
      ...(this.o.reviewToken === undefined ? {} : { reviewToken: this.o.reviewToken }),
      ...(this.o.containerLog === undefined ? {} : { containerLog: this.o.containerLog }),
      log: this.o.log.child({ component: 'kube-api' }),
    });
    this.https = createHttpsServer({ key: creds.keyPem, cert: creds.certPem + creds.caPem }, handler);
    this.https.on('tlsClientError', () => undefined); // A client that gives up mid-handshake is its business.
    const loopback = createServer((s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      loopback.once('error', reject);
      loopback.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
    });
    this.listeners.push(loopback);
    this.port = (loopback.address() as { port: number }).port;
    const admin = this.principal('admin', ['system:masters'], true);
    this.writeKubeconfig(this.adminKubeconfig, `https://127.0.0.1:${this.port}`, { token: admin });
  }

  private writerOrFail(): ApiWriter {
    if (this.writer === undefined) throw new Error('the cluster is still starting: try again in a moment');
    return this.writer;
  }

  private accept(socket: Socket): void {
    this.https?.emit('connection', socket);
  }

  /** A bearer token for a principal; written to tokens/<name>. */
  principal(name: string, groups: readonly string[], canWrite: boolean, canWriteStatus = false): string {
    const token = randomBytes(32).toString('base64url');
    this.principals.set(token, { user: name, groups, canWrite, canWriteStatus });
    writeFileSync(join(this.o.dir, 'tokens', name), `${token}\n`, { mode: 0o600 });
    return token;
  }

  /** A daemon's kubeconfig: the fabric address, its token file, the API's CA. */
  daemonKubeconfig(name: string, opts: { readonly writesStatus?: boolean } = {}): string {
    this.principal(
      name,
      ['system:serviceaccounts', 'system:serviceaccounts:ambit-system'],
      false,
      opts.writesStatus === true,
    );
    const file = this.kubeconfigFor(name);
    this.writeKubeconfig(file, `https://${this.o.fabricAddress}:${FABRIC_API_PORT}`, {
      tokenFile: join(this.o.dir, 'tokens', name),
    });
    return file;
  }

  private writeKubeconfig(file: string, server: string, user: { token?: string; tokenFile?: string }): void {
    const name = `ambit-local-${this.o.cluster}`;
    const doc = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name,
          cluster: { server, 'certificate-authority-data': Buffer.from(this.caPem).toString('base64') },
        },
      ],
      users: [{ name, user }],
      contexts: [{ name, context: { cluster: name, user: name, namespace: 'default' } }],
      'current-context': name,
    };
    writeFileSync(file, stringify(doc), { mode: 0o600 });
  }

  /** Listens on the fabric too, from inside its network namespace (see netns-listen-main.ts). */
  async listenInNetns(netns: string, script: string): Promise<void> {
    const child = spawn(
      'nsenter',
      [`--net=/run/netns/${netns}`, process.execPath, script, this.o.fabricAddress, String(FABRIC_API_PORT)],
      {
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      },
    );
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const server = await new Promise<Server>((resolve, reject) => {
      child.once('message', (_m, handle) => resolve(handle as Server));
      child.once('error', (err) =>
        reject(new Error(`cannot listen on the fabric (${netns}): ${err.message}`)),
      );
      child.once('exit', (code) =>
        reject(new Error(`cannot listen on the fabric (${netns}): exit ${code}: ${stderr.trim()}`)),
      );
    });
    server.on('connection', (s: Socket) => this.accept(s));
    this.listeners.push(server);
  }

  close(): void {
    for (const l of this.listeners) l.close();
    this.https?.close();
  }
}
