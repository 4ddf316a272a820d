import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { type BodyMode, bodyMode, RequestBody } from '../../src/l7-waypoint/request-body.js';
import { FastCounter, FastHistogram } from '../../src/telemetry/series.js';
import { traceIdOf } from '../../src/telemetry/traceparent.js';

describe('bodyMode: how a request body travels', () => {
  test.each<{ what: string; contentLength?: number; retries: number; needsCopy: boolean; mode: BodyMode }>([
    {
      what: 'no retries and no mirror: streamed',
      contentLength: 10,
      retries: 0,
      needsCopy: false,
      mode: 'stream',
    },
    {
      what: 'default policy, a small body of known size: read whole first',
      contentLength: 100,
      retries: 2,
      needsCopy: false,
      mode: 'keep-first',
    },
    {
      what: 'default policy, a body at the bound: read whole first',
      contentLength: 65536,
      retries: 2,
      needsCopy: false,
      mode: 'keep-first',
    },
    {
      what: 'default policy, a body over the bound: streamed',
      contentLength: 65537,
      retries: 2,
      needsCopy: false,
      mode: 'stream',
    },
    {
      what: 'default policy, unknown size (chunked, a gRPC stream): streamed, never held',
      retries: 2,
      needsCopy: false,
      mode: 'stream',
    },
    {
      what: 'a retry stanza, unknown size: sent as it arrives with a copy kept',
      retries: 3,
      needsCopy: true,
      mode: 'tee',
    },
    {
      what: 'a mirror without retries, unknown size: a copy for the mirror',
      retries: 0,
      needsCopy: true,
      mode: 'tee',
    },
    {
      what: 'a retry stanza, known small size: read whole first',
      contentLength: 10,
      retries: 3,
      needsCopy: true,
      mode: 'keep-first',
    },
    {
      what: 'a retry stanza, known size over the bound: a copy is tried (it will not fit)',
      contentLength: 1 << 20,
      retries: 3,
      needsCopy: true,
      mode: 'tee',
    },
  ])('$what', ({ contentLength, retries, needsCopy, mode }) => {
    expect(bodyMode({ contentLength, limit: 65536, retries, needsCopy })).toBe(mode);
  });
});

describe('RequestBody', () => {
  const collect = async (r: NodeJS.ReadableStream): Promise<string> => {
    let s = '';
    for await (const c of r) s += String(c);
    return s;
  };

  test('tee: the first attempt gets the stream as it arrives; a body that ended within the bound can be sent again', async () => {
    const src = new PassThrough();
    const body = new RequestBody(src, 'tee', 16);
    const first = body.forAttempt() as NodeJS.ReadableStream;
    src.write('hello ');
    src.end('world');
    expect(await collect(first)).toBe('hello world');
    expect(body.state).toBe('kept');
    expect(String(body.forAttempt())).toBe('hello world');
    expect(body.bytes).toBe(11);
  });

  test('tee: a body past the bound streams on but cannot be sent again (nor mirrored)', async () => {
    const src = new PassThrough();
    const body = new RequestBody(src, 'tee', 4);
    const first = body.forAttempt() as NodeJS.ReadableStream;
    src.end('more than four');
    expect(await collect(first)).toBe('more than four');
    expect(body.state).toBe('streamed');
    expect(body.forAttempt()).toBeUndefined();
    expect(await body.whole()).toBeUndefined();
  });

  test('tee: while the body has not ended, a retry cannot resend it (a bidirectional stream is never held)', async () => {
    const src = new PassThrough();
    const body = new RequestBody(src, 'tee', 1024);
    const first = body.forAttempt() as NodeJS.ReadableStream;
    src.write('ping');
    const got = await new Promise<string>((r) => first.once('data', (c) => r(String(c))));
    expect(got).toBe('ping');
    expect(body.state).toBe('streamed');
    expect(body.forAttempt()).toBeUndefined();
    src.end();
  });

  test('keep-first: ready once whole; every attempt gets the same bytes; a client that leaves is not ready', async () => {
    const src = new PassThrough();
    const body = new RequestBody(src, 'keep-first', 1024);
    src.end('{"a":1}');
    expect(await body.ready()).toBe(true);
    expect(String(body.forAttempt())).toBe('{"a":1}');
    expect(String(body.forAttempt())).toBe('{"a":1}');
    const gone = new PassThrough();
    const half = new RequestBody(gone, 'keep-first', 1024);
    gone.write('{"a"');
    gone.destroy();
    expect(await half.ready()).toBe(false);
  });
});

describe('fast series export like prom-client', () => {
  test('a counter and a histogram render as Prometheus text with cumulative buckets, +Inf, sum and count', async () => {
    const registry = new Registry();
    const c = new FastCounter('x_requests_total', 'requests', registry);
    const h = new FastHistogram('x_duration_ms', 'duration', [1, 10], registry);
    const labels = () => ({ code: '200' });
    c.series('a', labels).inc();
    c.series('a', labels).inc(2);
    const s = h.series('a', labels);
    s.observe(0.5);
    s.observe(5);
    s.observe(50);
    const text = await registry.metrics();
    expect(text).toContain('x_requests_total{code="200"} 3');
    expect(text).toContain('x_duration_ms_bucket{le="1",code="200"} 1');
    expect(text).toContain('x_duration_ms_bucket{le="10",code="200"} 2');
    expect(text).toContain('x_duration_ms_bucket{le="+Inf",code="200"} 3');
    expect(text).toContain('x_duration_ms_sum{code="200"} 55.5');
    expect(text).toContain('x_duration_ms_count{code="200"} 3');
    expect(text).toContain('# TYPE x_duration_ms histogram');
  });
});

describe('traceIdOf', () => {
  test.each<{ what: string; header?: string | string[]; id?: string }>([
    {
      what: 'a sampled traceparent',
      header: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      id: '4bf92f3577b34da6a3ce929d0e0e4736',
    },
    {
      what: 'not sampled: still a trace id',
      header: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00',
      id: '4bf92f3577b34da6a3ce929d0e0e4736',
    },
    {
      what: 'the all-zero trace id is invalid',
      header: '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    },
    {
      what: 'upper case is not the format',
      header: '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
    },
    { what: 'garbage', header: 'hello' },
    { what: 'absent' },
    {
      what: 'repeated: the first',
      header: ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'x'],
      id: '4bf92f3577b34da6a3ce929d0e0e4736',
    },
  ])('$what', ({ header, id }) => {
    expect(traceIdOf(header === undefined ? {} : { traceparent: header })).toBe(id);
  });
});
