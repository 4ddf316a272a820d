import { createLocalJWKSet, errors, type JSONWebKeySet, jwtVerify } from 'jose';
import type { Counter } from 'prom-client';
import { type Clock, systemClock } from '../clock.js';
import type { JwtFailure, TokenResult } from '../mesh/authn-jwt.js';
import type { JwtRule } from '../policy/types.js';
import type { Logger } from '../telemetry/logger.js';
import { VerifiedTokens } from './verified-tokens.js';

/*
 * The waypoint's JWT key sets and signature checks (jose). A `jwksUri` is fetched on first use, kept,
 * refreshed in the background every REFRESH_MS while a policy uses it, and fetched again when a token
 * names a key it does not have (a rotation), at most once per KID_MISS_COOLDOWN_MS. A failed refresh
 * keeps the last good keys. Verified tokens are kept for their next request (verified-tokens.ts).
 */

/** Envoy's default JWKS cache duration. */
export const REFRESH_MS = 10 * 60_000;
/** A token with an unknown `kid` makes a fetch at most this often per URI. */
export const KID_MISS_COOLDOWN_MS = 5_000;
/** Envoy jwt_authn's default clock skew allowance. */
const CLOCK_SKEW_S = 60;

type KeySet = ReturnType<typeof createLocalJWKSet>;

/** Fetches a JWKS document; throws on failure. */
export type JwksFetch = (uri: string, timeoutMs: number) => Promise<JSONWebKeySet>;

