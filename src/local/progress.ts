import { appendFileSync, closeSync, openSync, readSync, statSync } from 'node:fs';

/**
 * The local daemon's progress, for `ambit local up` to show: one JSON object per line in its own file
 * (a structured channel; the daemon's log is for people and may change shape).
 */
export interface ProgressEvent {
  readonly time: string;
  /**
   * `step` while starting; `error` for a problem the cluster goes on from (a pod that cannot be made
   * is retried); `ready` once every pod and daemon is ready; `failed` when the start failed.
   */
  readonly event: 'step' | 'error' | 'ready' | 'failed';
  readonly message: string;
}

export class ProgressChannel {
  constructor(private readonly path: string) {}

  emit(event: ProgressEvent['event'], message: string): void {
    const line: ProgressEvent = { time: new Date().toISOString(), event, message };
    appendFileSync(this.path, `${JSON.stringify(line)}\n`);
  }
}

/** Reads the events written after `offset` (whole lines only); returns them and the new offset. */
export function readProgress(path: string, offset: number): { events: ProgressEvent[]; offset: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { events: [], offset };
  }
  try {
    const size = statSync(path).size;
    if (size <= offset) return { events: [], offset };
    const buf = Buffer.alloc(size - offset);
    const n = readSync(fd, buf, 0, buf.length, offset);
    const text = buf.subarray(0, n).toString('utf8');
    const end = text.lastIndexOf('\n');
    if (end < 0) return { events: [], offset };
    const events: ProgressEvent[] = [];
    for (const line of text.slice(0, end).split('\n')) {
      try {
        events.push(JSON.parse(line) as ProgressEvent);
      } catch {
        // a line that is not an event is skipped; the channel is written only by the daemon
      }
    }
    return { events, offset: offset + Buffer.byteLength(text.slice(0, end + 1)) };
  } finally {
    closeSync(fd);
  }
}
