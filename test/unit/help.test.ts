import { describe, expect, test } from 'vitest';
import { helpFor } from '../../src/ctl/help.js';

describe('helpFor', () => {
  test.each([
    [['explain', '--help'], 'Usage: ambit explain <source-pod>'],
    [['proxy-config', 'workloads', '-h'], 'Usage: ambit proxy-config'],
    [['check', '--help'], 'Usage: ambit check'],
    [['local', 'up', '--help'], 'Usage: ambit local <command>'],
    [['install', '--help'], 'Usage: ambit install [--dry-run]'],
    [['uninstall', '-h'], 'Usage: ambit uninstall'],
    [['namespace', 'enroll', '--help'], 'Usage: ambit namespace enroll|unenroll'],
  ])('%j prints that command’s usage', (argv, start) => {
    expect(helpFor(argv)).toMatch(new RegExp(`^${start.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });

  test.each([
    [['local', 'exec', 'client', '--', 'curl', '--help']],
    [['explain', 'client', 'backend:8080']],
    [[]],
  ])('%j is not a help request', (argv) => {
    expect(helpFor(argv)).toBeUndefined();
  });
});
