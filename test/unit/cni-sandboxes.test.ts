import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { AMBIENT, DATAPLANE_MODE, failClosedNamespaces, OPT_OUT } from '../../src/mesh/labels.js';
import {
  cniSandboxesFile,
  delDecision,
  SandboxRecord,
} from '../../src/node-agent/redirection/cni-sandboxes.js';

describe('delDecision: only the DEL of the sandbox that enrolled a pod unenrolls it', () => {
  test.each([
    ['the enrolling sandbox', 'sb-2', 'sb-2', true, { unenroll: true }],
    ['a stale sandbox of the same pod', 'sb-1', 'sb-2', true, { unenroll: false, reason: 'other-sandbox' }],
    [
      'a pod enrolled from the API view (no sandbox recorded)',
      'sb-1',
      undefined,
      true,
      { unenroll: false, reason: 'no-sandbox' },
    ],
    ['a pod that is not enrolled', 'sb-1', 'sb-1', false, { unenroll: false, reason: 'not-enrolled' }],
  ] as const)('%s', (_what, containerId, enrolledBy, enrolled, want) => {
    expect(delDecision(containerId, enrolledBy, enrolled)).toEqual(want);
  });
});

describe('SandboxRecord', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ambit-sandboxes-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('a restarted agent finds what its predecessor recorded', () => {
    const file = cniSandboxesFile(join(dir, 'cni.sock'));
    const first = new SandboxRecord(file);
    first.set(7n, 'sb-1');
    first.set(7n, 'sb-2');
    first.set(9n, 'sb-9');
    const again = new SandboxRecord(file);
    expect(again.sandboxOf(7n)).toBe('sb-2');
    expect(again.cgroupOf('sb-1')).toBeUndefined();
    expect(again.cgroupOf('sb-9')).toBe(9n);
    again.retain([9n]);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ version: 1, sandboxes: { '9': 'sb-9' } });
  });

  test.each([
    ['not JSON', 'garbage'],
    ['another version', '{"version":2,"sandboxes":{"7":"sb-1"}}'],
  ])('a record that is %s is ignored (no DEL then unenrolls)', (_what, text) => {
    const file = join(dir, 'r.json');
    writeFileSync(file, text);
    expect(new SandboxRecord(file).sandboxOf(7n)).toBeUndefined();
  });
});

describe('failClosedNamespaces: what the plugin fails closed for when the agent is unreachable', () => {
  const ns = (name: string, labels = {}) => ({ name, labels });
  test.each([
    ['enrolled namespaces', [ns('b', { [DATAPLANE_MODE]: AMBIENT }), ns('a')], [], ['b']],
    [
      'a namespace that is not enrolled but holds a pod that opts in',
      [ns('a')],
      [{ namespace: 'a', labels: { [DATAPLANE_MODE]: AMBIENT } }],
      ['a'],
    ],
    [
      'an opted-out pod adds nothing',
      [ns('a')],
      [{ namespace: 'a', labels: { [DATAPLANE_MODE]: OPT_OUT } }],
      [],
    ],
    [
      'each once, sorted',
      [ns('z', { [DATAPLANE_MODE]: AMBIENT })],
      [
        { namespace: 'z', labels: { [DATAPLANE_MODE]: AMBIENT } },
        { namespace: 'c', labels: { [DATAPLANE_MODE]: AMBIENT } },
      ],
      ['c', 'z'],
    ],
  ])('%s', (_what, namespaces, pods, want) => {
    expect(failClosedNamespaces(namespaces, pods)).toEqual(want);
  });
});
