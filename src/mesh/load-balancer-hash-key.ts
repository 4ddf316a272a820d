import type { HashOn } from '../traffic-policy/balancing.js';

/** What a request offers to hash on. */
export interface HashFacts {
  /** A request header's value (several joined by `,`), by lowercase name. */
  readonly header: (name: string) => string | undefined;
  /** The `cookie` header(s) as sent (HTTP/2 may send one per cookie). */
  readonly cookies: string | readonly string[] | undefined;
  /** The client's address (the HBONE peer's, `ip:port` or `[ip]:port`). */
  readonly sourceAddress: string;
  /** The client's SPIFFE identity as its node proxy proved it. */
  readonly identity: string;
}

/** The value of a cookie in the request's cookie header(s), if sent. */
export function cookieValue(
  cookies: string | readonly string[] | undefined,
  name: string,
): string | undefined {
  if (cookies === undefined) return undefined;
  for (const line of typeof cookies === 'string' ? [cookies] : cookies)
    for (const pair of line.split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
      const v = pair.slice(eq + 1).trim();
      return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
    }
  return undefined;
}

/** The IP of `ip:port` or `[ip]:port`. */
export function ipOf(address: string): string {
  if (address.startsWith('[')) return address.slice(1, address.indexOf(']'));
  const colon = address.lastIndexOf(':');
  return colon < 0 || address.indexOf(':') !== colon ? address : address.slice(0, colon);
}

/** A `set-cookie` value the way Envoy writes its generated one: Max-Age, HttpOnly, then the attributes. */
export function setCookieValue(
  name: string,
  value: string,
  ttlMs: number,
  attributes: Readonly<Record<string, string>>,
): string {
  let s = `${name}=${value}; Max-Age=${Math.floor(ttlMs / 1000)}; HttpOnly`;
  for (const [k, v] of Object.entries(attributes)) s += v === '' ? `; ${k}` : `; ${k}=${v}`;
  return s;
}

/**
 * The key a request is hashed by, and the cookie to set when the policy hashes on a cookie the
 * request lacks and has a ttl (Envoy's generated cookie): the request is hashed by the new value, so
 * the client's next request, carrying it, lands on the same endpoint. No key: no affinity (an endpoint
 * at random).
 */
export function hashKeyOf(
  on: HashOn,
  req: HashFacts,
  newCookie: () => string,
): { readonly key?: string; readonly setCookie?: string } {
  switch (on.type) {
    case 'Header': {
      const v = req.header(on.name);
      return v === undefined ? {} : { key: v };
    }
    case 'SourceIP':
      return { key: ipOf(req.sourceAddress) };
    case 'SourceIdentity':
      return { key: req.identity };
    case 'Cookie': {
      const v = cookieValue(req.cookies, on.name);
      if (v !== undefined) return { key: v };
      if (on.ttlMs === undefined) return {};
      const value = newCookie();
      return { key: value, setCookie: setCookieValue(on.name, value, on.ttlMs, on.attributes) };
    }
  }
}
