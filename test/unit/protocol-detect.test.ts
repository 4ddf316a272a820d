import { describe, expect, test } from 'vitest';
import type { ServicePort } from '../../src/config/kube-types.js';
import {
  type DeclaredProtocol,
  declaredProtocol,
  H2_PREFACE,
  SNIFF_LIMIT,
  type Sniffed,
  sniffProtocol,
} from '../../src/mesh/protocol.js';

describe('declaredProtocol: what a Service port says it speaks', () => {
  test.each<{
    what: string;
    port: Pick<ServicePort, 'name' | 'appProtocol'> | undefined;
    expected: DeclaredProtocol;
  }>([
    { what: 'no port at all', port: undefined, expected: 'sniff' },
    { what: 'an unnamed port without appProtocol', port: {}, expected: 'sniff' },
    { what: 'appProtocol http', port: { appProtocol: 'http' }, expected: 'http' },
    { what: 'appProtocol http2', port: { appProtocol: 'http2' }, expected: 'http2' },
    { what: 'appProtocol grpc', port: { appProtocol: 'grpc' }, expected: 'grpc' },
    { what: 'appProtocol grpc-web is HTTP/1.1', port: { appProtocol: 'grpc-web' }, expected: 'http' },
    { what: 'appProtocol kubernetes.io/h2c', port: { appProtocol: 'kubernetes.io/h2c' }, expected: 'http2' },
    { what: 'appProtocol kubernetes.io/ws', port: { appProtocol: 'kubernetes.io/ws' }, expected: 'http' },
    {
      what: 'appProtocol kubernetes.io/wss is TLS',
      port: { appProtocol: 'kubernetes.io/wss' },
      expected: 'tcp',
    },
    { what: 'appProtocol https is opaque TLS', port: { appProtocol: 'https' }, expected: 'tcp' },
    { what: 'appProtocol tls', port: { appProtocol: 'tls' }, expected: 'tcp' },
    { what: 'appProtocol tcp', port: { appProtocol: 'tcp' }, expected: 'tcp' },
    { what: 'appProtocol mysql', port: { appProtocol: 'mysql' }, expected: 'tcp' },
    { what: 'appProtocol redis', port: { appProtocol: 'redis' }, expected: 'tcp' },
    { what: 'appProtocol is case-insensitive', port: { appProtocol: 'HTTP2' }, expected: 'http2' },
    {
      what: 'appProtocol wins over the name (tcp over http-)',
      port: { name: 'http-web', appProtocol: 'tcp' },
      expected: 'tcp',
    },
    {
      what: 'appProtocol wins over the name (grpc over tcp-)',
      port: { name: 'tcp-db', appProtocol: 'grpc' },
      expected: 'grpc',
    },
    {
      what: 'an unknown appProtocol sniffs, even with a telling name (as Istio)',
      port: { name: 'http-web', appProtocol: 'example.com/custom' },
      expected: 'sniff',
    },
    {
      what: 'an empty appProtocol falls back to the name',
      port: { name: 'grpc-api', appProtocol: '' },
      expected: 'grpc',
    },
    { what: 'name http', port: { name: 'http' }, expected: 'http' },
    { what: 'name http-web', port: { name: 'http-web' }, expected: 'http' },
    { what: 'name http2-web', port: { name: 'http2-web' }, expected: 'http2' },
    { what: 'name http2', port: { name: 'http2' }, expected: 'http2' },
    { what: 'name grpc', port: { name: 'grpc' }, expected: 'grpc' },
    { what: 'name grpc-api', port: { name: 'grpc-api' }, expected: 'grpc' },
    { what: 'name grpc-web is HTTP/1.1, not gRPC', port: { name: 'grpc-web' }, expected: 'http' },
    { what: 'name grpc-web-ui is HTTP/1.1', port: { name: 'grpc-web-ui' }, expected: 'http' },
    { what: 'name https is TLS, not HTTP', port: { name: 'https' }, expected: 'tcp' },
    { what: 'name https-admin is TLS, not HTTP', port: { name: 'https-admin' }, expected: 'tcp' },
    { what: 'name tls-db', port: { name: 'tls-db' }, expected: 'tcp' },
    { what: 'name tcp-db', port: { name: 'tcp-db' }, expected: 'tcp' },
    { what: 'name prefixes are case-insensitive', port: { name: 'HTTP-Web' }, expected: 'http' },
    { what: 'a prefix must be a whole word: httpbin', port: { name: 'httpbin' }, expected: 'sniff' },
    { what: 'a prefix must be a whole word: grpcapi', port: { name: 'grpcapi' }, expected: 'sniff' },
    { what: 'a prefix must be a whole word: tcpdump', port: { name: 'tcpdump' }, expected: 'sniff' },
    { what: 'a prefix elsewhere in the name does not count', port: { name: 'web-http' }, expected: 'sniff' },
    { what: 'an unknown name', port: { name: 'web' }, expected: 'sniff' },
  ])('$what', ({ port, expected }) => {
    expect(declaredProtocol(port)).toBe(expected);
  });
});

