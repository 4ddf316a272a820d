import type { Fields } from '../config/field-reader.js';
import { show } from '../config/issue.js';
import { onlyKeys, type PolicyMeta, parseSelector } from './parse-authorization-policy.js';
import type { MtlsMode, PeerAuthentication } from './types.js';

const MTLS_MODES = ['STRICT', 'PERMISSIVE', 'DISABLE', 'UNSET'] as const;

function parseMode(f: Fields | undefined): MtlsMode | undefined {
  if (f === undefined) return undefined;
  onlyKeys(f, ['mode']);
  const mode = f.oneOf('mode', MTLS_MODES);
  return mode === 'UNSET' ? undefined : mode;
}

/**
 * Reads a PeerAuthentication spec: `mtls.mode` (UNSET or absent inherits) and `portLevelMtls`, which
 * Istio allows only on a policy with a selector. Returns undefined when any error was reported.
 */
export function parsePeerAuthentication(
  spec: Fields | undefined,
  meta: PolicyMeta,
): PeerAuthentication | undefined {
  const head = { kind: 'PeerAuthentication', namespace: meta.namespace, name: meta.name } as const;
  if (spec === undefined) return head;
  const { f, errors } = spec.counted();
  onlyKeys(f, ['selector', 'mtls', 'portLevelMtls']);
  const selector = parseSelector(f);
  const mode = parseMode(f.object('mtls'));
  const levels = f.object('portLevelMtls');
  const portLevel: Record<string, MtlsMode> = {};
  if (levels !== undefined) {
    for (const k of levels.keys()) {
      // YAML reads `8080:` as a number and `"8080":` as a string; both arrive as the key "8080".
      const n = Number(k);
      const p = /^[0-9]+$/.test(k) && n >= 1 && n <= 65535 ? n : undefined;
      if (p === undefined) levels.error(k, `key ${show(k)} is not a port number (1 to 65535)`);
      // A port without a mode (or UNSET) inherits the policy's mode.
      const m = parseMode(levels.object(k, { required: true }));
      if (p !== undefined && m !== undefined) portLevel[String(p)] = m;
    }
    if (levels.keys().length > 0 && selector === undefined)
      f.error('portLevelMtls', 'needs a selector: Istio applies port-level mTLS only to selected workloads');
  }
  if (errors() > 0) return undefined;
  return {
    ...head,
    ...(selector === undefined ? {} : { selector }),
    ...(mode === undefined ? {} : { mode }),
    ...(Object.keys(portLevel).length === 0 ? {} : { portLevel }),
  };
}
