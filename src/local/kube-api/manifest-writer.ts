import { existsSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { type Document, parseAllDocuments, stringify } from 'yaml';
import { formatIssue } from '../../config/issue.js';
import type { ApiResource } from '../../kube/api-resources.js';
import { listManifestFiles, parseManifestTexts } from '../../manifests/load-manifests.js';
import type { ParseOptions } from '../../manifests/parse-object.js';
import { ApiStatusError } from './api-status.js';
import type { Json } from './selectors.js';
import type { ApiWriter, WriteRequest } from './server.js';
import type { ApiStore } from './store.js';

/**
 * Writes through local mode's API go into the manifests folder, the cluster's one source of truth (except
 * objects controllers make, kept in the run folder: controller-objects.ts):
 * an object declared in a file is changed in that file (the other documents stay as they are), a new
 * one gets a file of its own (`<kind>-<namespace>-<name>.yaml`), a deleted one leaves its file. The
 * folder is validated with the change before anything is written, so an invalid object is refused
 * with the same file:line:path messages `ambit local up` prints, and nothing is lost.
 */
export interface ManifestWriterOptions {
  /** The manifests file or folder. */
  readonly manifests: string;
  /** What file names in messages are relative to. */
  readonly displayBase: string;
  readonly parseOptions: () => ParseOptions;
  readonly store: ApiStore;
  /** Reconciles the cluster with the folder now; resolves once the store has the result. */
  readonly reload: () => Promise<void>;
  /** Objects local mode makes itself (a Deployment's pods): refused with this reason, else undefined. */
  readonly managedBy?: (resource: ApiResource, object: Json) => string | undefined;
}

interface Located {
  readonly file: string;
  readonly index: number;
  readonly docs: Document[];
  readonly body: Json;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Edits a YAML document from `before` to `after` in place, field by field, so that what did not change
 * keeps its comments, quoting and layout (a whole file rewritten from JSON would lose them).
 */
export function applyDiff(
  doc: Document,
  before: unknown,
  after: unknown,
  path: (string | number)[] = [],
): void {
  if (JSON.stringify(before) === JSON.stringify(after)) return;
  if (isObject(before) && isObject(after)) {
    for (const k of Object.keys(before)) if (!(k in after)) doc.deleteIn([...path, k]);
    for (const [k, v] of Object.entries(after)) applyDiff(doc, before[k], v, [...path, k]);
    return;
  }
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length) {
    for (const [i, v] of after.entries()) applyDiff(doc, before[i], v, [...path, i]);
    return;
  }
  if (path.length === 0) doc.contents = doc.createNode(after) as typeof doc.contents;
  else doc.setIn(path, doc.createNode(after));
}

/** Fields the server owns: never written into a manifest. */
function manifestForm(o: Json): Json {
  const { status: _s, ...rest } = o;
  const m = { ...((o.metadata ?? {}) as Json) };
  for (const k of [
    'uid',
    'resourceVersion',
    'creationTimestamp',
    'generation',
    'managedFields',
    'selfLink',
    'deletionTimestamp',
  ])
    delete m[k];
  const annotations = { ...((m.annotations ?? {}) as Record<string, string>) };
  delete annotations['ambit.dev/source'];
  if (Object.keys(annotations).length === 0) delete m.annotations;
  else m.annotations = annotations;
  return { ...rest, metadata: m };
}

/** `<kind>-<namespace>-<name>.yaml` in the folder, or with `-2`, `-3`... when a file has that name. */
function freshFile(folder: string, parts: readonly string[]): string {
  const base = parts
    .filter((p) => p !== '')
    .join('-')
    .replace(/[^a-z0-9.-]/g, '-');
  for (let i = 1; ; i++) {
    const file = join(folder, `${base}${i === 1 ? '' : `-${i}`}.yaml`);
    if (!existsSync(file)) return file;
  }
}

/** Replaces a file by rename, keeping its mode, so a reader (the folder watch) never sees half of it. */
function writeAtomically(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.ambit-${process.pid}.tmp`);
  let mode = 0o644;
  try {
    mode = statSync(file).mode & 0o7777;
  } catch {
    // A new file.
  }
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}

export class ManifestWriter implements ApiWriter {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: ManifestWriterOptions) {}

  write(req: WriteRequest): Promise<Json | undefined> {
    const run = this.queue.then(() => this.writeNow(req));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private folder(): string | undefined {
    return statSync(this.o.manifests).isDirectory() ? this.o.manifests : undefined;
  }

  /** The document that declares the object, with the texts of its file's documents. */
  private locate(req: WriteRequest): Located | undefined {
    for (const file of listManifestFiles(this.o.manifests)) {
      const text = readFileSync(file, 'utf8');
      const docs = parseAllDocuments(text);
      if (!Array.isArray(docs)) continue;
      for (const [index, doc] of docs.entries()) {
        const body = doc.toJSON() as Json | null;
        if (body === null || typeof body !== 'object') continue;
        const m = (body.metadata ?? {}) as Json;
        const ns = req.resource.namespaced ? String(m.namespace ?? 'default') : '';
        if (body.kind === 'List' && Array.isArray(body.items)) {
          const inside = body.items.some((i) => {
            const im = ((i as Json).metadata ?? {}) as Json;
            return (
              (i as Json).kind === req.resource.kind &&
              im.name === req.name &&
              (req.resource.namespaced ? String(im.namespace ?? 'default') : '') === req.namespace
            );
          });
          if (inside)
            throw new ApiStatusError(
              409,
              'Conflict',
              `${req.resource.kind} ${req.name} is declared inside a List in ${relative(this.o.displayBase, file)}: edit that file`,
            );
          continue;
        }
        if (body.kind === req.resource.kind && m.name === req.name && ns === req.namespace)
          return { file, index, docs, body };
      }
    }
    return undefined;
  }

  private async writeNow(req: WriteRequest): Promise<Json | undefined> {
    const found = this.locate(req);
    const live = this.o.store.get(req.resource, req.namespace, req.name);
    if (found === undefined && live !== undefined) {
      const why = this.o.managedBy?.(req.resource, live);
      if (why !== undefined)
        throw new ApiStatusError(
          403,
          'Forbidden',
          `${req.resource.kind} ${req.namespace === '' ? '' : `${req.namespace}/`}${req.name}: ${why}`,
        );
    }
    // An object the cluster has without a manifest (a built-in namespace) is changed from its live form.
    const current = found?.body ?? (live === undefined ? undefined : manifestForm(live));
    const next = req.mutate(current);
    const nextBody = next === undefined ? undefined : manifestForm(next);
    const nextText = nextBody === undefined ? undefined : stringify(nextBody);
    let file: string;
    let text: string | undefined;
    if (found !== undefined) {
      file = found.file;
      const docs = [...found.docs];
      if (nextBody === undefined) docs.splice(found.index, 1);
      else applyDiff(docs[found.index]!, found.body, nextBody);
      text =
        docs.length === 0
          ? undefined
          : docs.map((d) => d.toString({ lineWidth: 0, flowCollectionPadding: false })).join('');
    } else {
      if (nextText === undefined)
        throw new ApiStatusError(
          405,
          'MethodNotAllowed',
          `${req.resource.kind} ${req.name} is not declared in the manifests (local mode keeps it itself): it cannot be deleted`,
        );
      const folder = this.folder();
      if (folder === undefined) {
        file = this.o.manifests;
        text = `${readFileSync(file, 'utf8').replace(/\n*$/, '\n')}---\n${nextText}`;
      } else {
        file = freshFile(folder, [req.resource.kind.toLowerCase(), req.namespace, req.name]);
        text = nextText;
      }
    }
    this.validate(file, text, req);
    // A dry run (kubectl diff, --dry-run=server) stops here: validated, nothing written.
    if (req.dryRun === true)
      return next === undefined
        ? undefined
        : { ...next, metadata: { ...((live?.metadata ?? {}) as Json), ...((next.metadata ?? {}) as Json) } };
    // The last document of a file goes with its file, unless it is the only manifest (a folder with no
    // file, or a missing manifest file, is not a cluster local mode can reload).
    const only = listManifestFiles(this.o.manifests).length === 1;
    if (text === undefined && !only) unlinkSync(file);
    else writeAtomically(file, text ?? '');
    await this.o.reload();
    return next === undefined ? undefined : this.o.store.get(req.resource, req.namespace, req.name);
  }

  /** Parses the folder as it would be after the change; errors of the changed file refuse the write. */
  private validate(file: string, text: string | undefined, req: WriteRequest): void {
    const files = listManifestFiles(this.o.manifests).filter((f) => f !== file);
    const texts = files.map((f) => ({
      file: relative(this.o.displayBase, f) || f,
      text: readFileSync(f, 'utf8'),
    }));
    const shown = relative(this.o.displayBase, file) || file;
    if (text !== undefined) texts.push({ file: shown, text });
    const { issues } = parseManifestTexts(texts, this.o.parseOptions());
    const key =
      req.namespace === ''
        ? `${req.resource.kind}/${req.name}`
        : `${req.resource.kind}/${req.namespace}/${req.name}`;
    // Only the object written can refuse the write (another object's old problem in the same file cannot).
    const mine = issues.filter((i) => i.severity === 'error' && i.file === shown && i.object === key);
    if (mine.length > 0)
      throw new ApiStatusError(
        422,
        'Invalid',
        `${req.resource.kind} "${req.name}" is invalid: ${mine.map(formatIssue).join('; ')}`,
        {
          name: req.name,
          kind: req.resource.plural,
          causes: mine.map((i) => ({ field: `${i.file}:${i.line} ${i.path}`.trim(), message: i.message })),
        },
      );
  }
}
