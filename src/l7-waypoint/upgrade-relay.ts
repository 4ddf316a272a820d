import type { Duplex } from 'node:stream';
import { applyHeaderModifier, type HeaderRecord } from '../gateway-api/route-filters.js';
import type { HeaderModifier } from '../gateway-api/types.js';
import type { RequestHead } from './exchange.js';

/*
 * The bytes of an HTTP/1.1 Upgrade as the waypoint relays them: the request head it sends on, the
 * endpoint's answer head as the client gets it, and an answer that did not switch protocols passed
 * back until it ends. (upgrade.ts decides; these only move bytes.)
 */

/** How long an answer that did not switch may go quiet before the connection is ended. */
const QUIET_MS = 10_000;

/** The request head as it goes to the endpoint (its `host` first). */
export function requestHeadText(sent: RequestHead): string {
  let text = `${sent.method} ${sent.path} HTTP/1.1\r\nhost: ${sent.authority}\r\n`;
  for (const [k, v] of Object.entries(sent.headers)) {
    if (k === 'host') continue;
    for (const one of Array.isArray(v) ? v : [v]) text += `${k}: ${one}\r\n`;
  }
  return `${text}\r\n`;
}

/** The status of an answer head (0 when it is not HTTP/1.x). */
export function answerStatus(head: Buffer): number {
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(head.toString('latin1', 0, 16))?.[1] ?? 0);
}

/**
 * An answer that did not switch protocols, passed back with `head` (already rewritten): after its
 * body when its length is known, else when the endpoint ends, breaks or goes quiet, both connections
 * end and `done` is called (once).
 */
export function relayAndClose(socket: Duplex, up: Duplex, head: Buffer, done: () => void): void {
  const headEnd = head.indexOf('\r\n\r\n') + 4;
  const length = Number(
    /\r\ncontent-length:\s*(\d+)/i.exec(head.toString('latin1', 0, headEnd))?.[1] ?? Number.NaN,
  );
  let left = Number.isFinite(length) ? length - (head.length - headEnd) : Number.POSITIVE_INFINITY;
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    socket.end();
    up.destroy();
    done();
  };
  socket.write(head);
  if (left <= 0) {
    close();
    return;
  }
  (up as Duplex & { setTimeout?: (ms: number, cb: () => void) => void }).setTimeout?.(QUIET_MS, close);
  up.on('data', (chunk: Buffer) => {
    socket.write(chunk);
    left -= chunk.length;
    if (left <= 0) close();
  });
  up.once('end', close);
  up.once('close', close);
  up.resume();
}

/**
 * The endpoint's answer head as the client gets it: the route's response header modifiers applied,
 * then the waypoint's own headers (`set-cookie` added to any the endpoint set). Unchanged when there
 * is nothing to do or its end is not in it.
 */
export function rewriteHead(
  head: Buffer,
  modifiers: readonly HeaderModifier[],
  added: Readonly<Record<string, string>>,
): Buffer {
  if (modifiers.length === 0 && Object.keys(added).length === 0) return head;
  const end = head.indexOf('\r\n\r\n');
  if (end === -1) return head;
  const [status, ...lines] = head.toString('latin1', 0, end).split('\r\n');
  const out: HeaderRecord = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i <= 0) continue;
    const k = l.slice(0, i).trim().toLowerCase();
    const v = l.slice(i + 1).trim();
    const had = out[k];
    out[k] = had === undefined ? v : [...[had].flat(), v];
  }
  for (const m of modifiers) applyHeaderModifier(out, m);
  for (const [k, v] of Object.entries(added)) {
    const had = out[k];
    out[k] = k === 'set-cookie' && had !== undefined ? [...[had].flat(), v] : v;
  }
  let text = status ?? '';
  for (const [k, v] of Object.entries(out)) for (const one of [v].flat()) text += `\r\n${k}: ${one}`;
  return Buffer.concat([Buffer.from(text, 'latin1'), head.subarray(end)]);
}
