import { type FieldPath, show } from './issue.js';

/** Receives findings with the path they are about; the document layer turns paths into lines. */
export interface IssueSink {
  error(path: FieldPath, message: string): void;
  warn(path: FieldPath, message: string): void;
}

/** A check on a string; returns the reason it is wrong, or undefined when it is fine. */
export type StringCheck = (value: string) => string | undefined;

interface Req {
  readonly required?: boolean;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads one mapping of an untrusted document. Every accessor validates, reports what is wrong to the
 * sink with the exact field path, and returns undefined for a bad value, so that a parser can keep going
 * and collect every error in one pass.
 */
export class Fields {
  constructor(
    readonly path: FieldPath,
    private readonly value: Readonly<Record<string, unknown>>,
    readonly sink: IssueSink,
  ) {}

  /** Wraps a document root; reports an error if it is not a mapping. */
  static of(value: unknown, path: FieldPath, sink: IssueSink, what = 'a mapping'): Fields | undefined {
    if (!isRecord(value)) {
      sink.error(path, `expected ${what}, got ${show(value)}`);
      return undefined;
    }
    return new Fields(path, value, sink);
  }

  at(key: string | number): FieldPath {
    return [...this.path, key];
  }

  has(key: string): boolean {
    return this.value[key] !== undefined && this.value[key] !== null;
  }

  raw(key: string): unknown {
    return this.value[key];
  }

  keys(): string[] {
    return Object.keys(this.value);
  }

  error(key: string | number, message: string): void {
    this.sink.error(this.at(key), message);
  }

  private missing(key: string, opts: Req | undefined): undefined {
    if (opts?.required) this.sink.error(this.at(key), 'is required');
    return undefined;
  }

  string(key: string, opts?: Req & { check?: StringCheck; allowEmpty?: boolean }): string | undefined {
    const v = this.value[key];
    if (v === undefined || v === null) return this.missing(key, opts);
    if (typeof v !== 'string') {
      this.error(
        key,
        `${show(v)} is not a string${typeof v === 'number' || typeof v === 'boolean' ? ' (quote it)' : ''}`,
      );
      return undefined;
    }
    if (v === '' && !opts?.allowEmpty) {
      // Kubernetes treats an empty optional string as unset (namespace "" is default, nodeName "" is unscheduled).
      if (opts?.required) this.error(key, 'must not be empty');
      return undefined;
    }
    const reason = opts?.check?.(v);
    if (reason !== undefined) {
      this.error(key, `${show(v)} ${reason}`);
      return undefined;
    }
    return v;
  }

  int(key: string, opts?: Req & { min?: number; max?: number }): number | undefined {
    const v = this.value[key];
    if (v === undefined || v === null) return this.missing(key, opts);
    return checkInt(v, this.at(key), this.sink, opts);
  }

  bool(key: string, opts?: Req): boolean | undefined {
    const v = this.value[key];
    if (v === undefined || v === null) return this.missing(key, opts);
    if (typeof v !== 'boolean') {
      this.error(key, `${show(v)} is not a boolean (true or false)`);
      return undefined;
    }
    return v;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], opts?: Req): T | undefined {
    const v = this.string(key, opts);
    if (v === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(v)) {
      this.error(key, `${show(v)} is not one of ${allowed.join(', ')}`);
      return undefined;
    }
    return v as T;
  }

  /** An integer port number or a named port (`http`). */
  intOrString(
    key: string,
    opts?: Req & { min?: number; max?: number; check?: StringCheck },
  ): number | string | undefined {
    const v = this.value[key];
    if (v === undefined || v === null) return this.missing(key, opts);
    if (typeof v === 'string') {
      if (/^[0-9]+$/.test(v)) return checkInt(Number(v), this.at(key), this.sink, opts);
      return this.string(key, opts);
    }
    return checkInt(v, this.at(key), this.sink, opts);
  }

  object(key: string, opts?: Req): Fields | undefined {
    const v = this.value[key];
    if (v === undefined || v === null) return this.missing(key, opts);
    return Fields.of(v, this.at(key), this.sink);
  }

