/**
 * Durations as Gateway API writes them (GEP-2257): one to four `<number><unit>` parts, units h, m, s
 * and ms, as in `10s`, `1h30m`, `500ms`; a bare number is seconds, as kubectl's flags accept.
 * The one duration parser: flags, CLI options and route timeouts all read durations through it.
 */
const PART = /(\d{1,9})(h|ms|m|s)/y;
const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/** Milliseconds, or undefined when `text` is not a duration. */
export function parseDuration(text: string): number | undefined {
  if (/^\d{1,9}$/.test(text)) return Number(text) * 1000;
  if (text === '') return undefined;
  PART.lastIndex = 0;
  let total = 0;
  let parts = 0;
  while (PART.lastIndex < text.length) {
    const start = PART.lastIndex;
    const m = PART.exec(text);
    if (m === null || m.index !== start) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    parts++;
  }
  return parts > 4 ? undefined : total;
}

/** `90s`, `1m30s`, `250ms`: how a duration is shown back to a user. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
    ['ms', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}
