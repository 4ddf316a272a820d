import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createServingCredentials } from '../../identity/x509.js';
import { resourceOfKind } from '../../kube/api-resources.js';
import type { TokenReviewStatus } from '../../kube/token-review.js';
import type { Logger } from '../../telemetry/logger.js';
import { ApiStatusError } from './api-status.js';
import {
  ControllerObjects,
  ControllerObjectWriter,
  keptOutOfManifests,
  stripServerFields,
} from './controller-objects.js';
import { collectGarbage, dependentsOf, type PropagationPolicy, withoutOwner } from './garbage-collector.js';
import type { Json } from './selectors.js';
import { type ApiPrincipal, type ApiWriter, createApiHandler, type WriteRequest } from './server.js';
import { ApiStore, keyOf } from './store.js';

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

/** How the cluster runs kept objects: what they are checked with, and how it takes them again. */
export interface ControllerObjectHooks {
  /** Problems of an object as the cluster would run it; empty when it is valid. */
  readonly validate: (object: Json) => readonly string[];
  /** The cluster takes the kept objects again (and runs or stops their pods). */
  readonly reload: () => Promise<void>;
}

/** `Kind/namespace/name` (or `Kind/name`), as the cluster names the objects it publishes. */
function kindKey(o: Json): string {
  const m = (o.metadata ?? {}) as Json;
  const ns = String(m.namespace ?? '');
  return ns === '' ? `${String(o.kind)}/${String(m.name)}` : `${String(o.kind)}/${ns}/${String(m.name)}`;
}

/**
 * A kept object as the API serves it: its own metadata and spec, with what the cluster adds (a
 * Service's cluster IPs, a Deployment's status from its pods).
 */