const text = (s: string): Buffer => Buffer.from(s, 'latin1');
/** The first bytes of a TLS 1.2/1.3 ClientHello record (handshake, legacy version, length, ClientHello, random...). */
const CLIENT_HELLO = Buffer.from([
  0x16,
  0x03,
  0x01,
  0x02,
  0x00,
  0x01,
  0x00,
  0x01,
  0xfc,
  0x03,
  0x03,
  ...new Array<number>(32).fill(0x41),
  // session id length 32 (a 0x20 byte, the ASCII space), then the session id
  0x20,
  ...new Array<number>(32).fill(0x42),
  0x00,
  0x3e,
  0x13,
  0x02,
  0x13,
  0x03,
]);

describe('sniffProtocol: what the first bytes of a client stream are', () => {
  test.each<{ what: string; head: Buffer; expected: Sniffed }>([
    { what: 'nothing yet', head: Buffer.alloc(0), expected: 'more' },
    { what: 'the whole HTTP/2 preface', head: H2_PREFACE, expected: 'http2' },
    {
      what: 'the HTTP/2 preface followed by a SETTINGS frame',
      head: Buffer.concat([H2_PREFACE, Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]),
      expected: 'http2',
    },
    { what: 'the first byte of the preface', head: text('P'), expected: 'more' },
    { what: 'the preface up to its request line', head: text('PRI * HTTP/2.0\r\n'), expected: 'more' },
    {
      what: 'the preface one byte short',
      head: H2_PREFACE.subarray(0, H2_PREFACE.length - 1),
      expected: 'more',
    },
    {
      what: 'the preface request line with a wrong tail is not HTTP/2 (nor HTTP/1)',
      head: text('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n'),
      expected: 'tcp',
    },
    { what: 'an HTTP/1.1 request line', head: text('GET / HTTP/1.1\r\n'), expected: 'http1' },
    {
      what: 'an HTTP/1.1 request with headers',
      head: text('POST /api/orders?x=1 HTTP/1.1\r\nhost: web\r\ncontent-length: 2\r\n\r\n{}'),
      expected: 'http1',
    },
    { what: 'an HTTP/1.0 request line', head: text('GET /index.html HTTP/1.0\r\n\r\n'), expected: 'http1' },
    { what: 'PUT starts like PRI but is HTTP/1.1', head: text('PUT /x HTTP/1.1\r\n'), expected: 'http1' },
    {
      what: 'PATCH starts like the preface for one byte',
      head: text('PATCH /x HTTP/1.1\r\n'),
      expected: 'http1',
    },
    { what: 'OPTIONS with an asterisk target', head: text('OPTIONS * HTTP/1.1\r\n'), expected: 'http1' },
    {
      what: 'CONNECT with an authority target',
      head: text('CONNECT web:443 HTTP/1.1\r\n'),
      expected: 'http1',
    },
    { what: 'a method alone', head: text('GET'), expected: 'more' },
    { what: 'a method and its space', head: text('GET '), expected: 'more' },
    { what: 'a request line without its version', head: text('GET /index.html'), expected: 'more' },
    { what: 'a request line without CRLF', head: text('GET / HTTP/1.1'), expected: 'more' },
    { what: 'a request line with only CR', head: text('GET / HTTP/1.1\r'), expected: 'more' },
    {
      what: 'HTTP/2.0 in an HTTP/1 request line is not HTTP/1',
      head: text('GET / HTTP/2.0\r\n'),
      expected: 'tcp',
    },
    { what: 'HTTP/1.2 is not an HTTP/1.x Ambit reads', head: text('GET / HTTP/1.2\r\n'), expected: 'tcp' },
    { what: 'a lowercase method', head: text('get / HTTP/1.1\r\n'), expected: 'tcp' },
    { what: 'a lowercase method alone', head: text('get'), expected: 'tcp' },
    {
      what: 'a request line with two spaces between parts',
      head: text('GET  / HTTP/1.1\r\n'),
      expected: 'tcp',
    },
    { what: 'a request line without a target', head: text('GET HTTP/1.1\r\n'), expected: 'tcp' },
    {
      what: 'a "method" longer than 16 letters',
      head: text('ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n'),
      expected: 'tcp',
    },
    {
      what: 'upper-case letters without a space past 16 bytes',
      head: text('ABCDEFGHIJKLMNOPQ'),
      expected: 'tcp',
    },
    {
      what: 'a TLS ClientHello (its session id length is a space byte)',
      head: CLIENT_HELLO,
      expected: 'tcp',
    },
    { what: 'the first 5 bytes of a TLS record', head: CLIENT_HELLO.subarray(0, 5), expected: 'tcp' },
    { what: 'a TLS ClientHello first byte alone', head: CLIENT_HELLO.subarray(0, 1), expected: 'tcp' },
    { what: 'an SSH banner', head: text('SSH-2.0-OpenSSH_9.6\r\n'), expected: 'tcp' },
    { what: 'a short SSH banner', head: text('SSH-2.0-x\r\n'), expected: 'tcp' },
    {
      what: 'an SMTP command after a server greeting',
      head: text('EHLO client.example\r\n'),
      expected: 'tcp',
    },
    { what: 'a Redis inline command', head: text('PING\r\n'), expected: 'tcp' },
    { what: 'a Redis RESP array', head: text('*1\r\n$4\r\nPING\r\n'), expected: 'tcp' },
    {
      what: 'a PostgreSQL startup message',
      head: Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]),
      expected: 'tcp',
    },
    {
      what: `a request line that reaches SNIFF_LIMIT (${SNIFF_LIMIT} bytes) without CRLF`,
      head: text(`GET /${'a'.repeat(SNIFF_LIMIT - 5)}`),
      expected: 'tcp',
    },
    {
      what: 'far past SNIFF_LIMIT without CRLF',
      head: text(`GET /${'a'.repeat(SNIFF_LIMIT * 2)}`),
      expected: 'tcp',
    },
    {
      what: 'one byte short of SNIFF_LIMIT without CRLF still asks for more',
      head: text(`GET /${'a'.repeat(SNIFF_LIMIT - 6)}`),
      expected: 'more',
    },
  ])('$what', ({ head, expected }) => {
    expect(sniffProtocol(head)).toBe(expected);
  });

  test('a request line read byte by byte asks for more until its CRLF, then is HTTP/1', () => {
    const line = text('DELETE /orders/7 HTTP/1.1\r\n');
    const seen = new Set<Sniffed>();
    for (let n = 1; n < line.length; n++) seen.add(sniffProtocol(line.subarray(0, n)));
    expect([...seen]).toEqual(['more']);
    expect(sniffProtocol(line)).toBe('http1');
  });

  test('the HTTP/2 preface read byte by byte asks for more until it is whole', () => {
    const seen = new Set<Sniffed>();
    for (let n = 1; n < H2_PREFACE.length; n++) seen.add(sniffProtocol(H2_PREFACE.subarray(0, n)));
    expect([...seen]).toEqual(['more']);
    expect(sniffProtocol(H2_PREFACE)).toBe('http2');
  });
});
