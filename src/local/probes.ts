import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../telemetry/logger.js';
import type { NodeLayout } from './layout.js';
import type { ProbeReply, ProbeRequest } from './prober-main.js';

/**
 * The node probers: one small process per node, inside the node's network namespace (where a kubelet
 * runs its probes from), answering probe requests over IPC. Restarted when they exit.
 */
export class NodeProbers {
  private readonly probers = new Map<string, ChildProcess>();
  private readonly waiters = new Map<number, (r: ProbeReply) => void>();
  private nextId = 1;
  private stopping = false;

  constructor(
    private readonly o: {
      readonly script: string;
      readonly cgroupDir: string;
      readonly nodeDir: (node: string) => string;
      readonly log: Logger;
    },
  ) {}

  start(node: NodeLayout): void {
    mkdirSync(this.o.nodeDir(node.name), { recursive: true });
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        'echo $$ >"$0" && exec "$@"',
        join(this.o.cgroupDir, node.systemCgroup, 'cgroup.procs'),
        // nsenter, not `ip netns exec`: node daemons keep the host's mounts (/sys/fs/bpf, the cgroup tree),
        // which `ip netns exec` would hide behind a fresh /sys.
        'nsenter',
        `--net=/run/netns/${node.netns}`,
        '--',
        process.execPath,
        this.o.script,
      ],
      { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], detached: true },
    );
    child.on('message', (r: ProbeReply) => this.waiters.get(r.id)?.(r));
    child.once('exit', () => {
      this.probers.delete(node.name);
      if (!this.stopping) {
        this.o.log.warn({ node: node.name }, 'node prober exited; restarting it');
        setTimeout(() => {
          if (!this.stopping) this.start(node);
        }, 1000);
      }
    });
    this.probers.set(node.name, child);
  }

  /** Runs a probe from inside `node`; resolves with its outcome, never rejects. */
  probe(node: NodeLayout, req: Omit<ProbeRequest, 'id'>): Promise<ProbeReply> {
    const prober = this.probers.get(node.name);
    const id = this.nextId++;
    if (prober === undefined || !prober.connected)
      return Promise.resolve({ id, ok: false, message: `the prober of ${node.name} is not running` });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        resolve({ id, ok: false, message: 'probe timed out' });
      }, req.timeoutMs + 2000);
      this.waiters.set(id, (r) => {
        clearTimeout(timer);
        this.waiters.delete(id);
        resolve(r);
      });
      prober.send({ id, ...req } satisfies ProbeRequest);
    });
  }

  stop(): void {
    this.stopping = true;
    for (const p of this.probers.values()) p.kill('SIGTERM');
  }
}