export const httpFetchJwks: JwksFetch = async (uri, timeoutMs) => {
  const r = await fetch(uri, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  if (!r.ok) throw new Error(`${uri} answered ${r.status}`);
  return (await r.json()) as JSONWebKeySet;
};

interface Remote {
  keys?: KeySet;
  kids: readonly string[];
  fetchedAt?: Date;
  lastError?: string;
  lastAttempt?: Date;
  inflight?: Promise<void>;
  timeoutMs: number;
  fetches: number;
}

/** What `proxy-config` shows of one JWKS URI. */
export interface JwksState {
  readonly uri: string;
  readonly kids: readonly string[];
  readonly fetchedAt?: string;
  readonly lastError?: string;
  readonly fetches: number;
}

export class JwksCache {
  private readonly remotes = new Map<string, Remote>();
  private readonly inline = new Map<string, KeySet>();
  private readonly clock: Clock;
  private readonly fetchJwks: JwksFetch;
  private timer: { cancel(): void } | undefined;
  private readonly verified = new VerifiedTokens(CLOCK_SKEW_S);
  /** What a token's verification depends on in its rule besides the keys: the issuer and audiences. */
  private readonly ruleKeys = new WeakMap<JwtRule, string>();

  constructor(
    private readonly opts: {
      readonly log: Logger;
      readonly fetch?: JwksFetch;
      readonly clock?: Clock;
      /** Fetches by result (success, failed): Envoy's jwks_fetch_success / jwks_fetch_failed. */
      readonly fetched?: Counter<'result'>;
    },
  ) {
    this.clock = opts.clock ?? systemClock;
    this.fetchJwks = opts.fetch ?? httpFetchJwks;
  }

  /** Keeps the URIs in use (and their refresh), drops the others. */
  retain(rules: readonly JwtRule[]): void {
    const uris = new Set(rules.flatMap((r) => (r.jwks.kind === 'uri' ? [r.jwks.uri] : [])));
    for (const u of this.remotes.keys()) if (!uris.has(u)) this.remotes.delete(u);
    const inl = new Set(rules.flatMap((r) => (r.jwks.kind === 'inline' ? [r.jwks.json] : [])));
    for (const j of this.inline.keys()) if (!inl.has(j)) this.inline.delete(j);
    if (this.remotes.size > 0 && this.timer === undefined) this.arm();
  }

  private arm(): void {
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      for (const [uri, r] of this.remotes) void this.refresh(uri, r);
      if (this.remotes.size > 0) this.arm();
    }, REFRESH_MS);
  }

  close(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  states(): JwksState[] {
    return [...this.remotes].map(([uri, r]) => ({
      uri,
      kids: r.kids,
      ...(r.fetchedAt === undefined ? {} : { fetchedAt: r.fetchedAt.toISOString() }),
      ...(r.lastError === undefined ? {} : { lastError: r.lastError }),
      fetches: r.fetches,
    }));
  }

  private refresh(uri: string, r: Remote): Promise<void> {
    r.inflight ??= (async () => {
      r.lastAttempt = this.clock.now();
      r.fetches++;
      try {
        const doc = await this.fetchJwks(uri, r.timeoutMs);
        r.keys = createLocalJWKSet(doc);
        r.kids = (doc.keys ?? []).flatMap((k) => (typeof k.kid === 'string' ? [k.kid] : []));
        r.fetchedAt = this.clock.now();
        delete r.lastError;
        this.opts.fetched?.inc({ result: 'success' });
      } catch (err) {
        r.lastError = (err as Error).message;
        this.opts.fetched?.inc({ result: 'failed' });
        this.opts.log.warn(
          { jwks_uri: uri, reason: r.lastError },
          'JWKS fetch failed; keeping the last keys',
        );
      } finally {
        r.inflight = undefined;
      }
    })();
    return r.inflight;
  }

  private remote(uri: string, timeoutMs: number): Remote {
    let r = this.remotes.get(uri);
    if (r === undefined) {
      r = { kids: [], timeoutMs, fetches: 0 };
      this.remotes.set(uri, r);
      if (this.timer === undefined) this.arm();
    }
    return r;
  }

  /** The key set of a rule; undefined with the reason when a URI's keys could never be fetched. */
  private async keysOf(rule: JwtRule): Promise<KeySet | { error: string }> {
    if (rule.jwks.kind === 'inline') {
      let k = this.inline.get(rule.jwks.json);
      if (k === undefined) {
        k = createLocalJWKSet(JSON.parse(rule.jwks.json) as JSONWebKeySet);
        this.inline.set(rule.jwks.json, k);
      }
      return k;
    }
    const r = this.remote(rule.jwks.uri, rule.timeoutMs);
    if (r.keys === undefined) await this.refresh(rule.jwks.uri, r);
    return r.keys ?? { error: r.lastError ?? 'no keys' };
  }

  /** A fetch for a `kid` the keys lack, unless one was made within the cooldown; true when one was made. */
  private async kidMiss(rule: JwtRule): Promise<boolean> {
    if (rule.jwks.kind !== 'uri') return false;
    const r = this.remote(rule.jwks.uri, rule.timeoutMs);
    const last = r.lastAttempt?.getTime() ?? 0;
    if (r.inflight === undefined && this.clock.now().getTime() - last < KID_MISS_COOLDOWN_MS) return false;
    await this.refresh(rule.jwks.uri, r);
    return true;
  }

  /** The tokens verified and kept (for `proxy-config authn`). */
  get verifiedTokens(): number {
    return this.verified.size;
  }

  private ruleKey(rule: JwtRule): string {
    let k = this.ruleKeys.get(rule);
    if (k === undefined) {
      k = JSON.stringify([rule.issuer, rule.audiences ?? null]);
      this.ruleKeys.set(rule, k);
    }
    return k;
  }

  /**
   * Verifies a token against its rule: signature, `iss`, `aud` (when the rule lists audiences), `exp`
   * and `nbf`; a token verified before with the same keys, not expired since, is taken as verified.
   */
  async verify(rule: JwtRule, token: string): Promise<TokenResult> {
    for (let attempt = 0; ; attempt++) {
      const keys = await this.keysOf(rule);
      if ('error' in keys) return { ok: false, failure: 'jwks-fetch-failed', detail: keys.error };
      const ruleKey = this.ruleKey(rule);
      const kept = this.verified.get(ruleKey, token, keys, this.clock.now().getTime());
      if (kept !== undefined) return { ok: true, payload: kept };
      try {
        const { payload } = await jwtVerify(token, keys, {
          issuer: rule.issuer,
          ...(rule.audiences === undefined ? {} : { audience: [...rule.audiences] }),
          clockTolerance: CLOCK_SKEW_S,
          currentDate: this.clock.now(),
        });
        this.verified.put(ruleKey, token, keys, payload as Record<string, unknown>);
        return { ok: true, payload: payload as Record<string, unknown> };
      } catch (err) {
        if (err instanceof errors.JWKSNoMatchingKey && attempt === 0 && (await this.kidMiss(rule))) continue;
        return failureOf(err);
      }
    }
  }
}

/** jose's errors as Envoy's statuses. */
export function failureOf(err: unknown): TokenResult {
  const fail = (failure: JwtFailure, detail?: string): TokenResult => ({
    ok: false,
    failure,
    ...(detail === undefined ? {} : { detail }),
  });
  if (err instanceof errors.JWTExpired) return fail('expired', err.message);
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' || err.claim === 'iat') return fail('not-yet-valid', err.message);
    if (err.claim === 'aud') return fail('audience-not-allowed', err.message);
    if (err.claim === 'iss') return fail('issuer-not-configured', err.message);
    return fail('malformed', err.message);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return fail('bad-signature');
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys)
    return fail('unknown-key', err.message);
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported)
    return fail('unknown-key', (err as Error).message);
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid)
    return fail('malformed', (err as Error).message);
  return fail('bad-signature', (err as Error).message);
}
