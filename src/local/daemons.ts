import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelay, RESTART_BACKOFF } from '../net/backoff.js';
import { createCgroup } from '../os/cgroup.js';
import type { Logger } from '../telemetry/logger.js';
import { fabricNetns, type NodeLayout } from './layout.js';
import { stopProcess } from './pod-runtime.js';
import type { NodeProbers } from './probes.js';
import type { DaemonState } from './state.js';

/** A daemon the cluster runs in every node's namespace (node agent, node proxy), or once for the cluster. */
export interface NodeComponent {
  readonly name: string;
  argv(node: NodeLayout): string[];
  /** An HTTP readiness endpoint (on the node's loopback unless `host`); ready when it answers 2xx. */
  readonly readiness?: { readonly port: number; readonly path: string; readonly host?: string };
  /** Runs once for the cluster, in the fabric namespace (a control-plane node), instead of once per node. */
  readonly cluster?: boolean;
  /** The command that removes what the component installed on a node (run once the cluster stops). */
  uninstall?(node: NodeLayout): string[];
}

interface Running {
  readonly node: NodeLayout;
  readonly comp: NodeComponent;
  child?: ChildProcess;
  restarts: number;
  ready: boolean;
}

/**
 * Supervises the mesh's daemons as a kubelet supervises the DaemonSet's and the control plane's pods:
 * each runs in its node's network namespace and cgroup, logging to a file, is restarted with back-off
 * when it exits, and is ready when its readiness endpoint answers (probed from inside its node).
 */
export class DaemonSupervisor {
  private readonly running = new Map<string, Running>();
  private stopping = false;

  constructor(
    private readonly o: {
      readonly cluster: string;
      readonly cgroupDir: string;
      readonly runDir: string;
      readonly nodeDir: (node: string) => string;
      readonly probers: NodeProbers;
      readonly log: Logger;
      /** A daemon became ready or went away: the cluster's published state changes. */
      readonly onChange: () => void;
      readonly onReady: (node: NodeLayout, comp: NodeComponent) => void;
    },
  ) {}

  start(node: NodeLayout, comp: NodeComponent): void {
    // A cluster component runs in the fabric namespace, in the control cgroup, logging next to the
    // state; a node component in its node. `node` is where it is probed from.
    const cluster = comp.cluster === true;
    const key = cluster ? comp.name : `${node.name}/${comp.name}`;
    const entry = this.running.get(key) ?? { node, comp, restarts: 0, ready: false };
    entry.ready = comp.readiness === undefined;
    this.running.set(key, entry);
    const logDir = cluster ? this.o.runDir : this.o.nodeDir(node.name);
    mkdirSync(logDir, { recursive: true });
    const cgroup = cluster
      ? join(this.o.cgroupDir, 'control', comp.name)
      : join(this.o.cgroupDir, node.systemCgroup);
    createCgroup(cgroup);
    const netns = cluster ? fabricNetns(this.o.cluster) : node.netns;
    const [cmd, ...args] = comp.argv(node);
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        // $0: the cgroup to join first; $1: the log file; the rest: the daemon (it inherits this environment).
        'echo $$ >"$0" && log="$1" && shift && exec "$@" >>"$log" 2>&1',
        join(cgroup, 'cgroup.procs'),
        join(logDir, `${comp.name}.log`),
        // nsenter, not `ip netns exec`: daemons keep the host's mounts (/sys/fs/bpf, the cgroup tree),
        // which `ip netns exec` would hide behind a fresh /sys.
        'nsenter',
        `--net=/run/netns/${netns}`,
        '--',
        cmd!,
        ...args,
      ],
      { stdio: 'ignore', detached: true },
    );
    entry.child = child;
    if (comp.readiness !== undefined) void this.awaitReady(entry, child, comp.readiness);
    child.once('exit', (code, signal) => {
      delete entry.child;
      entry.ready = comp.readiness === undefined;
      if (this.stopping) return;
      entry.restarts++;
      this.o.log.warn(
        { node: node.name, component: comp.name, code, signal },
        'node component exited; restarting it',
      );
      this.o.onChange();
      setTimeout(
        () => {
          // The cluster may have begun stopping meanwhile: a daemon started now would outlive teardown.
          if (!this.stopping) this.start(node, comp);
        },
        backoffDelay(entry.restarts, RESTART_BACKOFF),
      );
    });
  }

  /** Probes a daemon's readiness endpoint from inside its node until it answers, like a kubelet would. */
  private async awaitReady(
    entry: Running,
    child: ChildProcess,
    readiness: { port: number; path: string; host?: string },
  ): Promise<void> {
    while (!this.stopping && entry.child === child) {
      const r = await this.o.probers.probe(entry.node, {
        probe: { type: 'httpGet', path: readiness.path, port: readiness.port, scheme: 'HTTP' },
        target: { ip: readiness.host ?? '127.0.0.1', cgroupDir: '', pausePid: 0 },
        timeoutMs: 1000,
      });
      if (r.ok && entry.child === child) {
        entry.ready = true;
        this.o.onReady(entry.node, entry.comp);
        this.o.onChange();
        return;
      }
      await sleep(200);
    }
  }

  /** Runs a component's uninstall command in its node's namespace and waits for it (bounded). */
  async uninstall(node: NodeLayout, comp: NodeComponent): Promise<void> {
    const argv = comp.uninstall?.(node);
    if (argv === undefined) return;
    const [cmd, ...args] = argv;
    const logFile = join(this.o.nodeDir(node.name), `${comp.name}-uninstall.log`);
    mkdirSync(this.o.nodeDir(node.name), { recursive: true });
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        'log="$0" && exec "$@" >>"$log" 2>&1',
        logFile,
        'nsenter',
        `--net=/run/netns/${node.netns}`,
        '--',
        cmd!,
        ...args,
      ],
      { stdio: 'ignore' },
    );
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
      child.once('error', () => resolve(-1));
    });
    if (code === 0) this.o.log.info({ node: node.name, component: comp.name }, 'node cleanup done');
    else this.o.log.error({ node: node.name, component: comp.name, code, logFile }, 'node cleanup failed');
  }

  get allReady(): boolean {
    return [...this.running.values()].every((e) => e.ready);
  }

  states(): DaemonState[] {
    return [...this.running.values()].map((c) => ({
      node: c.comp.cluster === true ? '' : c.node.name,
      name: c.comp.name,
      ...(c.child?.pid === undefined ? {} : { pid: c.child.pid }),
      ready: c.ready,
      restarts: c.restarts,
    }));
  }

  /** Marks the cluster as stopping (no more restarts) and stops every daemon, gracefully. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.running.values()].map((e) => (e.child === undefined ? undefined : stopProcess(e.child, 5000))),
    );
  }

  /** No restart from now on (teardown has begun). */
  freeze(): void {
    this.stopping = true;
  }
}
