import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { AmbitError, describeError, ErrorCode, hasCode } from '../../src/errors.js';

describe('error catalog', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

  test.each(Object.values(ErrorCode))('%s is documented in docs/errors.md', (code) => {
    expect(doc).toContain(`\`${code}\``);
  });

  test('docs/errors.md documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/`(AMBIT_ERR_[A-Z_]+)`/g)].map((m) => m[1]);
    expect(documented.filter((c) => !(Object.values(ErrorCode) as string[]).includes(c!))).toEqual([]);
  });

  test('codes are unique and carry the AMBIT_ERR_ prefix', () => {
    const codes = Object.values(ErrorCode);
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) expect(c).toMatch(/^AMBIT_ERR_[A-Z_]+$/);
  });

  test('describeError follows the cause chain', () => {
    const err = new AmbitError(ErrorCode.HBONE, 'HBONE connect to 10.0.1.7:15008 failed', {
      cause: new Error('connect ECONNREFUSED'),
    });
    expect(describeError(err)).toBe('HBONE connect to 10.0.1.7:15008 failed: connect ECONNREFUSED');
    expect(hasCode(err, ErrorCode.HBONE)).toBe(true);
    expect(hasCode(new Error('x'), ErrorCode.HBONE)).toBe(false);
  });
});
