/**
 * Where each value of a JSON document sits in its text, so that a file can be edited in place (one
 * member added or removed) while every other byte, its indentation and formatting included, stays as
 * it was. Call only on text that JSON.parse accepted: this reader trusts the syntax.
 */
export type JsonSpan =
  | {
      readonly kind: 'object';
      readonly start: number;
      readonly end: number;
      readonly members: readonly JsonMember[];
    }
  | {
      readonly kind: 'array';
      readonly start: number;
      readonly end: number;
      readonly items: readonly JsonSpan[];
    }
  | { readonly kind: 'scalar'; readonly start: number; readonly end: number };

export interface JsonMember {
  readonly key: string;
  readonly value: JsonSpan;
}

/** The spans of the document's top-level value (`end` is exclusive). */
export function jsonSpans(text: string): JsonSpan {
  let pos = 0;
  const ws = (): void => {
    while (pos < text.length && ' \t\n\r'.includes(text[pos]!)) pos++;
  };
  const string = (): string => {
    const start = pos;
    pos++;
    while (text[pos] !== '"') pos += text[pos] === '\\' ? 2 : 1;
    pos++;
    return JSON.parse(text.slice(start, pos)) as string;
  };
  const value = (): JsonSpan => {
    ws();
    const start = pos;
    const c = text[pos];
    if (c === '{') {
      pos++;
      const members: JsonMember[] = [];
      ws();
      if (text[pos] === '}') {
        pos++;
        return { kind: 'object', start, end: pos, members };
      }
      for (;;) {
        ws();
        const key = string();
        ws();
        pos++; // ':'
        members.push({ key, value: value() });
        ws();
        if (text[pos++] === '}') return { kind: 'object', start, end: pos, members };
      }
    }
    if (c === '[') {
      pos++;
      const items: JsonSpan[] = [];
      ws();
      if (text[pos] === ']') {
        pos++;
        return { kind: 'array', start, end: pos, items };
      }
      for (;;) {
        items.push(value());
        ws();
        if (text[pos++] === ']') return { kind: 'array', start, end: pos, items };
      }
    }
    if (c === '"') {
      string();
      return { kind: 'scalar', start, end: pos };
    }
    while (pos < text.length && !' \t\n\r,]}'.includes(text[pos]!)) pos++;
    return { kind: 'scalar', start, end: pos };
  };
  return value();
}

/** The member `key` of an object span (the last one, as JSON.parse keeps the last of duplicates). */
export function member(span: JsonSpan, key: string): JsonSpan | undefined {
  if (span.kind !== 'object') return undefined;
  return span.members.findLast((m) => m.key === key)?.value;
}
