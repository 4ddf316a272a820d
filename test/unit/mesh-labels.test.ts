import { describe, expect, test } from 'vitest';
import type { Labels } from '../../src/manifests/model.js';
import { isAmbient } from '../../src/mesh/labels.js';

const MODE = 'ambit.dev/dataplane-mode';

describe('isAmbient', () => {
  test.each<{ what: string; ns: Labels | undefined; pod: Labels; ambient: boolean }>([
    { what: 'namespace labelled ambient', ns: { [MODE]: 'ambient' }, pod: {}, ambient: true },
    { what: 'namespace without the label', ns: {}, pod: {}, ambient: false },
    { what: 'unknown namespace', ns: undefined, pod: {}, ambient: false },
    { what: 'namespace with another mode', ns: { [MODE]: 'sidecar' }, pod: {}, ambient: false },
    { what: 'value is case-sensitive', ns: { [MODE]: 'Ambient' }, pod: {}, ambient: false },
    { what: 'pod opts out with none', ns: { [MODE]: 'ambient' }, pod: { [MODE]: 'none' }, ambient: false },
    { what: 'pod-level ambient in a plain namespace', ns: {}, pod: { [MODE]: 'ambient' }, ambient: true },
    {
      what: 'pod-level ambient in an unknown namespace',
      ns: undefined,
      pod: { [MODE]: 'ambient' },
      ambient: true,
    },
    {
      what: 'pod with another value follows the namespace',
      ns: { [MODE]: 'ambient' },
      pod: { [MODE]: 'other' },
      ambient: true,
    },
    { what: 'pod opt-out in a plain namespace', ns: {}, pod: { [MODE]: 'none' }, ambient: false },
    {
      what: 'other labels do not matter',
      ns: { [MODE]: 'ambient', team: 'a' },
      pod: { app: 'web' },
      ambient: true,
    },
  ])('$what -> $ambient', ({ ns, pod, ambient }) => {
    expect(isAmbient(ns, pod)).toBe(ambient);
  });
});
