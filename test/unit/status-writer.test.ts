import { describe, expect, test } from 'vitest';
import type { MeshStatus } from '../../src/control-plane/status.js';
import { StatusWriter, stampConditions } from '../../src/control-plane/status-writer.js';
import { createRootLogger } from '../../src/telemetry/logger.js';

const T0 = '2026-12-02T03:00:00Z';
const T1 = '2026-12-02T03:05:00Z';
const cond = (type: string, status: 'True' | 'False') => ({ type, status, reason: type, message: '' });

describe('stampConditions: lastTransitionTime as metav1.Condition means it', () => {
  test.each<{
    what: string;
    prev?: ReturnType<typeof stampConditions>;
    next: ReturnType<typeof cond>[];
    times: string[];
  }>([
    { what: 'new conditions get now', next: [cond('Accepted', 'True')], times: [T1] },
    {
      what: 'an unchanged status keeps its time',
      prev: [{ ...cond('Accepted', 'True'), lastTransitionTime: T0 }],
      next: [cond('Accepted', 'True')],
      times: [T0],
    },
    {
      what: 'a status that flips gets now; the others keep theirs',
      prev: [
        { ...cond('Accepted', 'True'), lastTransitionTime: T0 },
        { ...cond('Programmed', 'False'), lastTransitionTime: T0 },
      ],
      next: [cond('Accepted', 'True'), cond('Programmed', 'True')],
      times: [T0, T1],
    },
  ])('$what', ({ prev, next, times }) => {
    expect(stampConditions(prev, next, T1).map((c) => c.lastTransitionTime)).toEqual(times);
  });
});

describe('StatusWriter: what it sends the API', () => {
  const status = (programmed: 'True' | 'False'): MeshStatus => ({
    gateways: [
      {
        namespace: 'shop',
        name: 'waypoint',
        status: {
          conditions: [cond('Accepted', 'True'), cond('Programmed', programmed)],
          addresses: [{ type: 'IPAddress', value: '10.96.0.20' }],
          listeners: [],
        },
      },
    ],
    routes: [],
  });

  test('one merge patch per changed object, to its status subresource; the same status is not sent again', async () => {
    const calls: { method: string; path: string; body: unknown; type?: string }[] = [];
    const w = new StatusWriter(
      {
        json: async (method, path, body, _signal, type) => {
          calls.push({ method, path, body, ...(type === undefined ? {} : { type }) });
          return {};
        },
      },
      createRootLogger({ name: 't', level: 'fatal' }),
      () => T0,
      1,
    );
    w.offer(status('False'));
    w.offer(status('True')); // Coalesced: only the last is written.
    await new Promise((r) => setTimeout(r, 20));
    w.offer(status('True'));
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      method: 'PATCH',
      path: '/apis/gateway.networking.k8s.io/v1/namespaces/shop/gateways/waypoint/status',
      type: 'application/merge-patch+json',
      body: {
        status: {
          addresses: [{ type: 'IPAddress', value: '10.96.0.20' }],
          conditions: [
            { type: 'Accepted', status: 'True', lastTransitionTime: T0 },
            { type: 'Programmed', status: 'True', lastTransitionTime: T0 },
          ],
        },
      },
    });
    w.close();
  });
});
