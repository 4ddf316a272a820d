import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { AmbitError, ErrorCode } from '../errors.js';
import { parseDuration } from './duration.js';
import { LOG_LEVELS, type LogLevel } from './log-level.js';

/** How each flag of a daemon is written: one value, a repeatable flag, or a switch. */
export type FlagKinds = Readonly<Record<string, 'string' | 'list' | 'boolean'>>;

interface From {
  /** Environment variable read when the flag is absent (a DaemonSet sets env, not argv). */
  readonly env?: string;
}

/**
 * The one flag reader of every daemon: flags with environment fallbacks, each value checked, every
 * problem collected, and one usage error that lists them all (linkerd's env.rs does the same for its
 * proxy). A daemon's `config.ts` declares its flags, reads each value once, and calls `finish`.
 */
export class DaemonFlags {
  private readonly errors: string[] = [];

  private constructor(
    private readonly daemon: string,
    private readonly values: Readonly<Record<string, string | string[] | boolean | undefined>>,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Parses argv against the declared flags; an unknown flag or a missing value is a usage error. */
  static parse(
    daemon: string,
    kinds: FlagKinds,
    argv: readonly string[],
    env: NodeJS.ProcessEnv,
  ): DaemonFlags {
    const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
    for (const [name, kind] of Object.entries(kinds)) {
      options[name] =
        kind === 'boolean' ? { type: 'boolean' } : { type: 'string', multiple: kind === 'list' };
    }
    try {
      const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
      return new DaemonFlags(
        daemon,
        values as Readonly<Record<string, string | string[] | boolean | undefined>>,
        env,
      );
    } catch (err) {
      throw new AmbitError(ErrorCode.USAGE, `${daemon} configuration: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** Records a problem found by the caller (a check across flags). */
  error(message: string): void {
    this.errors.push(message);
  }

  private raw(flag: string, from: From): string | undefined {
    const v = this.values[flag];
    if (typeof v === 'string') return v;
    const e = from.env === undefined ? undefined : this.env[from.env];
    return e === undefined || e === '' ? undefined : e;
  }

  private where(flag: string, from: From): string {
    return from.env === undefined ? `--${flag}` : `--${flag} (or ${from.env})`;
  }

  /** A required value; an empty string counts as missing. */
  required(flag: string, from: From & { check?: (v: string) => string | undefined } = {}): string {
    const v = this.raw(flag, from);
    if (v === undefined) {
      this.errors.push(`${this.where(flag, from)} is required`);
      return '';
    }
    const why = from.check?.(v);
    if (why !== undefined) this.errors.push(`--${flag} ${v}: ${why}`);
    return v;
  }

  optional(
    flag: string,
    from: From & { check?: (v: string) => string | undefined } = {},
  ): string | undefined {
    const v = this.raw(flag, from);
    const why = v === undefined ? undefined : from.check?.(v);
    if (why !== undefined) this.errors.push(`--${flag} ${v}: ${why}`);
    return v;
  }

  string(flag: string, dflt: string, from: From = {}): string {
    return this.raw(flag, from) ?? dflt;
  }

  /** A repeatable flag, or a comma-separated environment variable. */
  list(flag: string, from: From & { required?: boolean; default?: readonly string[] } = {}): string[] {
    const v = this.values[flag];
    let out: string[];
    if (Array.isArray(v)) out = v;
    else {
      const e = from.env === undefined ? undefined : this.env[from.env];
      out = (e ?? '').split(',').filter((s) => s !== '');
    }
    if (out.length === 0 && from.default !== undefined) out = [...from.default];
    if (out.length === 0 && from.required === true) this.errors.push(`${this.where(flag, from)} is required`);
    return out;
  }

  bool(flag: string): boolean {
    return this.values[flag] === true;
  }

  /** A port number; 0 (any free port) only when `min` allows it, as a listener's flag does. */
  port(flag: string, dflt: number, from: From & { min?: 0 | 1 } = {}): number {
    const v = this.raw(flag, from);
    if (v === undefined) return dflt;
    const n = /^[0-9]{1,5}$/.test(v) ? Number(v) : Number.NaN;
    if (!(n >= (from.min ?? 0) && n <= 65535)) {
      this.errors.push(`--${flag} ${v === '' ? '""' : v}: not a port number`);
      return dflt;
    }
    return n;
  }

  /** A duration (`30s`, `10m`, `24h`) in whole seconds. */
  seconds(flag: string, dflt: number, from: From = {}): number {
    const v = this.raw(flag, from);
    if (v === undefined) return dflt;
    const ms = parseDuration(v);
    if (ms === undefined) {
      this.errors.push(`--${flag} ${v}: not a duration (e.g. 30s, 10m, 24h)`);
      return dflt;
    }
    return Math.floor(ms / 1000);
  }

  /** An IP address of the given family (any family when omitted). */
  ip(value: string, flag: string, family?: 4 | 6): void {
    const f = isIP(value);
    if (f === 0 || (family !== undefined && f !== family))
      this.errors.push(`--${flag} ${value}: not an ${family === undefined ? 'IP' : `IPv${family}`} address`);
  }

  /** `--log-level` (or AMBIT_LOG_LEVEL), default info. */
  logLevel(): LogLevel {
    const v = this.raw('log-level', { env: 'AMBIT_LOG_LEVEL' }) ?? 'info';
    if (!(LOG_LEVELS as readonly string[]).includes(v)) {
      this.errors.push(`--log-level ${v}: use one of ${LOG_LEVELS.join(', ')}`);
      return 'info';
    }
    return v as LogLevel;
  }

  /** Throws one usage error naming every problem, or returns the config frozen. */
  finish<T extends object>(cfg: T): Readonly<T> {
    if (this.errors.length > 0)
      throw new AmbitError(ErrorCode.USAGE, `${this.daemon} configuration:\n  ${this.errors.join('\n  ')}`);
    return Object.freeze(cfg);
  }
}
