import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { IssueSink } from '../config/field-reader.js';
import { type ConfigIssue, type FieldPath, formatPath } from '../config/issue.js';
import { parseYamlDocuments, type YamlDocument } from '../config/yaml-documents.js';
import { AmbitError, ErrorCode } from '../errors.js';
import { failClosedPolicy } from '../policy/fail-closed.js';
import { type Manifests, type MeshObject, objectKey } from './model.js';
import { type ParseOptions, parseObject } from './parse-object.js';

/**
 * An invalid AuthorizationPolicy that is (or may be) a DENY is served to the local cluster's API all the
 * same, as a real API server without a validating webhook would take it: the control plane rejects it
 * there and enforces it failing closed (src/policy/fail-closed.ts). Keeping its last good version
 * instead, or nothing for a new one, would let through what it meant to stop.
 */
function failsClosed(o: MeshObject): boolean {
  if (o.kind !== 'AuthorizationPolicy' || !('body' in o)) return false;
  return (
    failClosedPolicy(o.body.spec, { namespace: o.meta.namespace ?? '', name: o.meta.name }, '') !== undefined
  );
}

export interface LoadResult {
  readonly manifests: Manifests;
  /** Every error and warning found, in file order. */
  readonly issues: readonly ConfigIssue[];
}

/** Namespaces that exist without a manifest, as in every Kubernetes cluster. */
export const BUILTIN_NAMESPACES = ['default', 'kube-system', 'ambit-system'] as const;

const MANIFEST_EXT = /\.(ya?ml|json)$/;

/** The manifest files under a file or folder path, in a stable order. */
export function listManifestFiles(path: string): string[] {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (err) {
    throw new AmbitError(
      ErrorCode.CONFIG_READ,
      `${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      {
        cause: err,
      },
    );
  }
  if (st.isFile()) return [path];
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      if (entry.name.startsWith('.')) continue;
      const p = join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (MANIFEST_EXT.test(entry.name)) out.push(p);
    }
  };
  walk(path);
  if (out.length === 0)
    throw new AmbitError(ErrorCode.CONFIG_READ, `${path}: no .yaml, .yml or .json files in this folder`);
  return out;
}

/**
 * Loads every manifest under `path` (a file or a folder). Never throws for content problems: each one
 * becomes an issue naming file, line and field, and the objects that are valid are returned.
 * File names in issues are relative to `displayBase` (default: the working directory).
 */
export function loadManifests(path: string, opts: ParseOptions, displayBase = process.cwd()): LoadResult {
  const files = listManifestFiles(path);
  const texts = files.map((file) => {
    try {
      return { file: relative(displayBase, file) || file, text: readFileSync(file, 'utf8') };
    } catch (err) {
      throw new AmbitError(
        ErrorCode.CONFIG_READ,
        `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        {
          cause: err,
        },
      );
    }
  });
  return parseManifestTexts(texts, opts);
}

/** Parses manifest texts already in memory (also what the tests drive). */
export function parseManifestTexts(
  texts: readonly { file: string; text: string }[],
  opts: ParseOptions,
): LoadResult {
  const issues: ConfigIssue[] = [];
  const objects: MeshObject[] = [];
  // An object with any error is rejected whole, so that nothing half-valid reaches the mesh.
  const rejected = new Set<MeshObject>();
  const lineOf = new Map<MeshObject, (path: FieldPath) => number>();
  for (const { file, text } of texts) {
    const { documents, errors } = parseYamlDocuments(text, file);
    for (const e of errors) {
      issues.push({ severity: 'error', file, line: e.line, path: '', message: `invalid YAML: ${e.message}` });
    }
    for (const doc of documents) {
      for (const item of expandList(doc)) {
        const docIssues: ConfigIssue[] = [];
        const sink = sinkFor(doc, item.prefix, docIssues);
        const parsed = parseObject(item.value, file, doc.lineOf(item.prefix), sink, opts);
        // A Deployment keeps its manifest whole: the API serves it as written, with its status.
        const obj =
          parsed?.kind === 'Deployment' && typeof item.value === 'object' && item.value !== null
            ? { ...parsed, manifest: item.value as Record<string, unknown> }
            : parsed;
        // Issues name their object, even one that could not be parsed, so that a reload can keep that
        // object's last good version instead of losing it.
        const key = obj === undefined ? rawObjectKey(item.value) : objectKey(obj);
        for (const i of docIssues) issues.push(key === undefined ? i : { ...i, object: key });
        if (obj !== undefined) {
          objects.push(obj);
          lineOf.set(obj, (path) => doc.lineOf([...item.prefix, ...path]));
          if (docIssues.some((i) => i.severity === 'error') && !failsClosed(obj)) rejected.add(obj);
        }
      }
    }
  }
  for (const { issue, obj } of crossObjectIssues(
    objects,
    (o, path) => lineOf.get(o)?.(path) ?? o.source.line,
  )) {
    issues.push(issue);
    rejected.add(obj);
  }
  const kept = objects.filter((o) => !rejected.has(o));
  const fileOrder = new Map(texts.map((t, i) => [t.file, i]));
  const sorted = issues
    .map((issue, i) => ({ issue, i }))
    .sort(
      (a, b) =>
        (fileOrder.get(a.issue.file) ?? 0) - (fileOrder.get(b.issue.file) ?? 0) ||
        a.issue.line - b.issue.line ||
        a.i - b.i,
    )
    .map((x) => x.issue);
  return { manifests: byKind(kept), issues: sorted };
}

