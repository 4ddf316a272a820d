/**
 * Label and field selectors as the API server reads them (`app=web,tier!=db`, `env in (a,b)`, `!canary`;
 * `spec.nodeName=node-1`): parsed once into predicates. Pure.
 */
export type Json = Record<string, unknown>;
export type Selector = (obj: Json) => boolean;

export class SelectorError extends Error {}

/** Splits on commas that are not inside parentheses. */
function terms(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth += 1;
    if (ch === ')') depth -= 1;
    if (ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim() !== '') out.push(cur.trim());
  return out.filter((t) => t !== '');
}

function labelsOf(obj: Json): Record<string, string> {
  const m = obj.metadata as { labels?: Record<string, string> } | undefined;
  return m?.labels ?? {};
}

export function parseLabelSelector(text: string): Selector {
  const tests = terms(text).map((t): Selector => {
    let m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t);
    if (m !== null) {
      const [, key, op, list] = m as unknown as [string, string, string, string];
      const values = new Set(list.split(',').map((v) => v.trim()));
      return op === 'in'
        ? (o) => values.has(labelsOf(o)[key] ?? '\0')
        : (o) => !values.has(labelsOf(o)[key] ?? '\0');
    }
    m = /^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$/.exec(t);
    if (m !== null) {
      const [, key, op, value] = m as unknown as [string, string, string, string];
      return op === '!=' ? (o) => labelsOf(o)[key] !== value : (o) => labelsOf(o)[key] === value;
    }
    m = /^(!?)([\w./-]+)$/.exec(t);
    if (m !== null) {
      const [, not, key] = m as unknown as [string, string, string];
      return not === '!' ? (o) => !(key in labelsOf(o)) : (o) => key in labelsOf(o);
    }
    throw new SelectorError(`unable to parse requirement: "${t}"`);
  });
  return (o) => tests.every((t) => t(o));
}

/** A field's value by dotted path, as text ('' when absent): what field selectors compare. */
function field(obj: Json, path: string): string {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return '';
    cur = (cur as Json)[part];
  }
  return cur === undefined || cur === null ? '' : String(cur);
}

export function parseFieldSelector(text: string): Selector {
  const tests = terms(text).map((t): Selector => {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(t);
    if (m === null) throw new SelectorError(`invalid field selector: "${t}"`);
    const [, path, op, value] = m as unknown as [string, string, string, string];
    return op === '!=' ? (o) => field(o, path) !== value : (o) => field(o, path) === value;
  });
  return (o) => tests.every((t) => t(o));
}
