import { isIP } from 'node:net';
import type { StringCheck } from './field-reader.js';

// Kubernetes naming rules (k8s.io/apimachinery/pkg/util/validation), restated as checks that
// return the reason a value is wrong.

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export const dns1123Label: StringCheck = (v) => {
  if (v.length > 63) return `is ${v.length} characters long; at most 63 are allowed`;
  if (!DNS1123_LABEL.test(v))
    return 'is not a valid name (lowercase letters, digits and "-", starting and ending with a letter or digit)';
  return undefined;
};

export const dns1123Subdomain: StringCheck = (v) => {
  if (v.length > 253) return `is ${v.length} characters long; at most 253 are allowed`;
  if (!DNS1123_SUBDOMAIN.test(v)) return 'is not a valid name (lowercase letters, digits, "-" and ".")';
  return undefined;
};

/** Label and annotation keys: an optional DNS subdomain prefix and a name, `app.kubernetes.io/name`. */
export const qualifiedName: StringCheck = (v) => {
  const parts = v.split('/');
  if (parts.length > 2) return 'has more than one "/"';
  const name = parts.length === 2 ? parts[1]! : parts[0]!;
  if (parts.length === 2) {
    const prefix = parts[0]!;
    if (prefix === '' || dns1123Subdomain(prefix) !== undefined)
      return 'has an invalid prefix (it must be a DNS subdomain)';
  }
  if (name.length === 0 || name.length > 63) return 'must have a name part of 1 to 63 characters';
  if (!QUALIFIED_NAME.test(name)) return 'is not a valid key (letters, digits, "-", "_" and ".")';
  return undefined;
};

export const labelValue: StringCheck = (v) => {
  if (v.length > 63) return `is ${v.length} characters long; label values allow at most 63`;
  if (!LABEL_VALUE.test(v)) return 'is not a valid label value (letters, digits, "-", "_" and ".")';
  return undefined;
};

/** Port names: at most 15 characters, lowercase, with at least one letter (IANA service name). */
export const ianaSvcName: StringCheck = (v) => {
  if (v.length > 15) return `is ${v.length} characters long; port names allow at most 15`;
  if (!IANA_SVC_NAME.test(v) || v.includes('--'))
    return 'is not a valid port name (lowercase letters, digits and "-")';
  if (!/[a-z]/.test(v)) return 'must contain at least one letter';
  return undefined;
};

export const ipAddress: StringCheck = (v) => (isIP(v) === 0 ? 'is not an IP address' : undefined);

export const cidr: StringCheck = (v) => {
  const [addr, bits, extra] = v.split('/');
  if (extra !== undefined || addr === undefined) return 'is not a CIDR (address/bits)';
  const family = isIP(addr);
  if (family === 0) return 'is not a CIDR: the address part is not an IP address';
  if (bits === undefined) return undefined;
  const n = Number(bits);
  const max = family === 4 ? 32 : 128;
  if (!/^[0-9]+$/.test(bits) || n > max) return `is not a CIDR: prefix length must be 0 to ${max}`;
  return undefined;
};

export const absolutePath: StringCheck = (v) => (v.startsWith('/') ? undefined : 'is not an absolute path');

export const envVarName: StringCheck = (v) =>
  /^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(v) ? undefined : 'is not a valid environment variable name';
