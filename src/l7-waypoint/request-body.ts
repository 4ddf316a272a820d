import { PassThrough, type Readable } from 'node:stream';

/** How a request body is carried: kept whole before the first attempt, copied while it streams, or only streamed. */
export type BodyMode = 'keep-first' | 'tee' | 'stream';

/**
 * Which body mode a request gets, decided from what is known before it is read (pure):
 * - no retry is possible: stream it;
 * - a body of known size within the bound: keep it whole first (a few KiB at most; a connect failure
 *   can then be retried even under the default policy);
 * - otherwise, when the rule retries or mirrors: send it as it arrives and keep a copy up to the bound
 *   (a bidirectional stream keeps flowing; it can be sent again only if it ended within the bound);
 * - otherwise stream it.
 */
export function bodyMode(o: {
  readonly contentLength: number | undefined;
  readonly limit: number;
  readonly retries: number;
  /** The rule has a retry stanza (codes, resets) or mirrors. */
  readonly needsCopy: boolean;
}): BodyMode {
  if (o.retries === 0 && !o.needsCopy) return 'stream';
  if (o.contentLength !== undefined && o.contentLength <= o.limit) return 'keep-first';
  return o.needsCopy ? 'tee' : 'stream';
}

/**
 * A request body on its way to one or more attempts: it flows into the first attempt as it arrives,
 * counting its bytes, and (per its mode) keeps a copy up to `limit` so that a later attempt or a mirror
 * can send it again. Backpressure holds: the client is paused while the first attempt does not read.
 */
export class RequestBody {
  bytes = 0;
  private readonly live = new PassThrough();
  private chunks: Buffer[] = [];
  private keeping: boolean;
  private ended = false;
  private used = false;
  private readonly done: Promise<boolean>;

  constructor(
    source: Readable,
    readonly mode: BodyMode,
    private readonly limit: number,
  ) {
    this.keeping = mode !== 'stream';
    this.done = new Promise((resolve) => {
      source.on('data', (chunk: Buffer) => {
        this.bytes += chunk.length;
        if (this.keeping) {
          this.chunks.push(chunk);
          if (this.bytes > this.limit) {
            this.keeping = false;
            this.chunks = [];
          }
        }
        if (mode !== 'keep-first' && !this.live.write(chunk)) source.pause();
      });
      this.live.on('drain', () => source.resume());
      source.once('end', () => {
        this.ended = true;
        this.live.end();
        resolve(true);
      });
      source.once('error', (err) => {
        this.live.destroy(err);
        resolve(false);
      });
      source.once('close', () => resolve(this.ended));
    });
  }

  /** Resolves once a `keep-first` body is whole (false when the client went away first). */
  async ready(): Promise<boolean> {
    return this.mode === 'keep-first' ? this.done : true;
  }

  /** Whether a later attempt could send the body again now. */
  get state(): 'kept' | 'streamed' {
    return this.ended && this.keeping ? 'kept' : 'streamed';
  }

  /** The body for the next attempt: the stream the first time, the kept copy after (undefined: cannot). */
  forAttempt(): Buffer | Readable | undefined {
    if (this.mode === 'keep-first') return this.state === 'kept' ? Buffer.concat(this.chunks) : undefined;
    if (!this.used) {
      this.used = true;
      return this.live;
    }
    return this.state === 'kept' ? Buffer.concat(this.chunks) : undefined;
  }

  /** The whole body once it has ended within the bound (for a mirror), else undefined. */
  async whole(): Promise<Buffer | undefined> {
    await this.done;
    return this.state === 'kept' ? Buffer.concat(this.chunks) : undefined;
  }
}
