import { describe, expect, test } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import {
  classifyTransportError,
  OUTCOMES,
  type Outcome,
  outcomeInfo,
  outcomeOfHboneStatus,
  ResponseFlag,
} from '../../src/telemetry/outcomes.js';

describe('the outcome table', () => {
  test('every outcome has a known response flag, an HTTP status and a cataloged error code', () => {
    const flags = new Set<string>(Object.values(ResponseFlag));
    const codes = new Set<string>(Object.values(ErrorCode));
    for (const [name, info] of Object.entries(OUTCOMES)) {
      expect(flags.has(info.flag), `${name} flag ${info.flag}`).toBe(true);
      expect(codes.has(info.code), `${name} code ${info.code}`).toBe(true);
      expect(info.hboneStatus >= 400 && info.hboneStatus < 600, `${name} status`).toBe(true);
    }
  });

  test('a status tells a client one outcome: at most one row claims each status', () => {
    const claims = new Map<number, string[]>();
    for (const [name, info] of Object.entries(OUTCOMES)) {
      if (info.seenByClientAs !== undefined)
        claims.set(info.hboneStatus, [...(claims.get(info.hboneStatus) ?? []), name]);
    }
    for (const [status, names] of claims) expect(names, `status ${status}`).toHaveLength(1);
  });

  test.each<[Outcome, string, number]>([
    ['no-config', 'NR', 503],
    ['no-route', 'NR', 400],
    ['no-healthy-upstream', 'UH', 503],
    ['not-redirected', 'NR', 400],
    ['unknown-source', 'IDENTITY_ERROR', 400],
    ['wrong-destination-identity', 'NR', 400],
    ['denied', 'DENY', 401],
    ['upstream-failure', 'UF', 503],
    ['tunnel-failure', 'CONNECT', 502],
    ['tls-failure', 'TLS_FAILURE', 502],
    ['peer-identity-error', 'IDENTITY_ERROR', 502],
  ])('%s: flag %s, HBONE status %i', (outcome, flag, status) => {
    expect(outcomeInfo(outcome).flag).toBe(flag);
    expect(outcomeInfo(outcome).hboneStatus).toBe(status);
  });

  test.each<[number, Outcome, string]>([
    [401, 'denied', 'DENY'],
    [503, 'upstream-failure', 'UF'],
    [400, 'tunnel-refused', 'CONNECT'],
    [404, 'tunnel-refused', 'CONNECT'],
    [500, 'tunnel-refused', 'CONNECT'],
  ])('an HBONE client answered %i sees %s (%s)', (status, outcome, flag) => {
    expect(outcomeOfHboneStatus(status)).toBe(outcome);
    expect(outcomeInfo(outcomeOfHboneStatus(status)).flag).toBe(flag);
  });
});

describe('classifyTransportError: by error code, never by message', () => {
  const err = (code: string | undefined, message = 'irrelevant') =>
    Object.assign(new Error(message), code === undefined ? {} : { code });
  test.each<[string, unknown, 'tls-failure' | 'tunnel-failure']>([
    ['an OpenSSL alert', err('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'), 'tls-failure'],
    ['a bad certificate alert', err('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE'), 'tls-failure'],
    ['Node refusing the peer name', err('ERR_TLS_CERT_ALTNAME_INVALID'), 'tls-failure'],
    ['an expired server certificate', err('CERT_HAS_EXPIRED'), 'tls-failure'],
    ['an unknown CA', err('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'tls-failure'],
    ['a self-signed root', err('SELF_SIGNED_CERT_IN_CHAIN'), 'tls-failure'],
    ['connection refused', err('ECONNREFUSED'), 'tunnel-failure'],
    ['reset during the handshake', err('ECONNRESET'), 'tunnel-failure'],
    ['a timeout', err('ETIMEDOUT'), 'tunnel-failure'],
    ['no code, whatever the message says', err(undefined, 'ssl certificate alert'), 'tunnel-failure'],
    ['not an error at all', 'boom', 'tunnel-failure'],
  ])('%s -> %s', (_what, e, want) => {
    expect(classifyTransportError(e)).toBe(want);
  });
});
