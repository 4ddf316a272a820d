import { randomUUID } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { resourceOfKind } from '../../kube/api-resources.js';
import { ApiStatusError } from './api-status.js';
import { type Dependent, ownerReferencesOf } from './garbage-collector.js';
import type { Json } from './selectors.js';
import type { ApiPrincipal, ApiWriter, WriteRequest } from './server.js';
import { keyOf } from './store.js';

/*
 * Where local mode keeps the objects that controllers make through its API. The manifests folder is
 * the user's: an object a controller creates (one whose ownerReferences name a controller, as every
 * object the control plane applies for a waypoint Gateway does) is not written into it as if the user
 * had. Such objects are kept here instead, in one file of the cluster's run folder
 * (`<run>/kube/controller-objects.json`), read again when the local daemon starts; the API serves them
 * like any other object, the cluster runs them (a kept Deployment's pods run), and every later write
 * to one (an apply, `kubectl edit`, `kubectl scale`, a delete) changes this file, never the manifests.
 * An object the manifests declare under the same name wins over a kept one (with a warning).
 *
 * A daemon creates objects without an owner too: the control plane's CA root ConfigMap in every
 * namespace has none (nothing owns it but the control plane itself, as with Istio's
 * istio-ca-root-cert). So the rule is who creates it as well as what it says: an object created by a
 * daemon's principal (one that may write only what its RBAC grants, never the user's) is kept here
 * like one with a controller reference; the user (`kubectl`, the admin kubeconfig) writes to the
 * manifests.
 */

/** An object is a controller's when one of its ownerReferences says `controller: true`. */
export function isControllerObject(o: Json | undefined): boolean {
  return o !== undefined && ownerReferencesOf(o).some((r) => r.controller === true);
}

/** Whether a new object is kept out of the manifests (see above): a controller's, or a daemon's write. */
export function keptOutOfManifests(
  o: Json | undefined,
  by: Pick<ApiPrincipal, 'canWrite'> | undefined,
): boolean {
  if (o === undefined) return false;
  return isControllerObject(o) || (by !== undefined && !by.canWrite);
}

function metaOf(o: Json): Json {
  return (o.metadata ?? {}) as Json;
}

export class ControllerObjects {
  private readonly objects = new Map<string, Json>();

  constructor(private readonly file?: string) {
    if (file === undefined) return;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return; // None kept yet.
    }
    const list = JSON.parse(text) as Json[];
    for (const o of list) {
      const r = resourceOfKind(String(o.kind ?? ''));
      if (r === undefined) continue;
      const m = metaOf(o);
      this.objects.set(keyOf(r, String(m.namespace ?? ''), String(m.name ?? '')), o);
    }
  }

  has(key: string): boolean {
    return this.objects.has(key);
  }

  get(key: string): Json | undefined {
    return this.objects.get(key);
  }

  all(): Json[] {
    return [...this.objects.values()];
  }

  /** Every kept object, as the garbage collector sees it. */
  dependents(): Dependent[] {
    return [...this.objects.entries()].map(([key, o]) => ({
      key,
      namespace: String(metaOf(o).namespace ?? ''),
      ownerReferences: ownerReferencesOf(o),
    }));
  }

  /** Sets (or with undefined, removes) objects and writes the file once. */
  change(changes: readonly { key: string; object: Json | undefined }[]): void {
    for (const c of changes) {
      if (c.object === undefined) this.objects.delete(c.key);
      else this.objects.set(c.key, c.object);
    }
    if (this.file === undefined) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.all(), null, 1)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

export interface ControllerWriterOptions {
  readonly objects: ControllerObjects;
  /** Problems of an object as the cluster would run it (the manifest parser's), empty when it is valid. */
  readonly validate: (object: Json) => readonly string[];
  /** The cluster takes the kept objects again; resolves once the store has the result. */
  readonly reload: () => Promise<void>;
  /** The object as the API serves it now (for its uid and creationTimestamp). */
  readonly live: (req: WriteRequest) => Json | undefined;
}

/** Writes to kept objects (see above): validated, kept, then the cluster reloads them. */
export class ControllerObjectWriter implements ApiWriter {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: ControllerWriterOptions) {}

  write(req: WriteRequest): Promise<Json | undefined> {
    const run = this.queue.then(() => this.writeNow(req));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async writeNow(req: WriteRequest): Promise<Json | undefined> {
    const key = keyOf(req.resource, req.namespace, req.name);
    const current = this.o.objects.get(key);
    const next = req.mutate(current === undefined ? undefined : stripServerFields(current));
    if (next !== undefined) {
      const problems = this.o.validate(next);
      if (problems.length > 0)
        throw new ApiStatusError(
          422,
          'Invalid',
          `${req.resource.kind} "${req.name}" is invalid: ${problems.join('; ')}`,
          { name: req.name, kind: req.resource.plural, causes: problems.map((message) => ({ message })) },
        );
    }
    const live = this.o.live(req);
    const stamped =
      next === undefined
        ? undefined
        : {
            ...stripServerFields(next),
            metadata: {
              ...metaOf(stripServerFields(next)),
              uid: metaOf(current ?? {}).uid ?? metaOf(live ?? {}).uid ?? randomUUID(),
              creationTimestamp:
                metaOf(current ?? {}).creationTimestamp ??
                metaOf(live ?? {}).creationTimestamp ??
                new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
            },
          };
    if (req.dryRun === true) return stamped;
    this.o.objects.change([{ key, object: stamped }]);
    await this.o.reload();
    return stamped === undefined ? undefined : this.o.live(req);
  }
}

/** What the server owns is not kept (status, resourceVersion, managedFields: the store adds them). */
export function stripServerFields(o: Json): Json {
  const { status: _s, ...rest } = o;
  const m = { ...metaOf(o) };
  for (const k of ['resourceVersion', 'generation', 'managedFields', 'selfLink', 'deletionTimestamp'])
    delete m[k];
  return { ...rest, metadata: m };
}
