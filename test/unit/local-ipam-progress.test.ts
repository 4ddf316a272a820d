import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { ProgressChannel, readProgress } from '../../src/local/progress.js';
import { VipAllocator } from '../../src/local/service-ipam.js';

describe('VipAllocator: Service VIPs from the layout’s ranges', () => {
  test('the lowest free number, both families from it; a Service keeps its VIPs; headless gets none', () => {
    const a = new VipAllocator();
    expect(a.vipsFor({ key: 'shop/a', ipFamilies: ['IPv4', 'IPv6'] })).toEqual({
      vips: ['10.96.0.10', 'fd00:10:96::a'],
    });
    expect(a.vipsFor({ key: 'shop/b', ipFamilies: ['IPv6'] })).toEqual({ vips: ['fd00:10:96::b'] });
    expect(a.vipsFor({ key: 'shop/a', ipFamilies: ['IPv4', 'IPv6'] })).toEqual({
      vips: ['10.96.0.10', 'fd00:10:96::a'],
    });
    expect(a.vipsFor({ key: 'shop/h', clusterIP: 'None', ipFamilies: ['IPv4'] })).toEqual({ vips: [] });
  });

  test.each<{ what: string; clusterIP: string; vips: string[]; problem?: RegExp }>([
    { what: 'a fixed clusterIP in the range', clusterIP: '10.96.1.2', vips: ['10.96.1.2'] },
    {
      what: 'a fixed clusterIP outside the range',
      clusterIP: '10.97.0.1',
      vips: ['10.96.0.10'],
      problem: /outside 10\.96\.0\.0\/16 or taken/,
    },
    {
      what: 'a fixed clusterIP below the first VIP',
      clusterIP: '10.96.0.1',
      vips: ['10.96.0.10'],
      problem: /outside/,
    },
  ])('$what', ({ clusterIP, vips, problem }) => {
    const r = new VipAllocator().vipsFor({ key: 'shop/x', clusterIP, ipFamilies: ['IPv4'] });
    expect(r.vips).toEqual(vips);
    if (problem === undefined) expect(r.problem).toBeUndefined();
    else expect(r.problem).toMatch(problem);
  });

  test('a taken fixed clusterIP gets another; a removed Service frees its number', () => {
    const a = new VipAllocator();
    a.vipsFor({ key: 'shop/a', clusterIP: '10.96.0.10', ipFamilies: ['IPv4'] });
    expect(a.vipsFor({ key: 'shop/b', clusterIP: '10.96.0.10', ipFamilies: ['IPv4'] }).vips).toEqual([
      '10.96.0.11',
    ]);
    a.retain(new Set(['shop/b']));
    expect(a.vipsFor({ key: 'shop/c', ipFamilies: ['IPv4'] }).vips).toEqual(['10.96.0.10']);
  });
});

describe('the progress channel of `ambit local up`', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-progress-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('events are read once each, in order; a half-written line waits for its end', () => {
    const path = join(dir, 'progress.jsonl');
    expect(readProgress(path, 0)).toEqual({ events: [], offset: 0 });
    const ch = new ProgressChannel(path);
    ch.emit('step', 'creating 2 nodes');
    ch.emit('error', 'cannot create pod shop/x');
    let r = readProgress(path, 0);
    expect(r.events.map((e) => `${e.event}: ${e.message}`)).toEqual([
      'step: creating 2 nodes',
      'error: cannot create pod shop/x',
    ]);
    appendFileSync(path, '{"time":"2026-01-01T00:00:00Z","event":"re');
    const again = readProgress(path, r.offset);
    expect(again.events).toEqual([]);
    expect(again.offset).toBe(r.offset);
    appendFileSync(path, 'ady","message":"all 3 pods are ready"}\n');
    r = readProgress(path, r.offset);
    expect(r.events).toEqual([
      { time: '2026-01-01T00:00:00Z', event: 'ready', message: 'all 3 pods are ready' },
    ]);
  });
});
