/*
 * Tokens the waypoint verified recently, so that the next request with the same token skips the
 * signature check (Envoy jwt_authn's jwt_cache_config): an RS256 verification costs a few hundred
 * microseconds of the waypoint's one thread, and a client sends the same token on every request until
 * it renews it. Only verified tokens are kept; a hit holds while the token has not expired (with the
 * same clock skew as a full check) and the key set it was verified with is still the one in use (a
 * JWKS refresh or a changed inline JWKS starts afresh, so a key removed from the JWKS is not trusted
 * from the cache). Bounded: least recently used first out, and long tokens are not kept.
 */

/** Verified tokens kept per waypoint replica (Envoy's default jwt_cache_size is 100; a mesh has more clients). */
export const VERIFIED_TOKENS_MAX = 1000;
/** Tokens longer than this are verified every time (they would make the cache's memory unbounded). */
export const VERIFIED_TOKEN_MAX_LENGTH = 4096;

interface Entry {
  /** The key set the token was verified with (compared by identity). */
  readonly keys: object;
  readonly payload: Readonly<Record<string, unknown>>;
  /** `exp` in seconds, when the token has one. */
  readonly exp?: number;
}

export class VerifiedTokens {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly skewSeconds: number,
    private readonly max = VERIFIED_TOKENS_MAX,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * The claims of `token`, verified under the rule `ruleKey` with `keys`, while they still hold at
   * `nowMs`; undefined when it must be verified (again).
   */
  get(
    ruleKey: string,
    token: string,
    keys: object,
    nowMs: number,
  ): Readonly<Record<string, unknown>> | undefined {
    const k = `${ruleKey}\n${token}`;
    const e = this.entries.get(k);
    if (e === undefined) return undefined;
    // As jose's check: expired once exp <= now - tolerance (seconds).
    if (e.keys !== keys || (e.exp !== undefined && e.exp <= Math.floor(nowMs / 1000) - this.skewSeconds)) {
      this.entries.delete(k);
      return undefined;
    }
    this.entries.delete(k);
    this.entries.set(k, e);
    return e.payload;
  }

  /** Keeps a token that was just verified. */
  put(ruleKey: string, token: string, keys: object, payload: Readonly<Record<string, unknown>>): void {
    if (token.length > VERIFIED_TOKEN_MAX_LENGTH) return;
    const k = `${ruleKey}\n${token}`;
    this.entries.delete(k);
    this.entries.set(k, {
      keys,
      payload,
      ...(typeof payload.exp === 'number' ? { exp: payload.exp } : {}),
    });
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}
