import { stringify } from 'yaml';
import { parseDuration as parseDurationText } from '../config/duration.js';
import { AmbitError, ErrorCode } from '../errors.js';

export const OUTPUT_FORMATS = ['table', 'wide', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function parseOutputFormat(value: string | undefined, fallback: OutputFormat = 'table'): OutputFormat {
  if (value === undefined) return fallback;
  if ((OUTPUT_FORMATS as readonly string[]).includes(value)) return value as OutputFormat;
  throw new AmbitError(
    ErrorCode.USAGE,
    `-o ${value}: unknown output format; use one of ${OUTPUT_FORMATS.join(', ')}`,
  );
}

/** kubectl-style table: upper-case headers, columns padded to the widest cell, three spaces apart. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** Renders data as JSON or YAML (machine formats). */
export function render(data: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? JSON.stringify(data, null, 2) : stringify(data, { lineWidth: 0 }).trimEnd();
}

/** `12s`, `3m4s`, `2h5m`: kubectl's AGE column. */
export function age(fromIso: string, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - Date.parse(fromIso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 === 0 ? '' : `${s % 60}s`}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}

/** `90s`, `2m`, `1h30m`, or a plain number of seconds, in milliseconds; a usage error otherwise. */
export function parseDuration(value: string, flag: string): number {
  const ms = parseDurationText(value);
  if (ms === undefined)
    throw new AmbitError(ErrorCode.USAGE, `${flag} ${value}: not a duration (use e.g. 90s, 2m)`);
  return ms;
}
