import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { podCommand, startPause, stopProcess } from '../../src/local/pod-runtime.js';
import { createCgroup, detectCgroup2Root, removeCgroupTree } from '../../src/os/cgroup.js';
import { runCmd } from './helpers.js';

/*
 * A local pod's filesystem, on the real kernel: its /tmp is its own, and a host folder under /tmp that
 * pods must run from (the Ambit installation, when a checkout lives there) is bound back read-only.
 */

const NETNS = 'ambit-sbtest';
let cgroupDir = '';
let hostDir = '';
let podDir = '';
let pause: ChildProcess | undefined;

function inPod(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [cmd, ...args] = podCommand({ cgroupDir }, pause!.pid!, '/', ['/bin/sh', '-c', script]);
  return runCmd(cmd!, args);
}

describe('local pod sandbox filesystem', () => {
  beforeAll(async () => {
    const root = detectCgroup2Root();
    if (root === undefined)
      throw new Error('no cgroup2 hierarchy is mounted: the privileged tests cannot run');
    cgroupDir = join(root, NETNS);
    createCgroup(cgroupDir);
    await runCmd('ip', ['netns', 'del', NETNS]); // a leftover of an interrupted run
  }, 20_000);

  afterAll(async () => {
    if (pause !== undefined) await stopProcess(pause, 2_000);
    removeCgroupTree(cgroupDir);
    await runCmd('ip', ['netns', 'del', NETNS]);
    for (const d of [hostDir, podDir]) if (d !== '') rmSync(d, { recursive: true, force: true });
  });

  test('a kept folder under /tmp is readable and read-only in the pod; the rest of /tmp is the pod own', async () => {
    hostDir = mkdtempSync('/tmp/ambit-sbtest-');
    mkdirSync(join(hostDir, 'install'));
    writeFileSync(join(hostDir, 'install', 'main.js'), 'the installation\n');
    writeFileSync(join(hostDir, 'secret'), 'not for pods\n');
    podDir = mkdtempSync('/var/tmp/ambit-sbtest-pod-');
    await runCmd('ip', ['netns', 'add', NETNS]);
    pause = await startPause({
      netns: NETNS,
      cgroupDir,
      sandboxCgroupDir: join(cgroupDir, 'sandbox'),
      podDir,
      keep: [join(hostDir, 'install')],
    });

    const read = await inPod(`cat ${hostDir}/install/main.js`);
    expect(read).toMatchObject({ code: 0, stdout: 'the installation\n' });
    const write = await inPod(`echo x > ${hostDir}/install/new`);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/Read-only file system/);
    const hidden = await inPod(`cat ${hostDir}/secret`);
    expect(hidden.code).not.toBe(0);
    const own = await inPod(`echo mine > /tmp/${NETNS}-own && cat /tmp/${NETNS}-own`);
    expect(own).toMatchObject({ code: 0, stdout: 'mine\n' });
    // Nothing of the pod's filesystem reached the host.
    expect(existsSync(`/tmp/${NETNS}-own`)).toBe(false);
    expect(existsSync(join(hostDir, 'install', 'new'))).toBe(false);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(hostDir);
  });
});