/** `Kind/namespace/name` read straight from a document that failed to parse, when it has those fields. */
function rawObjectKey(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  if (typeof v.kind !== 'string' || typeof v.metadata?.name !== 'string' || v.metadata.name === '')
    return undefined;
  if (v.kind === 'Namespace') return `Namespace/${v.metadata.name}`;
  const ns =
    typeof v.metadata.namespace === 'string' && v.metadata.namespace !== ''
      ? v.metadata.namespace
      : 'default';
  return `${v.kind}/${ns}/${v.metadata.name}`;
}

/** `kind: List` documents (what `kubectl get -o yaml` prints) hold their objects under `items`. */
function expandList(doc: YamlDocument): { value: unknown; prefix: FieldPath }[] {
  const v = doc.value as { kind?: unknown; items?: unknown };
  if (typeof v === 'object' && v !== null && v.kind === 'List' && Array.isArray(v.items)) {
    return v.items.map((value, i) => ({ value, prefix: ['items', i] }));
  }
  return [{ value: doc.value, prefix: [] }];
}

function sinkFor(doc: YamlDocument, prefix: FieldPath, out: ConfigIssue[]): IssueSink {
  const add = (severity: ConfigIssue['severity'], path: FieldPath, message: string): void => {
    out.push({
      severity,
      file: doc.file,
      line: doc.lineOf([...prefix, ...path]),
      path: formatPath(path),
      message,
    });
  };
  return { error: (p, m) => add('error', p, m), warn: (p, m) => add('warning', p, m) };
}

/** Problems between objects; each names the object that is rejected for it (a duplicate: the later copy). */
function crossObjectIssues(
  objects: readonly MeshObject[],
  lineOf: (o: MeshObject, path: FieldPath) => number,
): { issue: ConfigIssue; obj: MeshObject }[] {
  const out: { issue: ConfigIssue; obj: MeshObject }[] = [];
  const seen = new Map<string, MeshObject>();
  for (const o of objects) {
    const key = objectKey(o);
    const prev = seen.get(key);
    if (prev !== undefined) {
      out.push({
        obj: o,
        issue: {
          severity: 'error',
          file: o.source.file,
          line: lineOf(o, ['metadata', 'name']),
          path: 'metadata.name',
          message: `${key} is already defined at ${prev.source.file}:${prev.source.line}; this copy is ignored`,
          object: key,
        },
      });
    } else {
      seen.set(key, o);
    }
  }
  const namespaces = new Set<string>([
    ...BUILTIN_NAMESPACES,
    ...objects.filter((o) => o.kind === 'Namespace').map((o) => o.meta.name),
  ]);
  for (const o of objects) {
    if (o.meta.namespace !== '' && !namespaces.has(o.meta.namespace)) {
      out.push({
        obj: o,
        issue: {
          severity: 'error',
          file: o.source.file,
          line: lineOf(o, ['metadata', 'namespace']),
          path: 'metadata.namespace',
          message: `namespace "${o.meta.namespace}" is not defined; add a Namespace object for it`,
          object: objectKey(o),
        },
      });
    }
  }
  return out;
}

function byKind(objects: readonly MeshObject[]): Manifests {
  const m = { namespaces: [], serviceAccounts: [], pods: [], deployments: [], services: [], kept: [] } as {
    -readonly [K in keyof Manifests]: MeshObject[];
  };
  for (const o of objects) {
    switch (o.kind) {
      case 'Namespace':
        m.namespaces.push(o);
        break;
      case 'ServiceAccount':
        m.serviceAccounts.push(o);
        break;
      case 'Pod':
        m.pods.push(o);
        break;
      case 'Deployment':
        m.deployments.push(o);
        break;
      case 'Service':
        m.services.push(o);
        break;
      default:
        m.kept.push(o);
    }
  }
  return m as unknown as Manifests;
}

/** True when any issue is an error. */
export function hasErrors(issues: readonly ConfigIssue[]): boolean {
  return issues.some((i) => i.severity === 'error');
}
