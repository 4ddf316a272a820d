import { inCidr } from '../net/ip.js';

/*
 * Local rate limits (BackendTrafficPolicy `rateLimit.local`, after Envoy Gateway's): which rules a
 * request falls under, with the bucket key of each, and the token-bucket arithmetic. Pure: the
 * waypoint keeps the buckets (src/l7-waypoint/rate-limits.ts) and passes the time in.
 */

export const RATE_LIMIT_UNITS = ['Second', 'Minute', 'Hour', 'Day'] as const;
export type RateLimitUnit = (typeof RATE_LIMIT_UNITS)[number];
const UNIT_MS: Readonly<Record<RateLimitUnit, number>> = {
  Second: 1000,
  Minute: 60_000,
  Hour: 3_600_000,
  Day: 86_400_000,
};

/** `requests` per `unit`: also the bucket's size, so a quiet client may send that many at once. */
export interface RateLimitValue {
  readonly requests: number;
  readonly unit: RateLimitUnit;
}

/** A request header: Exact/RegularExpression select by value (or by its absence of a match, `invert`); Distinct gives each value its own bucket. */
export type RateLimitHeaderSelector =
  | {
      readonly name: string;
      readonly type: 'Exact' | 'RegularExpression';
      readonly value: string;
      readonly invert: boolean;
    }
  | { readonly name: string; readonly type: 'Distinct' };

/** Exact: every selected source shares one bucket; Distinct: each source address (or identity) has its own. */
export type SourceMatchType = 'Exact' | 'Distinct';

export interface RateLimitSourceCidr {
  readonly type: SourceMatchType;
  readonly cidr: string;
}

/**
 * Ambit's extension: the SPIFFE identity the client's node proxy proved on the HBONE connection.
 * Exact selects one identity (`value`); Distinct gives each identity its own bucket.
 */
export type RateLimitSourceIdentity =
  | { readonly type: 'Exact'; readonly value: string }
  | { readonly type: 'Distinct' };

/** All of its conditions must hold. */
export interface RateLimitClientSelector {
  readonly headers: readonly RateLimitHeaderSelector[];
  readonly sourceCIDR?: RateLimitSourceCidr;
  readonly sourceIdentity?: RateLimitSourceIdentity;
}

export interface RateLimitRule {
  /** All must hold; empty: every request. */
  readonly clientSelectors: readonly RateLimitClientSelector[];
  readonly limit: RateLimitValue;
  /**
   * Envoy Gateway's `shared`: true, one bucket for every Service the policy targets and every route;
   * false (the default), each (Service, matched route) has its own buckets.
   */
  readonly shared: boolean;
}

export interface LocalRateLimit {
  readonly rules: readonly RateLimitRule[];
}

/** What the rules can look at in a request. */
export interface RateLimitRequest {
  readonly header: (name: string) => string | undefined;
  readonly sourceIp: string;
  readonly identity: string;
  /** The Service the request goes to (hostname) and the route that matched (`kind/ns/name`), if any. */
  readonly service: string;
  readonly route?: string;
}

/** A rule that applies to a request, and the bucket it counts against. */
export interface RuleBucket {
  readonly rule: number;
  readonly key: string;
  readonly limit: RateLimitValue;
}

