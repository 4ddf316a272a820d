/** A path into a document: `['spec', 'ports', 0, 'port']`. */
export type FieldPath = readonly (string | number)[];

/** Where an object came from, for error messages: `hello.yaml:14`. */
export interface SourceRef {
  readonly file: string;
  readonly line: number;
}

/** One validation finding. Errors reject the object; warnings are reported and the object is kept. */
export interface ConfigIssue {
  readonly severity: 'error' | 'warning';
  readonly file: string;
  readonly line: number;
  /** Formatted field path, `spec.ports[0].port`; empty when the issue is about the whole document. */
  readonly path: string;
  readonly message: string;
  /** `Kind/namespace/name` of the object, when known. */
  readonly object?: string;
}

const SIMPLE_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `['spec','ports',0,'port']` -> `spec.ports[0].port`; odd keys are quoted: `metadata.labels["app.kubernetes.io/name"]`. */
export function formatPath(path: FieldPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (SIMPLE_KEY.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** `hello.yaml:14 spec.ports[0].port: "http" is not a number` */
export function formatIssue(issue: ConfigIssue): string {
  const where = `${issue.file}:${issue.line}`;
  const prefix = issue.severity === 'warning' ? 'warning: ' : '';
  return issue.path === ''
    ? `${where} ${prefix}${issue.message}`
    : `${where} ${prefix}${issue.path}: ${issue.message}`;
}

/** A value as it should appear inside a message: strings quoted, objects abbreviated. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}
