import {
  type LocalRateLimit,
  RATE_LIMIT_UNITS,
  type RateLimitClientSelector,
  type RateLimitHeaderSelector,
  type RateLimitRule,
} from '../traffic-policy/rate-limit.js';

/** `RateLimit` in ambit.proto, as proto-loader gives it. */
export interface WireRateLimit {
  rules: {
    client_selectors: {
      headers: { name: string; type: string; value: string; invert: boolean }[];
      source_cidr_type: string;
      source_cidr: string;
      source_identity_type: string;
      source_identity: string;
    }[];
    requests: number;
    unit: string;
    shared: boolean;
  }[];
}

export function encodeRateLimit(rl: LocalRateLimit): WireRateLimit {
  return {
    rules: rl.rules.map((r) => ({
      client_selectors: r.clientSelectors.map((s) => ({
        headers: s.headers.map((h) =>
          h.type === 'Distinct'
            ? { name: h.name, type: h.type, value: '', invert: false }
            : { name: h.name, type: h.type, value: h.value, invert: h.invert },
        ),
        source_cidr_type: s.sourceCIDR?.type ?? '',
        source_cidr: s.sourceCIDR?.cidr ?? '',
        source_identity_type: s.sourceIdentity?.type ?? '',
        source_identity: s.sourceIdentity?.type === 'Exact' ? s.sourceIdentity.value : '',
      })),
      requests: r.limit.requests,
      unit: r.limit.unit,
      shared: r.shared,
    })),
  };
}

const sourceType = (t: string, field: string): 'Exact' | 'Distinct' | undefined => {
  if (t === '') return undefined;
  if (t !== 'Exact' && t !== 'Distinct')
    throw new Error(`${field}: ${JSON.stringify(t)} is not Exact or Distinct`);
  return t;
};

/** Decodes and checks a RateLimit; throws with the field at fault. */
export function decodeRateLimit(w: WireRateLimit, at: string): LocalRateLimit {
  const rules = (w.rules ?? []).map((r, i): RateLimitRule => {
    const p = `${at}.rules[${i}]`;
    if (!(RATE_LIMIT_UNITS as readonly string[]).includes(r.unit))
      throw new Error(`${p}.unit: ${JSON.stringify(r.unit)} is not a rate-limit unit`);
    if (!(r.requests >= 1)) throw new Error(`${p}.requests: ${r.requests} is not a positive count`);
    const clientSelectors = (r.client_selectors ?? []).map((s, j): RateLimitClientSelector => {
      const q = `${p}.client_selectors[${j}]`;
      const headers = (s.headers ?? []).map((h, k): RateLimitHeaderSelector => {
        if (h.type === 'Distinct') return { name: h.name, type: 'Distinct' };
        if (h.type !== 'Exact' && h.type !== 'RegularExpression')
          throw new Error(`${q}.headers[${k}].type: ${JSON.stringify(h.type)} is not a header match type`);
        return { name: h.name, type: h.type, value: h.value, invert: h.invert };
      });
      const cidrType = sourceType(s.source_cidr_type, `${q}.source_cidr_type`);
      const idType = sourceType(s.source_identity_type, `${q}.source_identity_type`);
      return {
        headers,
        ...(cidrType === undefined ? {} : { sourceCIDR: { type: cidrType, cidr: s.source_cidr } }),
        ...(idType === undefined
          ? {}
          : {
              sourceIdentity:
                idType === 'Distinct' ? { type: idType } : { type: idType, value: s.source_identity },
            }),
      };
    });
    return {
      clientSelectors,
      limit: { requests: r.requests, unit: r.unit as RateLimitRule['limit']['unit'] },
      shared: r.shared,
    };
  });
  if (rules.length === 0) throw new Error(`${at}.rules: empty`);
  return { rules };
}
