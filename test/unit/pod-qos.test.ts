import { describe, expect, test } from 'vitest';
import type { QosClass } from '../../src/config/kube-types.js';
import { parseQuantity, podQosClass, type ResourceRequirements } from '../../src/manifests/pod-qos.js';

const r = (requests: Record<string, string>, limits: Record<string, string> = {}): ResourceRequirements => ({
  requests,
  limits,
});
const FULL = r({ cpu: '500m', memory: '128Mi' }, { cpu: '500m', memory: '128Mi' });

describe('podQosClass (the kubelet rules)', () => {
  test.each<{ what: string; containers: { resources?: ResourceRequirements }[]; qos: QosClass }>([
    { what: 'no resources anywhere', containers: [{}, {}], qos: 'BestEffort' },
    {
      what: 'only other resources',
      containers: [{ resources: r({ 'ephemeral-storage': '1Gi' }) }],
      qos: 'BestEffort',
    },
    {
      what: 'zero requests count as unset',
      containers: [{ resources: r({ cpu: '0', memory: '0' }) }],
      qos: 'BestEffort',
    },
    { what: 'a cpu request only', containers: [{ resources: r({ cpu: '100m' }) }], qos: 'Burstable' },
    {
      what: 'limits equal to requests, cpu and memory',
      containers: [{ resources: FULL }],
      qos: 'Guaranteed',
    },
    {
      what: 'limits alone (requests default to them)',
      containers: [{ resources: r({}, { cpu: '1', memory: '1Gi' }) }],
      qos: 'Guaranteed',
    },
    {
      what: 'the same quantity spelt differently',
      containers: [{ resources: r({ cpu: '0.5', memory: '1024Ki' }, { cpu: '500m', memory: '1Mi' }) }],
      qos: 'Guaranteed',
    },
    {
      what: 'requests below limits',
      containers: [{ resources: r({ cpu: '250m', memory: '128Mi' }, { cpu: '500m', memory: '128Mi' }) }],
      qos: 'Burstable',
    },
    {
      what: 'a memory limit without a cpu one',
      containers: [{ resources: r({}, { memory: '1Gi' }) }],
      qos: 'Burstable',
    },
    {
      what: 'one Guaranteed container beside one without resources',
      containers: [{ resources: FULL }, {}],
      qos: 'Burstable',
    },
    {
      what: 'every container Guaranteed',
      containers: [{ resources: FULL }, { resources: FULL }],
      qos: 'Guaranteed',
    },
  ])('$what: $qos', ({ containers, qos }) => {
    expect(podQosClass(containers)).toBe(qos);
  });
});

describe('parseQuantity', () => {
  test.each<[string, number | undefined]>([
    ['1', 1],
    ['500m', 0.5],
    ['1.5', 1.5],
    ['128Mi', 128 * 2 ** 20],
    ['1G', 1e9],
    ['1e3', 1000],
    ['.5', 0.5],
    ['1mi', undefined],
    ['', undefined],
    ['ten', undefined],
  ])('%j -> %s', (q, v) => {
    expect(parseQuantity(q)).toBe(v);
  });
});
