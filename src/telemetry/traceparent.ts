/** A W3C `traceparent` (version 00): `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`. */
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

/**
 * The trace id a request's `traceparent` carries, for the access log when tracing is off (no SDK is
 * loaded then); an all-zero id is invalid and ignored, as the W3C spec says.
 */
export function traceIdOf(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): string | undefined {
  const v = headers.traceparent;
  const m = TRACEPARENT.exec(Array.isArray(v) ? (v[0] ?? '') : (v ?? '').trim());
  return m === null || /^0+$/.test(m[1]!) ? undefined : m[1];
}
