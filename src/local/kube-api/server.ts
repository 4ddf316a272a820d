import type { IncomingMessage, ServerResponse } from 'node:http';
import YAML from 'yaml';
import { API_RESOURCES, type ApiResource, apiVersionOf } from '../../kube/api-resources.js';
import type { TokenReviewStatus } from '../../kube/token-review.js';
import type { Logger } from '../../telemetry/logger.js';
import { ApiStatusError, metaOf, notFound, status } from './api-status.js';
import { discovery, groupsOf } from './discovery.js';
import { type PropagationPolicy, propagationPolicy } from './garbage-collector.js';
import { openApiDocuments } from './openapi.js';
import { applyPatch, PatchError } from './patch.js';
import { createReader, scaleOf, type Target } from './reads.js';
import type { Json } from './selectors.js';
import {
  ApplyConflictError,
  defaultManager,
  type ManagedFieldsEntry,
  recordUpdate,
  serverSideApply,
} from './server-side-apply.js';
import type { ApiStore } from './store.js';

export { ApiStatusError } from './api-status.js';

/**
 * Local mode's Kubernetes API server: the subset of the API that the mesh's daemons and kubectl use,
 * answered from the ApiStore (reads and watches) and the ApiWriter (writes go to the manifests folder,
 * the cluster's source of truth, or for objects controllers make to the run folder, and come back
 * through the store). Server-side apply and managedFields: server-side-apply.ts; deletes with a
 * propagation policy: garbage-collector.ts. Errors are `Status` objects.
 */

export interface WriteRequest {
  readonly verb: 'create' | 'update' | 'patch' | 'delete';
  /** `?dryRun=All`: validate and answer, write nothing. */
  readonly dryRun?: boolean;
  readonly resource: ApiResource;
  readonly namespace: string;
  readonly name: string;
  /** The object as it should be, from its current manifest form (undefined: it does not exist); undefined deletes it. */
  readonly mutate: (current: Json | undefined) => Json | undefined;
  /** Who asked (where an object a daemon creates is kept: controller-objects.ts). */
  readonly principal?: ApiPrincipal;
}

export interface ApiWriter {
  /** Writes the change to the manifests and waits until the cluster has it; resolves to the stored object. */
  write(req: WriteRequest): Promise<Json | undefined>;
}

export interface ApiPrincipal {
  readonly user: string;
  readonly groups: readonly string[];
  readonly canWrite: boolean;
  /** Resources (`deployments.apps`, `services`) it may write although `canWrite` is false (its RBAC). */
  readonly writes?: readonly string[];
  /** May write the `status` of Gateway API objects (the control plane, as their controller). */
  readonly canWriteStatus?: boolean;
}

export interface ApiServerDeps {
  readonly store: ApiStore;
  readonly writer?: ApiWriter;
  readonly authenticate: (token: string | undefined) => ApiPrincipal | undefined;
  /** `POST /apis/authentication.k8s.io/v1/tokenreviews`: the review's status for a token. */
  readonly reviewToken?: (token: string, audiences: readonly string[]) => Promise<TokenReviewStatus>;
  readonly log: Logger;
  /** How often a watch that asked for them gets a BOOKMARK. */
  readonly bookmarkMs?: number;
  /** Where a container's output is (`kubectl logs`), when the cluster keeps it. */
  readonly containerLog?: (namespace: string, pod: string, container: string) => string;
  /**
   * Before an object is deleted with `Orphan` or `Foreground` propagation: strips the references to
   * it from its dependents, or deletes them (the garbage collector's part of a delete).
   */
  readonly cascade?: (owner: Json, policy: PropagationPolicy, dryRun: boolean) => Promise<void>;
  /** The time managedFields are stamped with. */
  readonly now?: () => string;
}

/** The content types of a server-side apply (kubectl sends YAML's; JSON is YAML too). */
const APPLY_TYPES = new Set(['application/apply-patch+yaml', 'application/apply-patch+json']);

/** `deployments.apps`, `services`: how RBAC names a resource. */
export function rbacResource(r: ApiResource): string {
  return r.group === '' ? r.plural : `${r.plural}.${r.group}`;
}