const bare = (identity: string): string => identity.replace(/^spiffe:\/\//, '');

/** Compiled header regexes (the parser checked them; one that does not compile matches nothing). */
const compiled = new Map<string, RegExp | null>();
function fullMatch(source: string, v: string): boolean {
  let re = compiled.get(source);
  if (re === undefined) {
    try {
      re = new RegExp(`^(?:${source})$`, 'u');
    } catch {
      re = null;
    }
    if (compiled.size >= 1024) compiled.clear();
    compiled.set(source, re);
  }
  return re?.test(v) ?? false;
}

/** The distinct parts of the bucket key when the selector holds; undefined when it does not. */
function selectorKey(s: RateLimitClientSelector, req: RateLimitRequest): string[] | undefined {
  const parts: string[] = [];
  for (const h of s.headers) {
    const v = req.header(h.name);
    if (h.type === 'Distinct') {
      if (v === undefined) return undefined;
      parts.push(`h:${h.name}=${v}`);
      continue;
    }
    const hit = v !== undefined && (h.type === 'Exact' ? v === h.value : fullMatch(h.value, v));
    if (hit === h.invert) return undefined;
  }
  const c = s.sourceCIDR;
  if (c !== undefined) {
    if (!inCidr(req.sourceIp, c.cidr)) return undefined;
    if (c.type === 'Distinct') parts.push(`ip:${req.sourceIp}`);
  }
  const id = s.sourceIdentity;
  if (id !== undefined) {
    if (id.type === 'Distinct') parts.push(`id:${req.identity}`);
    else if (bare(id.value) !== bare(req.identity)) return undefined;
  }
  return parts;
}

/**
 * The rules a request falls under, each with its bucket key: `policy`, rule index and limit (so a
 * changed limit starts a fresh bucket), the Service and route unless the rule is shared, and the
 * request's value of each Distinct selector.
 */
export function ruleBuckets(policy: string, rl: LocalRateLimit, req: RateLimitRequest): RuleBucket[] {
  const rules = ruleKeys(policy, rl);
  const out: RuleBucket[] = [];
  rl.rules.forEach((rule, i) => {
    const parts: string[] = [];
    for (const s of rule.clientSelectors) {
      const p = selectorKey(s, req);
      if (p === undefined) return;
      parts.push(...p);
    }
    const scope = rule.shared ? '*' : `${req.service}|${req.route ?? '-'}`;
    out.push({
      rule: i,
      key: `${rules[i]}|${scope}|${parts.join('|')}`,
      limit: rule.limit,
    });
  });
  return out;
}

/** The start of the bucket keys of each rule of a policy (its buckets' owner): policy, index and limit. */
export function ruleKeys(policy: string, rl: LocalRateLimit): string[] {
  return rl.rules.map((rule, i) => `${policy}|${i}|${rule.limit.requests}/${rule.limit.unit}`);
}

/** The rule a bucket key belongs to (what `ruleKeys` gives). */
export const ruleKeyOf = (bucketKey: string): string => bucketKey.split('|', 3).join('|');

/** Whether any selector of the rule gives each client its own bucket (those are the ones to bound). */
export function isDistinct(rule: RateLimitRule): boolean {
  return rule.clientSelectors.some(
    (s) =>
      s.headers.some((h) => h.type === 'Distinct') ||
      s.sourceCIDR?.type === 'Distinct' ||
      s.sourceIdentity?.type === 'Distinct',
  );
}

/** A token bucket: tokens left at time `at` (ms). Absent: full. */
export interface Bucket {
  readonly tokens: number;
  readonly at: number;
}

/** What the x-ratelimit-* headers say about a bucket (draft-polli-ratelimit-headers-03, as Envoy sends). */
export interface RateLimitStatus {
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until the bucket is full again. */
  readonly resetSeconds: number;
}

/**
 * The bucket refilled to `now`, then one token taken if there is one. It refills evenly, `requests`
 * tokens per `unit`, up to `requests` (Envoy's token bucket with max_tokens = tokens_per_fill =
 * requests and fill_interval = unit, as Envoy Gateway configures it).
 */
export function takeToken(
  bucket: Bucket | undefined,
  limit: RateLimitValue,
  now: number,
): { readonly bucket: Bucket; readonly allowed: boolean; readonly status: RateLimitStatus } {
  const cap = limit.requests;
  const perMs = cap / UNIT_MS[limit.unit];
  const filled =
    bucket === undefined ? cap : Math.min(cap, bucket.tokens + Math.max(0, now - bucket.at) * perMs);
  const allowed = filled >= 1;
  const tokens = allowed ? filled - 1 : filled;
  return {
    bucket: { tokens, at: now },
    allowed,
    status: {
      limit: cap,
      remaining: Math.floor(tokens),
      resetSeconds: perMs === 0 ? 0 : Math.ceil((cap - tokens) / perMs / 1000),
    },
  };
}

/**
 * One request against its rules' buckets, strictest rule first (as Envoy's local rate limiter does):
 * each takes a token until one is empty, and then the request is limited. The status reported is the
 * empty bucket's, or, when admitted, the one with the fewest tokens left.
 */
export function admitRequest(
  rules: readonly RuleBucket[],
  bucketOf: (key: string) => Bucket | undefined,
  now: number,
): {
  readonly allowed: boolean;
  /** The buckets to store (only those a token was taken from, or that were found empty). */
  readonly updates: ReadonlyMap<string, Bucket>;
  readonly status?: RateLimitStatus;
  /** The rule whose bucket was empty. */
  readonly limitedBy?: number;
} {
  const order = [...rules].sort(
    (a, b) => a.limit.requests / UNIT_MS[a.limit.unit] - b.limit.requests / UNIT_MS[b.limit.unit],
  );
  const updates = new Map<string, Bucket>();
  let status: RateLimitStatus | undefined;
  for (const r of order) {
    const t = takeToken(bucketOf(r.key), r.limit, now);
    updates.set(r.key, t.bucket);
    if (!t.allowed) return { allowed: false, updates, status: t.status, limitedBy: r.rule };
    if (status === undefined || t.status.remaining < status.remaining) status = t.status;
  }
  return { allowed: true, updates, ...(status === undefined ? {} : { status }) };
}

/** The draft-03 headers Envoy's local_ratelimit adds to every response of a limited route. */
export function rateLimitHeaders(s: RateLimitStatus): Record<string, string> {
  return {
    'x-ratelimit-limit': String(s.limit),
    'x-ratelimit-remaining': String(s.remaining),
    'x-ratelimit-reset': String(s.resetSeconds),
  };
}

function describeSelector(s: RateLimitClientSelector): string[] {
  const parts = s.headers.map((h) =>
    h.type === 'Distinct'
      ? `each ${h.name}`
      : `${h.name} ${h.invert ? '!' : ''}${h.type === 'Exact' ? '=' : '~'} ${JSON.stringify(h.value)}`,
  );
  if (s.sourceCIDR !== undefined)
    parts.push(
      s.sourceCIDR.type === 'Distinct'
        ? `each source IP in ${s.sourceCIDR.cidr}`
        : `source IP in ${s.sourceCIDR.cidr}`,
    );
  if (s.sourceIdentity !== undefined)
    parts.push(
      s.sourceIdentity.type === 'Distinct'
        ? 'each source identity'
        : `source identity ${s.sourceIdentity.value}`,
    );
  return parts;
}

/** `rateLimit local: 10/Second for each source identity, per route (over: 429, flag RL)`, for proxy-config. */
export function describeRateLimit(rl: LocalRateLimit): string {
  const rules = rl.rules.map((r) => {
    const sel = r.clientSelectors.flatMap(describeSelector);
    return `${r.limit.requests}/${r.limit.unit} for ${sel.length === 0 ? 'all requests' : sel.join(' and ')}${r.shared ? ', shared by every target' : ', per route'}`;
  });
  return `rateLimit local (per replica): ${rules.join('; ')} (over: 429, flag RL)`;
}
