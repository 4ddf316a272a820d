import type { ServicePort } from '../config/kube-types.js';

/*
 * How a waypoint reads a stream: by what the Service port declares (its `appProtocol`, else its name's
 * prefix, as Istio reads them), else by sniffing the first bytes. Anything that is not HTTP passes
 * through as TCP.
 */

/** What a port declares, or `sniff` when it declares nothing Ambit reads. */
export type DeclaredProtocol = 'http' | 'http2' | 'grpc' | 'tcp' | 'sniff';

const APP_PROTOCOLS: Readonly<Record<string, DeclaredProtocol>> = {
  http: 'http',
  http2: 'http2',
  grpc: 'grpc',
  'grpc-web': 'http',
  'kubernetes.io/h2c': 'http2',
  'kubernetes.io/ws': 'http',
  'kubernetes.io/wss': 'tcp',
  https: 'tcp',
  tls: 'tcp',
  tcp: 'tcp',
  mysql: 'tcp',
  mongo: 'tcp',
  redis: 'tcp',
};

const NAME_PREFIXES: readonly (readonly [string, DeclaredProtocol])[] = [
  ['http2', 'http2'],
  ['grpc-web', 'http'],
  ['grpc', 'grpc'],
  ['http', 'http'],
  ['https', 'tcp'],
  ['tls', 'tcp'],
  ['tcp', 'tcp'],
];

/** The protocol a Service port declares: `appProtocol` first, then its name (`http-web`, `grpc`). */
export function declaredProtocol(
  port: Pick<ServicePort, 'name' | 'appProtocol'> | undefined,
): DeclaredProtocol {
  const app = port?.appProtocol?.toLowerCase();
  if (app !== undefined && app !== '') return APP_PROTOCOLS[app] ?? 'sniff';
  const name = port?.name?.toLowerCase() ?? '';
  for (const [prefix, p] of NAME_PREFIXES) {
    // `https` starts with `http`: longest prefixes first, and only whole-word prefixes.
    if (name === prefix || name.startsWith(`${prefix}-`)) return p;
  }
  return 'sniff';
}

/** The HTTP/2 connection preface (RFC 9113 §3.4): what a prior-knowledge client sends first. */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const METHOD_CHARS = /^[A-Z]{1,16}$/;
/** The longest an HTTP/1.1 request line is read before deciding (Envoy's detector reads about as much). */
export const SNIFF_LIMIT = 8192;

export type Sniffed = 'http1' | 'http2' | 'tcp' | 'more';

/**
 * What the first bytes of a client stream are: the HTTP/2 preface, an HTTP/1.x request line, or
 * something else (TCP). `more` asks for more bytes; a caller that gets no more in time takes TCP.
 */
export function sniffProtocol(head: Buffer): Sniffed {
  const n = Math.min(head.length, H2_PREFACE.length);
  if (head.subarray(0, n).equals(H2_PREFACE.subarray(0, n)))
    return head.length >= H2_PREFACE.length ? 'http2' : 'more';
  const space = head.indexOf(0x20);
  if (space === -1) {
    return head.length <= 16 && METHOD_CHARS.test(head.toString('latin1')) ? 'more' : 'tcp';
  }
  if (!METHOD_CHARS.test(head.toString('latin1', 0, space))) return 'tcp';
  const eol = head.indexOf('\r\n');
  if (eol === -1) return head.length >= SNIFF_LIMIT ? 'tcp' : 'more';
  return /^[A-Z]+ \S+ HTTP\/1\.[01]$/.test(head.toString('latin1', 0, eol)) ? 'http1' : 'tcp';
}