/** `/api/v1/namespaces/ns/pods/name/sub` -> what it names; undefined for paths that are not resources. */
export function parseResourcePath(path: string): Target | 'tokenreviews' | undefined {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  let gv: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) {
    gv = parts[1]!;
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    gv = `${parts[1]}/${parts[2]}`;
    rest = parts.slice(3);
  } else return undefined;
  if (gv === 'authentication.k8s.io/v1' && rest.length === 1 && rest[0] === 'tokenreviews')
    return 'tokenreviews';
  const inGroup = API_RESOURCES.filter((r) => apiVersionOf(r) === gv);
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const resource = inGroup.find((r) => r.plural === rest[0]);
  if (resource === undefined) return undefined;
  if (resource.kind === 'Namespace' && namespace === undefined && rest.length >= 2)
    return { resource, name: rest[1]!, ...(rest[2] === undefined ? {} : { subresource: rest[2] }) };
  return {
    resource,
    ...(namespace === undefined ? {} : { namespace }),
    ...(rest[1] === undefined ? {} : { name: rest[1] }),
    ...(rest[2] === undefined ? {} : { subresource: rest[2] }),
  };
}

function readBody(req: IncomingMessage, limit = 3 * 1024 * 1024, yaml = false): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(
          new ApiStatusError(413, 'RequestEntityTooLarge', `the request body is larger than ${limit} bytes`),
        );
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.once('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(text === '' ? undefined : yaml ? YAML.parse(text) : JSON.parse(text));
      } catch (err) {
        reject(
          new ApiStatusError(
            400,
            'BadRequest',
            `the request body is not ${yaml ? 'YAML' : 'JSON'}: ${(err as Error).message}`,
          ),
        );
      }
    });
    req.once('error', reject);
  });
}