  /** A list; each item is handed to `item` with its own path. Bad items are skipped after reporting. */
  list<T>(
    key: string,
    item: (value: unknown, path: FieldPath) => T | undefined,
    opts?: Req & { nonEmpty?: boolean; max?: number },
  ): T[] | undefined {
    const v = this.value[key];
    if (v === undefined || v === null) return this.missing(key, opts);
    if (!Array.isArray(v)) {
      this.error(key, `expected a list, got ${show(v)}`);
      return undefined;
    }
    if (opts?.nonEmpty && v.length === 0) this.error(key, 'must not be empty');
    if (opts?.max !== undefined && v.length > opts.max)
      this.error(key, `has ${v.length} items; at most ${opts.max} are allowed`);
    const out: T[] = [];
    v.forEach((entry, i) => {
      const parsed = item(entry, this.at(key).concat(i));
      if (parsed !== undefined) out.push(parsed);
    });
    return out;
  }

  /** A list of mappings, each read through its own Fields. */
  objects<T>(
    key: string,
    item: (f: Fields) => T | undefined,
    opts?: Req & { nonEmpty?: boolean; max?: number },
  ): T[] | undefined {
    return this.list(
      key,
      (value, path) => {
        const f = Fields.of(value, path, this.sink);
        return f === undefined ? undefined : item(f);
      },
      opts,
    );
  }

  stringList(key: string, opts?: Req & { nonEmpty?: boolean; check?: StringCheck }): string[] | undefined {
    return this.list(
      key,
      (value, path) => {
        if (typeof value !== 'string') {
          this.sink.error(
            path,
            `${show(value)} is not a string${typeof value === 'number' ? ' (quote it)' : ''}`,
          );
          return undefined;
        }
        const reason = opts?.check?.(value);
        if (reason !== undefined) {
          this.sink.error(path, `${show(value)} ${reason}`);
          return undefined;
        }
        return value;
      },
      opts,
    );
  }

  /** A string-to-string mapping such as labels or a selector. */
  stringMap(
    key: string,
    opts?: Req & { keyCheck?: StringCheck; valueCheck?: StringCheck },
  ): Readonly<Record<string, string>> | undefined {
    const f = this.object(key, opts);
    if (f === undefined) return undefined;
    const out: Record<string, string> = {};
    for (const k of f.keys()) {
      const v = f.raw(k);
      const reason = opts?.keyCheck?.(k);
      if (reason !== undefined) {
        f.error(k, `key ${show(k)} ${reason}`);
        continue;
      }
      if (typeof v !== 'string') {
        f.error(
          k,
          `${show(v)} is not a string${typeof v === 'number' || typeof v === 'boolean' ? ' (quote it)' : ''}`,
        );
        continue;
      }
      const vr = opts?.valueCheck?.(v);
      if (vr !== undefined) {
        f.error(k, `${show(v)} ${vr}`);
        continue;
      }
      out[k] = v;
    }
    return out;
  }

  /**
   * Rejects keys that are not in `known`: for kinds where an ignored typo would change what the object
   * means (a security policy matcher, a route match), an unknown field is an error, not a warning.
   */
  rejectUnknown(known: readonly string[], consequence: string): void {
    for (const k of this.keys()) {
      if (!known.includes(k))
        this.error(k, `unknown field (known fields: ${known.join(', ')}); ${consequence}`);
    }
  }

  /** A reader over the same mapping that also counts the errors reported through it. */
  counted(): { readonly f: Fields; readonly errors: () => number } {
    let n = 0;
    const sink: IssueSink = {
      error: (p, m) => {
        n++;
        this.sink.error(p, m);
      },
      warn: (p, m) => this.sink.warn(p, m),
    };
    return { f: new Fields(this.path, this.value, sink), errors: () => n };
  }

  /**
   * Warns about keys that are neither read nor known to be ignored, which are most often typos
   * (`prots:` for `ports:`); kubectl's strict field validation does the same.
   */
  expectOnly(known: readonly string[], ignored: readonly string[] = []): void {
    for (const k of this.keys()) {
      if (!known.includes(k) && !ignored.includes(k)) {
        this.sink.warn(this.at(k), `unknown field (known fields: ${known.join(', ')})`);
      }
    }
  }
}

function checkInt(
  v: unknown,
  path: FieldPath,
  sink: IssueSink,
  opts?: { min?: number; max?: number },
): number | undefined {
  if (typeof v !== 'number') {
    sink.error(path, `${show(v)} is not a number`);
    return undefined;
  }
  if (!Number.isInteger(v)) {
    sink.error(path, `${v} is not an integer`);
    return undefined;
  }
  if (opts?.min !== undefined && v < opts.min) {
    sink.error(path, `${v} is ${opts.min === 0 ? 'negative' : `below the minimum ${opts.min}`}`);
    return undefined;
  }
  if (opts?.max !== undefined && v > opts.max) {
    sink.error(path, `${v} is above the maximum ${opts.max}`);
    return undefined;
  }
  return v;
}
