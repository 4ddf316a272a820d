import type { IncomingMessage, ServerResponse } from 'node:http';
import YAML from 'yaml';
import { type ApiResource, apiVersionOf } from '../../kube/api-resources.js';
import { ApiStatusError, metaOf, notFound } from './api-status.js';
import { type PropagationPolicy, propagationPolicy } from './garbage-collector.js';
import { applyPatch } from './patch.js';
import { scaleOf, type Target } from './reads.js';
import type { Json } from './selectors.js';
import {
  ApplyConflictError,
  defaultManager,
  type ManagedFieldsEntry,
  recordUpdate,
  serverSideApply,
} from './server-side-apply.js';
import type { ApiStore } from './store.js';

/**
 * Local mode's API writes: create, update, patch (the three patch types and server-side apply),
 * delete with preconditions and a propagation policy, the `scale` subresource of Deployments and
 * the `status` of Gateway API objects; they go through the ApiWriter and managedFields are recorded.
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

export interface WriteDeps {
  readonly store: ApiStore;
  readonly writer?: ApiWriter;
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

export function readBody(req: IncomingMessage, limit = 3 * 1024 * 1024, yaml = false): Promise<unknown> {
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

/** The POST/PUT/PATCH/DELETE handler: `send` writes a JSON answer. */
export function createWriter(
  d: WriteDeps,
  send: (res: ServerResponse, code: number, body: unknown) => void,
): (
  req: IncomingMessage,
  res: ServerResponse,
  t: Target,
  who: ApiPrincipal,
  q: URLSearchParams,
) => Promise<void> {
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

  return write;
}

function withNamespace(o: Json, ns: string | undefined): Json {
  const m = metaOf(o);
  return ns === undefined ? o : { ...o, metadata: { ...m, namespace: ns } };
}
