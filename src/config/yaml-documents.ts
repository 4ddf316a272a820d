import {
  type Document,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseAllDocuments,
} from 'yaml';
import type { FieldPath } from './issue.js';

/** One YAML document of a file, its plain value, and a way to find the line of any field path. */
export interface YamlDocument {
  readonly file: string;
  /** 1-based line where the document's content starts. */
  readonly line: number;
  readonly value: unknown;
  /** 1-based line of the deepest node on `path` that exists. */
  lineOf(path: FieldPath): number;
}

export interface YamlSyntaxError {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

/** Splits a multi-document YAML text. Syntax errors are returned, never thrown; broken documents are skipped. */
export function parseYamlDocuments(
  text: string,
  file: string,
): { documents: YamlDocument[]; errors: YamlSyntaxError[] } {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const documents: YamlDocument[] = [];
  const errors: YamlSyntaxError[] = [];
  const lineAt = (offset: number): number => lineCounter.linePos(offset).line;
  if (!Array.isArray(docs)) return { documents, errors };
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        errors.push({ file, line: e.linePos?.[0]?.line ?? lineAt(e.pos[0]), message: firstLine(e.message) });
      }
      continue;
    }
    if (doc.contents === null) continue;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      errors.push({ file, line: lineAt(doc.contents.range?.[0] ?? 0), message: (err as Error).message });
      continue;
    }
    if (value === null || value === undefined) continue;
    const start = lineAt(doc.contents.range?.[0] ?? 0);
    documents.push({ file, line: start, value, lineOf: (path) => lineOfPath(doc, path, lineAt) ?? start });
  }
  return { documents, errors };
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

function lineOfPath(doc: Document, path: FieldPath, lineAt: (offset: number) => number): number | undefined {
  // The line of a mapping entry is the line of its key (`ports:`), which is where a reader looks,
  // also when the wrong thing is a nested block below it. A missing field reports its parent's line.
  let node: unknown = doc.contents;
  let best: number | undefined = rangeLine(node, lineAt);
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg),
      );
      if (pair === undefined) break;
      best = rangeLine(pair.key, lineAt) ?? best;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number' && node.items[seg] !== undefined) {
      node = node.items[seg];
      best = rangeLine(node, lineAt) ?? best;
    } else {
      break;
    }
    if (node === null || node === undefined) break;
  }
  return best;
}

function rangeLine(node: unknown, lineAt: (offset: number) => number): number | undefined {
  const range = (node as Node | undefined)?.range;
  return range === undefined || range === null ? undefined : lineAt(range[0]);
}
