import { describe, expect, test } from 'vitest';
import { foldersToKeep } from '../../src/local/pod-runtime.js';

describe('foldersToKeep: which host folders a pod sees through its private /tmp', () => {
  test.each<{ what: string; paths: string[]; keep: string[] }>([
    { what: 'an installation outside /tmp needs nothing', paths: ['/opt/ambit', '/usr/bin'], keep: [] },
    { what: 'a checkout under /tmp is kept', paths: ['/tmp/ci/ambit'], keep: ['/tmp/ci/ambit'] },
    {
      what: 'a folder inside a kept one is not bound twice',
      paths: ['/tmp/ci/ambit/node_modules/node/bin', '/tmp/ci/ambit'],
      keep: ['/tmp/ci/ambit'],
    },
    {
      what: 'a sibling with a common prefix is its own folder',
      paths: ['/tmp/a', '/tmp/ab'],
      keep: ['/tmp/a', '/tmp/ab'],
    },
    { what: 'trailing slashes and repeats collapse', paths: ['/tmp/a/', '/tmp/a'], keep: ['/tmp/a'] },
    { what: '/tmp itself is never kept (the pod would share it)', paths: ['/tmp', '/tmp/'], keep: [] },
    { what: 'a path climbing out with .. is ignored', paths: ['/tmp/../etc'], keep: [] },
  ])('$what', ({ paths, keep }) => {
    expect(foldersToKeep(paths)).toEqual(keep);
  });
});