export function createApiHandler(d: ApiServerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const groups = groupsOf();
  const openapi = openApiDocuments();
  const send = (res: ServerResponse, code: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  /**
   * The `status` subresource of Gateway API objects: what their controller (the control plane) reports.
   * It is kept in the store over the object and never written into the manifests, which hold specs.
   */
  const writeStatus = async (
    req: IncomingMessage,
    res: ServerResponse,
    t: Target & { name: string },
    who: ApiPrincipal,
    dryRun: boolean,
  ): Promise<void> => {
    if (t.resource.group !== 'gateway.networking.k8s.io')
      throw new ApiStatusError(
        405,
        'MethodNotAllowed',
        `local mode keeps the status of ${t.resource.plural} itself`,
      );
    if (who.canWriteStatus !== true && !who.canWrite)
      throw new ApiStatusError(
        403,
        'Forbidden',
        `${t.resource.plural}.${t.resource.group} "${t.name}" is forbidden: User "${who.user}" cannot ${req.method?.toLowerCase()} resource "${t.resource.plural}/status"`,
      );
    const body = (await readBody(req)) as Json | undefined;
    const ns = t.namespace ?? '';
    const current = d.store.get(t.resource, ns, t.name);
    if (current === undefined) throw notFound(t.resource, t.name);
    const next =
      req.method === 'PATCH'
        ? applyPatch(
            { status: current.status ?? {} },
            body,
            req.headers['content-type'] ?? 'application/json',
          )
        : (body ?? {});
    const nextStatus = (next.status ?? {}) as Json;
    if (dryRun) return send(res, 200, { ...current, status: nextStatus });
    send(res, 200, d.store.setStatus(t.resource, ns, t.name, nextStatus));
  };

  const now = d.now ?? (() => new Date().toISOString().replace(/\.\d+Z$/, 'Z'));

  /** Records who changed which fields (managedFields) once a write has landed. */
  const own = (t: Target & { name: string }, entries: readonly ManagedFieldsEntry[]): void =>
    d.store.setManagedFields(t.resource, t.namespace ?? '', t.name, entries as unknown as Json[]);
  const managedOf = (t: Target, name: string): ManagedFieldsEntry[] =>
    d.store.managedFields(t.resource, t.namespace ?? '', name) as unknown as ManagedFieldsEntry[];

  const write = async (
    req: IncomingMessage,
    res: ServerResponse,
    t: Target,
    who: ApiPrincipal,
    q: URLSearchParams,
  ): Promise<void> => {
    const dryRun = q.get('dryRun') === 'All';
    if (
      t.subresource === 'status' &&
      t.name !== undefined &&
      (req.method === 'PATCH' || req.method === 'PUT')
    )
      return writeStatus(req, res, t as Target & { name: string }, who, dryRun);
    const allowed = who.canWrite || (who.writes ?? []).includes(rbacResource(t.resource));
    if (d.writer === undefined || !allowed || !t.resource.verbs.includes('create'))
      throw new ApiStatusError(
        403,
        'Forbidden',
        `${rbacResource(t.resource)} is forbidden: User "${who.user}" cannot ${req.method?.toLowerCase()} it${t.resource.verbs.includes('create') ? '' : ' (local mode maintains these objects itself)'}`,
      );
    const contentType = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim();
    const applying = req.method === 'PATCH' && APPLY_TYPES.has(contentType);
    const body = await readBody(req, undefined, applying);
    const method = req.method ?? '';
    const ns = t.namespace ?? '';
    const apiVersion = apiVersionOf(t.resource);
    const manager = q.get('fieldManager') ?? defaultManager(req.headers['user-agent']);
    if (method === 'POST') {
      if (t.name !== undefined)
        throw new ApiStatusError(405, 'MethodNotAllowed', 'POST goes to the collection');
      const obj = body as Json | undefined;
      const name = String(metaOf(obj).name ?? '');
      if (obj === undefined || name === '')
        throw new ApiStatusError(422, 'Invalid', 'metadata.name: Required value');
      if (obj.kind !== t.resource.kind)
        throw new ApiStatusError(
          400,
          'BadRequest',
          `the object's kind ${String(obj.kind)} is not ${t.resource.kind}`,
        );
      const given = metaOf(obj).namespace;
      if (t.resource.namespaced && given !== undefined && given !== ns)
        throw new ApiStatusError(
          400,
          'BadRequest',
          `the namespace of the object (${String(given)}) does not match the namespace of the request (${ns})`,
        );
      let made: Json | undefined;
      const stored = await d.writer.write({
        principal: who,
        dryRun,
        verb: 'create',
        resource: t.resource,
        namespace: ns,
        name,
        mutate: (cur) => {
          if (cur !== undefined)
            throw new ApiStatusError(409, 'AlreadyExists', `${t.resource.plural} "${name}" already exists`, {
              name,
              kind: t.resource.plural,
            });
          made = withNamespace(obj, t.resource.namespaced ? ns : undefined);
          return made;
        },
      });
      if (!dryRun && made !== undefined)
        own(
          { ...t, name },
          recordUpdate({ before: undefined, after: made, managed: [], manager, apiVersion, now: now() }),
        );
      // The object as written, even when the garbage collector has already taken it (as kube-apiserver answers).
      send(res, 201, dryRun ? stored : (d.store.get(t.resource, ns, name) ?? stored));
      return;
    }
    const name = t.name;
    if (name === undefined)
      throw new ApiStatusError(405, 'MethodNotAllowed', `${method} needs an object name`);
    if (method === 'DELETE') {
      const policy = propagationPolicy(body, q);
      if (typeof policy === 'object')
        throw new ApiStatusError(
          400,
          'BadRequest',
          `propagationPolicy ${policy.invalid} is not Background, Foreground or Orphan`,
        );
      const live = d.store.get(t.resource, ns, name);
      if (live === undefined) throw notFound(t.resource, name);
      const pre = ((body as Json | undefined)?.preconditions ?? {}) as Json;
      if (typeof pre.uid === 'string' && pre.uid !== metaOf(live).uid)
        throw new ApiStatusError(
          409,
          'Conflict',
          `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${String(metaOf(live).uid)}`,
        );
      if (policy !== 'Background') await d.cascade?.(live, policy, dryRun);
      await d.writer.write({
        principal: who,
        dryRun,
        verb: 'delete',
        resource: t.resource,
        namespace: ns,
        name,
        mutate: (cur) => {
          if (cur === undefined) throw notFound(t.resource, name);
          return undefined;
        },
      });
      send(res, 200, {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Success',
        details: { name, kind: t.resource.plural, uid: metaOf(live).uid },
      });
      return;
    }
    const scale = t.subresource === 'scale' && t.resource.kind === 'Deployment';
    if (t.subresource !== undefined && !scale)
      throw new ApiStatusError(
        405,
        'MethodNotAllowed',
        `the subresource ${t.subresource} cannot be written in local mode`,
      );
    if (applying) return apply(req, res, { ...t, name }, body, manager, q, who);
    let before: Json | undefined;
    let after: Json | undefined;
    const mutate = (cur: Json | undefined): Json => {
      if (cur === undefined) throw notFound(t.resource, name);
      before = cur;
      if (scale) {
        const current = scaleOf(cur);
        const next = method === 'PATCH' ? applyPatch(current, body, contentType) : (body as Json);
        const replicas = (next.spec as Json | undefined)?.replicas;
        if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0)
          throw new ApiStatusError(
            422,
            'Invalid',
            `spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be a whole number, 0 or more`,
          );
        after = { ...cur, spec: { ...((cur.spec ?? {}) as Json), replicas } };
        return after;
      }
      if (method === 'PUT') {
        // Optimistic concurrency: a replace made from an old read does not overwrite a newer change.
        const given = metaOf(body).resourceVersion;
        const live = metaOf(d.store.get(t.resource, ns, name)).resourceVersion;
        if (given !== undefined && given !== '' && live !== undefined && String(given) !== String(live))
          throw new ApiStatusError(
            409,
            'Conflict',
            `Operation cannot be fulfilled on ${t.resource.plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
          );
      }
      const next = method === 'PATCH' ? applyPatch(cur, body, contentType) : (body as Json);
      if (metaOf(next).name !== name)
        throw new ApiStatusError(
          400,
          'BadRequest',
          `the name of the object (${String(metaOf(next).name)}) does not match the name in the URL (${name})`,
        );
      after = withNamespace(next, t.resource.namespaced ? ns : undefined);
      return after;
    };
    const stored = await d.writer.write({
      principal: who,
      dryRun,
      verb: method === 'PATCH' ? 'patch' : 'update',
      resource: t.resource,
      namespace: ns,
      name,
      mutate,
    });
    if (!dryRun && after !== undefined)
      own(
        { ...t, name },
        recordUpdate({
          before,
          after,
          managed: managedOf(t, name),
          manager,
          apiVersion,
          now: now(),
          ...(scale ? { subresource: 'scale' } : {}),
        }),
      );
    const served = dryRun ? stored : (d.store.get(t.resource, ns, name) ?? stored);
    send(res, 200, scale && served !== undefined ? scaleOf(served) : served);
  };

  /**
   * Server-side apply (PATCH application/apply-patch+yaml): merges the configuration by field
   * ownership (server-side-apply.ts), creating the object when it is absent.
   */
  const apply = async (
    req: IncomingMessage,
    res: ServerResponse,
    t: Target & { name: string },
    body: unknown,
    manager: string | undefined,
    q: URLSearchParams,
    who: ApiPrincipal,
  ): Promise<void> => {
    const dryRun = q.get('dryRun') === 'All';
    if (q.get('fieldManager') === null || q.get('fieldManager') === '')
      throw new ApiStatusError(400, 'BadRequest', 'fieldManager is required for apply requests');
    const force = q.get('force') === 'true';
    if (req.headers['content-type'] === undefined || body === undefined || typeof body !== 'object')
      throw new ApiStatusError(400, 'BadRequest', 'the apply configuration is not an object');
    const config = body as Json;
    const apiVersion = apiVersionOf(t.resource);
    if (config.kind !== t.resource.kind || config.apiVersion !== apiVersion)
      throw new ApiStatusError(
        400,
        'BadRequest',
        `the apply configuration is ${String(config.apiVersion)} ${String(config.kind)}, not ${apiVersion} ${t.resource.kind}`,
      );
    if (metaOf(config).name !== t.name)
      throw new ApiStatusError(
        400,
        'BadRequest',
        `the name of the object (${String(metaOf(config).name)}) does not match the name in the URL (${t.name})`,
      );
    const ns = t.namespace ?? '';
    const given = metaOf(config).namespace;
    if (t.resource.namespaced && given !== undefined && given !== ns)
      throw new ApiStatusError(
        400,
        'BadRequest',
        `the namespace of the object (${String(given)}) does not match the namespace of the request (${ns})`,
      );
    const existed = d.store.get(t.resource, ns, t.name) !== undefined;
    let managed: ManagedFieldsEntry[] | undefined;
    const stamp = now();
    const stored = await d.writer!.write({
      principal: who,
      dryRun,
      verb: 'patch',
      resource: t.resource,
      namespace: ns,
      name: t.name,
      mutate: (cur) => {
        let r: ReturnType<typeof serverSideApply>;
        try {
          r = serverSideApply({
            live: cur,
            managed: cur === undefined ? [] : managedOf(t, t.name),
            manager: manager ?? '',
            config: withNamespace(config, t.resource.namespaced ? ns : undefined),
            force,
            apiVersion,
            now: stamp,
          });
        } catch (err) {
          if (err instanceof ApplyConflictError)
            throw new ApiStatusError(409, 'Conflict', err.message, {
              name: t.name,
              kind: t.resource.plural,
              ...(t.resource.group === '' ? {} : { group: t.resource.group }),
              causes: err.conflicts.map((c) => ({
                reason: 'FieldManagerConflict',
                message: `conflict with "${c.manager}"`,
                field: c.field,
              })),
            });
          throw err;
        }
        managed = r.managed;
        return withNamespace(
          { ...r.object, apiVersion, kind: t.resource.kind },
          t.resource.namespaced ? ns : undefined,
        );
      },
    });
    if (!dryRun && managed !== undefined) own(t, managed);
    const served = dryRun
      ? { ...stored, metadata: { ...metaOf(stored), managedFields: managed } }
      : d.store.get(t.resource, ns, t.name);
    send(res, existed ? 200 : 201, served);
  };

  const read = createReader(d, send);

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'https://local');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    void (async () => {
      const token = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const who = d.authenticate(token);
      if (who === undefined) throw new ApiStatusError(401, 'Unauthorized', 'Unauthorized');
      const doc = req.method === 'GET' ? openapi.get(path) : undefined;
      if (doc !== undefined) return send(res, 200, doc);
      const discovered = req.method === 'GET' ? discovery(path, groups) : undefined;
      if (discovered !== undefined) return send(res, 200, discovered);
      const t = parseResourcePath(path);
      if (t === 'tokenreviews') {
        if (req.method !== 'POST' || d.reviewToken === undefined)
          throw new ApiStatusError(405, 'MethodNotAllowed', 'tokenreviews accept POST only');
        const review = (await readBody(req)) as Json | undefined;
        const spec = (review?.spec ?? {}) as Json;
        if (typeof spec.token !== 'string' || spec.token === '')
          throw new ApiStatusError(422, 'Invalid', 'spec.token: Required value');
        const audiences = Array.isArray(spec.audiences) ? spec.audiences.map(String) : [];
        return send(res, 201, {
          kind: 'TokenReview',
          apiVersion: 'authentication.k8s.io/v1',
          metadata: { creationTimestamp: null },
          spec,
          status: await d.reviewToken(spec.token, audiences),
        });
      }
      if (t === undefined)
        throw new ApiStatusError(404, 'NotFound', 'the server could not find the requested resource');
      if (req.method === 'GET') return read(req, res, t, url.searchParams);
      if (req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH' || req.method === 'DELETE')
        return write(req, res, t, who, url.searchParams);
      throw new ApiStatusError(405, 'MethodNotAllowed', `${req.method} is not supported`);
    })().catch((err: unknown) => {
      const e =
        err instanceof ApiStatusError
          ? err
          : err instanceof PatchError
            ? new ApiStatusError(422, 'Invalid', err.message)
            : new ApiStatusError(500, 'InternalError', (err as Error).message);
      if (e.code >= 500) d.log.error({ err, method: req.method, path }, 'API request failed');
      if (res.headersSent) res.end();
      else send(res, e.code, status(e));
    });
  };
}

function withNamespace(o: Json, ns: string | undefined): Json {
  const m = metaOf(o);
  return ns === undefined ? o : { ...o, metadata: { ...m, namespace: ns } };
}
