import type { Duplex } from 'node:stream';

/** How to abort one side when the other fails: a TCP reset for sockets, a clean end for HTTP/2 streams. */
export type Abort = (side: Duplex) => void;

export const resetSocket: Abort = (s) =>
  (s as Duplex & { resetAndDestroy?: () => void }).resetAndDestroy?.() ?? s.destroy();
/** HTTP/2 streams end with END_STREAM: bursts of RST_STREAM trip nghttp2's rapid-reset guard and GOAWAY the tunnel. */
export const endStream: Abort = (s) => {
  if (!s.writableEnded) s.end();
};

/**
 * Copies bytes both ways until both sides are closed, keeping half-close (an end in one direction
 * leaves the other open). An error on one side aborts the other the way that side should be aborted.
 * `done` gets the first error, if any.
 */
export function splice(
  down: Duplex,
  up: Duplex,
  abort: { down: Abort; up: Abort },
  done: (err?: string) => void,
): void {
  let error: string | undefined;
  let closed = 0;
  const onClose = (): void => {
    if (++closed === 2) done(error);
  };
  down.once('close', onClose);
  up.once('close', onClose);
  down.on('error', (err) => {
    error ??= `downstream: ${err.message}`;
    abort.up(up);
  });
  up.on('error', (err) => {
    error ??= `upstream: ${err.message}`;
    abort.down(down);
  });
  coalesce(down, up);
  coalesce(up, down);
  down.pipe(up);
  up.pipe(down);
}

/** Chunks at least this big mark a bulk transfer, where batching pays; smaller ones are written at once. */
const BULK_CHUNK = 8192;

/**
 * Batches bulk data that arrives in one turn of the event loop into one write: an HTTP/2 stream hands
 * over each TLS record (at most 16 KB) as its own chunk, and writing each to a socket costs a syscall
 * apiece. On a big chunk the destination is corked until the loop's check phase, so the chunks of
 * that turn leave in a single writev. Small chunks (request/response traffic) are not delayed.
 * Registered before `pipe`, so the cork is in place before pipe's own `data` handler writes.
 */
function coalesce(src: Duplex, dst: Duplex): void {
  let corked = false;
  src.on('data', (chunk: Buffer) => {
    if (corked || chunk.length < BULK_CHUNK) return;
    corked = true;
    dst.cork();
    setImmediate(() => {
      corked = false;
      dst.uncork();
    });
  });
}