export function servedControllerObject(kept: Json, published: Json): Json {
  const spec = kept.spec as Json | undefined;
  const pspec = (published.spec ?? {}) as Json;
  return {
    ...stripServerFields(kept),
    ...(spec === undefined
      ? {}
      : {
          spec:
            kept.kind === 'Service'
              ? {
                  ...spec,
                  ...(pspec.clusterIP === undefined ? {} : { clusterIP: pspec.clusterIP }),
                  ...(pspec.clusterIPs === undefined ? {} : { clusterIPs: pspec.clusterIPs }),
                }
              : spec,
        }),
    ...(published.status === undefined ? {} : { status: published.status }),
  };
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
  /** Objects controllers made through the API (controller-objects.ts), kept in the run folder. */
  readonly controllerObjects: ControllerObjects;
  private writer: ApiWriter | undefined;
  private controllerWriter: ControllerObjectWriter | undefined;
  private hooks: ControllerObjectHooks | undefined;
  /** The cluster has published once: owners can be looked up (the collector waits for it). */
  private published = false;
  private readonly principals = new Map<string, ApiPrincipal>();
  private https: HttpsServer | undefined;
  private readonly listeners: Server[] = [];
  private caPem = '';
  private port = 0;
  readonly adminKubeconfig: string;

  constructor(private readonly o: LocalApiOptions) {
    this.adminKubeconfig = join(o.dir, 'admin.kubeconfig');
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    this.controllerObjects = new ControllerObjects(join(o.dir, 'controller-objects.json'));
  }

  kubeconfigFor(principal: string): string {
    return join(this.o.dir, `${principal}.kubeconfig`);
  }

  /** Where writes go: kept objects (and new objects a controller makes) to the kept file, the rest to `w`. */
  setWriter(w: ApiWriter, hooks: ControllerObjectHooks): void {
    this.writer = w;
    this.hooks = hooks;
    this.controllerWriter = new ControllerObjectWriter({
      objects: this.controllerObjects,
      validate: hooks.validate,
      reload: hooks.reload,
      live: (req) => this.store.get(req.resource, req.namespace, req.name),
    });
  }

  /** Picks the writer of a request: see controller-objects.ts for the rule. */
  private route(req: WriteRequest): Promise<Json | undefined> {
    const writer = this.writerOrFail();
    const kept = this.controllerWriter;
    if (kept === undefined) return writer.write(req);
    if (this.controllerObjects.has(keyOf(req.resource, req.namespace, req.name))) return kept.write(req);
    let next: Json | undefined;
    try {
      next = req.mutate(undefined);
    } catch {
      return writer.write(req); // Not a create: the manifests' writer answers it (404, 409...).
    }
    if (!keptOutOfManifests(next, req.principal)) return writer.write(req);
    if (this.store.get(req.resource, req.namespace, req.name) !== undefined)
      return Promise.reject(
        new ApiStatusError(
          409,
          'Conflict',
          `${req.resource.kind} ${req.namespace === '' ? '' : `${req.namespace}/`}${req.name} is declared in the manifests: a controller cannot take it over (rename one of them)`,
        ),
      );
    return kept.write(req);
  }

  /**
   * Serves what the cluster runs (kept objects that are in effect, `controllerKeys`, in their kept
   * form), then collects garbage: kept objects whose owners are all gone are deleted.
   */
  publish(objects: readonly Json[], controllerKeys: ReadonlySet<string> = new Set()): void {
    const kept = new Map(
      this.controllerObjects
        .all()
        .filter((o) => controllerKeys.has(kindKey(o)))
        .map((o) => [kindKey(o), o]),
    );
    this.store.replaceAll(
      objects.map((o) => {
        const k = kept.get(kindKey(o));
        return k === undefined ? o : servedControllerObject(k, o);
      }),
    );
    this.published = true;
    this.collectGarbage();
  }

  /** The UID of the object a reference names now, undefined when there is none. */
  private ownerUid = (ref: { kind: string; name: string }, namespace: string): string | undefined => {
    const r = resourceOfKind(ref.kind);
    // A kind this API does not serve cannot be looked up: its references are taken as held.
    if (r === undefined) return 'unknown';
    const o = this.store.get(r, r.namespaced ? namespace : '', ref.name);
    return ((o?.metadata ?? {}) as Json).uid as string | undefined;
  };

  private collectGarbage(): void {
    if (!this.published || this.hooks === undefined) return;
    const dependents = this.controllerObjects.dependents();
    const decision = collectGarbage(dependents, (ref, ns) => {
      const uid = this.ownerUid(ref, ns);
      return uid === 'unknown' ? ref.uid : uid;
    });
    // What the namespace controller does: a kept object goes with its namespace (the CA root
    // ConfigMaps have no owner that would take them).
    const namespaces = resourceOfKind('Namespace');
    const homeless =
      namespaces === undefined
        ? []
        : dependents
            .filter((d) => d.namespace !== '' && this.store.get(namespaces, '', d.namespace) === undefined)
            .map((d) => d.key)
            .filter((k) => !decision.delete.includes(k));
    if (decision.delete.length === 0 && decision.strip.length === 0 && homeless.length === 0) return;
    this.o.log.info(
      { deleted: [...decision.delete, ...homeless], stripped: decision.strip.map((s) => s.key) },
      'garbage collector: removing objects whose owners or namespaces are gone',
    );
    this.controllerObjects.change([
      ...[...decision.delete, ...homeless].map((key) => ({ key, object: undefined })),
      ...decision.strip.map((s) => ({
        key: s.key,
        object: withoutOwner(this.controllerObjects.get(s.key)!, s.uids),
      })),
    ]);
    void this.hooks.reload();
  }

  /** `Orphan`: strips the references to the owner; `Foreground`: deletes its dependents (and theirs) first. */
  private async cascade(owner: Json, policy: PropagationPolicy, dryRun: boolean): Promise<void> {
    const uid = String(((owner.metadata ?? {}) as Json).uid ?? '');
    const all = this.controllerObjects.dependents();
    const direct = dependentsOf(uid, all);
    if (direct.length === 0 || dryRun || this.hooks === undefined) return;
    if (policy === 'Orphan') {
      this.controllerObjects.change(
        direct.map((d) => ({ key: d.key, object: withoutOwner(this.controllerObjects.get(d.key)!, [uid]) })),
      );
    } else {
      const doomed = new Set<string>();
      const uidOf = (key: string): string =>
        String(((this.controllerObjects.get(key)?.metadata ?? {}) as Json).uid ?? '');
      let frontier = direct;
      while (frontier.length > 0) {
        for (const d of frontier) doomed.add(d.key);
        frontier = frontier.flatMap((d) => dependentsOf(uidOf(d.key), all)).filter((d) => !doomed.has(d.key));
      }
      this.controllerObjects.change([...doomed].map((key) => ({ key, object: undefined })));
    }
    await this.hooks.reload();
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
      writer: { write: (req) => this.route(req) },
      cascade: (owner, policy, dryRun) => this.cascade(owner, policy, dryRun),
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
  principal(
    name: string,
    groups: readonly string[],
    canWrite: boolean,
    canWriteStatus = false,
    writes: readonly string[] = [],
  ): string {
    const token = randomBytes(32).toString('base64url');
    this.principals.set(token, { user: name, groups, canWrite, canWriteStatus, writes });
    writeFileSync(join(this.o.dir, 'tokens', name), `${token}\n`, { mode: 0o600 });
    return token;
  }

  /** A daemon's kubeconfig: the fabric address, its token file, the API's CA. */
  daemonKubeconfig(
    name: string,
    opts: { readonly writesStatus?: boolean; readonly writes?: readonly string[] } = {},
  ): string {
    this.principal(
      name,
      ['system:serviceaccounts', 'system:serviceaccounts:ambit-system'],
      false,
      opts.writesStatus === true,
      opts.writes ?? [],
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
