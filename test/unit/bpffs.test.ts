import { describe, expect, test } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { bpffsMounts, bpffsPlan } from '../../src/os/bpffs.js';

describe('bpffsPlan: whether the agent may mount bpffs itself', () => {
  test('read from mountinfo text', () => {
    expect(bpffsMounts('40 23 0:39 / /sys/fs/bpf rw,relatime - bpf bpf rw\n')).toEqual(['/sys/fs/bpf']);
  });

  test.each<{
    what: string;
    mounts: string[];
    mayMount: boolean;
    plan?: 'mounted' | 'mount';
    error?: string;
  }>([
    { what: 'already bpffs, as a pod', mounts: ['/sys/fs/bpf'], mayMount: false, plan: 'mounted' },
    { what: 'already bpffs, local mode', mounts: ['/sys/fs/bpf'], mayMount: true, plan: 'mounted' },
    {
      what: 'no bpffs, local mode: mounts it (the host namespace)',
      mounts: [],
      mayMount: true,
      plan: 'mount',
    },
    {
      what: 'no bpffs, as a pod: refused, a mount would be private to the container',
      mounts: [],
      mayMount: false,
      error: 'the node agent runs as a pod: a bpffs it mounted would be private to its container',
    },
    {
      what: 'a folder outside /sys/fs/bpf',
      mounts: ['/sys/fs/bpf'],
      mayMount: true,
      error: '/run/pins is not on a bpffs mount',
    },
  ])('$what', ({ mounts, mayMount, plan, error }) => {
    const dir = error?.startsWith('/run/pins') === true ? '/run/pins' : '/sys/fs/bpf/ambit';
    if (plan !== undefined) expect(bpffsPlan(dir, mounts, mayMount)).toBe(plan);
    else
      expect(() => bpffsPlan(dir, mounts, mayMount)).toThrow(
        expect.objectContaining({
          code: ErrorCode.PRECONDITION,
          message: expect.stringContaining(error ?? ''),
        }),
      );
  });
});
