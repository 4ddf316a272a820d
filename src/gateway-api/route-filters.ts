import type { Random } from './backend-pick.js';
import { pathPrefixMatches } from './route-match.js';
import type { HeaderModifier, PathMatch, PathModifier, RequestRedirect, UrlRewrite } from './types.js';

/*
 * What HTTPRoute filters do to a request or a response, as pure functions over plain values: the
 * proxy reads the request into these shapes, applies the filters of the matched rule (and of the
 * chosen backendRef), and writes the result back.
 */

/**
 * Headers keyed by lowercase name. A repeated header is an array of its field values, one per field
 * line, as Node's `IncomingMessage.headersDistinct` gives them and `setHeader` writes them.
 */
export type HeaderRecord = Record<string, string | string[]>;

/**
 * Applies a RequestHeaderModifier or ResponseHeaderModifier to `headers`, in place, in Envoy's order
 * (which Istio's translation relies on): `remove` first, then `set` (replaces every value of the
 * header), then `add`. `add` appends one more field value, as an array, rather than comma-joining
 * into the existing value: RFC 9110 §5.3 makes the two equivalent for list headers (the
 * HTTPRouteRequestHeaderModifier conformance test reads `some-other-value,add-appends-values` either
 * way), and `set-cookie`, which a ResponseHeaderModifier may add, must never be comma-joined.
 */
export function applyHeaderModifier(headers: HeaderRecord, mod: HeaderModifier): void {
  for (const name of mod.remove) delete headers[name];
  for (const { name, value } of mod.set) headers[name] = value;
  for (const { name, value } of mod.add) {
    const old = headers[name];
    headers[name] = old === undefined ? value : typeof old === 'string' ? [old, value] : [...old, value];
  }
}

/**
 * The path after a ReplaceFullPath or ReplacePrefixMatch modifier. ReplacePrefixMatch replaces the
 * matched PathPrefix, whole path elements, trailing `/` of the prefix and of the replacement
 * ignored, as the table in HTTPPathModifier.ReplacePrefixMatch says:
 * `/foo/bar` with prefix `/foo` and replacement `/xyz` or `/xyz/` is `/xyz/bar`; `/foo/` is `/xyz/`;
 * an empty or `/` replacement strips the prefix (`/foo/bar` -> `/bar`, `/foo` -> `/`). A path the
 * prefix does not match (only possible with a match other than the rule's PathPrefix, which the
 * parser refuses) is left as it is.
 */
export function modifiedPath(path: string, modifier: PathModifier, match: PathMatch): string {
  if (modifier.type === 'ReplaceFullPath') return modifier.value;
  if (match.type !== 'PathPrefix' || !pathPrefixMatches(match.value, path)) return path;
  const prefix = stripTrailingSlash(match.value);
  const rest = path.slice(prefix.length);
  const out = stripTrailingSlash(modifier.value) + rest;
  return out === '' ? '/' : out.startsWith('/') ? out : `/${out}`;
}

/** `/foo/` -> `/foo`, `/` -> `` (so that `/` + rest keeps rest's leading `/`). */
function stripTrailingSlash(v: string): string {
  return v.endsWith('/') ? v.slice(0, -1) : v;
}

const WELL_KNOWN_PORT = { http: 80, https: 443 } as const;

/** What a redirect needs to know of the request. */
export interface RedirectRequestFacts {
  readonly scheme: 'http' | 'https';
  /** The Host header's host, without its port. */
  readonly host: string;
  /** The port the request was addressed to (the Service port: the mesh's "listener port"). */
  readonly port: number;
  /** Without the query. */
  readonly path: string;
  /** `''` or `?a=b`, kept as it is in the Location. */
  readonly query: string;
}

/**
 * The response of a RequestRedirect filter (HTTPRequestRedirectFilter):
 * - scheme and hostname from the filter, else the request's;
 * - port from the filter; else, when the filter sets a scheme, that scheme's well-known port (80,
 *   443) even when it is the request's own scheme; else the port the request was addressed to;
 * - the port is left out of the Location when it is the scheme's well-known one;
 * - the path rewritten by the filter's path modifier (see `modifiedPath`), the query kept;
 * - the filter's status code (302 unless it says otherwise).
 */
export function redirectLocation(
  req: RedirectRequestFacts,
  redirect: RequestRedirect,
  match: PathMatch,
): { readonly status: number; readonly location: string } {
  const scheme = redirect.scheme ?? req.scheme;
  const port = redirect.port ?? (redirect.scheme === undefined ? req.port : WELL_KNOWN_PORT[scheme]);
  const host = redirect.hostname ?? req.host;
  const authority = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const portPart = port === WELL_KNOWN_PORT[scheme] ? '' : `:${port}`;
  const path = redirect.path === undefined ? req.path : modifiedPath(req.path, redirect.path, match);
  return { status: redirect.statusCode, location: `${scheme}://${authority}${portPart}${path}${req.query}` };
}

/**
 * The request after a URLRewrite filter: the Host header replaced by the filter's hostname, the path
 * (without the query, which the caller keeps) rewritten by its path modifier (see `modifiedPath`).
 */
export function rewriteRequest(
  req: { readonly host: string; readonly path: string },
  rewrite: UrlRewrite,
  match: PathMatch,
): { readonly host: string; readonly path: string } {
  return {
    host: rewrite.hostname ?? req.host,
    path: rewrite.path === undefined ? req.path : modifiedPath(req.path, rewrite.path, match),
  };
}

/**
 * Whether this request is mirrored by a RequestMirror filter of `fraction` (0 to 1): never at 0,
 * always at 1, else with that probability. `random` returns a number in [0, 1), like `Math.random`.
 */
export function mirrorChosen(fraction: number, random: Random): boolean {
  if (fraction >= 1) return true;
  if (fraction <= 0) return false;
  return random() < fraction;
}
