import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import type { ClusterResource } from '../../src/cluster/resources.js';
import type { ClusterSource } from '../../src/cluster/source.js';
import { MemoryClusterSource } from '../../src/cluster/source-memory.js';
import { agentNotReadyReason, agentReadiness } from '../../src/node/agent-ready.js';
import { AgentReadiness } from '../../src/node-agent/readiness.js';
import { createRootLogger } from '../../src/telemetry/logger.js';
import { AMBIENT_NS, snapPod } from './cluster-fixtures.js';

const log = createRootLogger({ name: 'agent-readiness-test', level: 'fatal' });
const PATH = '/var/run/ambit/agent-ready.json';
const LINKS = { connect4: [11], connect6: [12], sendmsg4: [13] };
const claim = (over: Record<string, unknown> = {}): string =>
  JSON.stringify({
    node: 'node-a',
    podsCgroup: '/sys/fs/cgroup/kubepods.slice',
    links: LINKS,
    cluster: { pods: 3, namespaces: 2, enrolled: 1 },
    readyAt: '2026-12-02T05:00:00.000Z',
    refreshedAt: '2026-12-02T05:00:00.000Z',
    ...over,
  });

describe('agentNotReadyReason (what the node proxy answers on 15021)', () => {
  test.each<{ what: string; text: string | undefined; reason: string | undefined }>([
    { what: 'a valid claim for this node', text: claim(), reason: undefined },
    {
      what: 'no file yet',
      text: undefined,
      reason: `node agent not ready: ${PATH} is missing (redirect links not attached or first cluster view not reconciled yet)`,
    },
    {
      what: 'a torn or foreign file',
      text: '{"node": "node-a", ',
      reason: `node agent not ready: ${PATH} is not JSON`,
    },
    {
      what: 'JSON but not an object',
      text: '"ready"',
      reason: `node agent not ready: ${PATH} is not a readiness claim`,
    },
    {
      what: "another node's claim (a hostPath shared by mistake)",
      text: claim({ node: 'node-b' }),
      reason: `node agent not ready: ${PATH} is for node "node-b", this proxy serves "node-a"`,
    },
    {
      what: 'no links listed',
      text: claim({ links: {} }),
      reason: `node agent not ready: ${PATH} lists no redirect links`,
    },
    {
      what: 'a link without a program',
      text: claim({ links: { ...LINKS, connect6: [] } }),
      reason: 'node agent not ready: no program attached for connect6',
    },
    {
      what: 'links of the wrong shape',
      text: claim({ links: { connect4: 11 } }),
      reason: `node agent not ready: ${PATH} is not a readiness claim (links)`,
    },
    {
      what: 'a claim without a heartbeat (refreshedAt)',
      text: claim({ refreshedAt: undefined }),
      reason: `node agent not ready: ${PATH} is not a readiness claim (refreshedAt)`,
    },
    {
      what: 'a claim refreshed 15 s ago (three heartbeats): still live',
      text: claim({ refreshedAt: '2026-12-02T04:59:55.000Z' }),
      reason: undefined,
    },
    {
      what: "a claim not refreshed for more than three heartbeats: a dead agent's",
      text: claim({ refreshedAt: '2026-12-02T04:59:54.000Z' }),
      reason: `node agent not ready: ${PATH} was last refreshed at 2026-12-02T04:59:54.000Z, 16s ago, more than 15s (the agent refreshes it every 5s: is the node agent running?)`,
    },
  ])('$what', ({ text, reason }) => {
    expect(agentNotReadyReason(text, 'node-a', PATH, new Date('2026-12-02T05:00:10.000Z'))).toBe(reason);
  });
});

describe('AgentReadiness (the agent claims readiness after its first reconciled view)', () => {
  let dir: string;
  let file: string;
  // A fresh one per test: an aborted signal would make every claim vacuously absent.
  let stop = new AbortController();
  beforeEach(() => {
    stop = new AbortController();
    dir = mkdtempSync(join(tmpdir(), 'ambit-agent-ready-'));
    file = join(dir, 'run', 'agent-ready.json');
  });
  afterEach(() => {
    stop.abort();
    rmSync(dir, { recursive: true, force: true });
  });

  const world: ClusterResource[] = [
    { kind: 'Namespace', name: 'shop', labels: AMBIENT_NS },
    snapPod('a', { node: 'node-a', ips: ['10.0.0.5'] }),
    snapPod('b', { node: 'node-a', ips: ['10.0.0.6'] }),
  ];

  function readiness(
    signal: AbortSignal,
    links: Record<string, number[]> = LINKS,
    state: { reconcileError?: string } = {},
  ): { r: AgentReadiness; clock: ManualClock } {
    const clock = new ManualClock(new Date('2026-12-02T05:00:00Z'));
    const r = new AgentReadiness(
      {
        file,
        node: 'node-a',
        podsCgroup: '/sys/fs/cgroup/kubepods.slice',
        attached: () => links,
        enrolled: () => 1,
        reconcileError: () => state.reconcileError,
        log,
        clock,
      },
      signal,
    );
    return { r, clock };
  }
  /** What the node proxy answers at the agent's clock. */
  const proxySays = (clock: ManualClock): string | undefined => agentReadiness(file, 'node-a', clock.now());

  test('not ready while the first view is being reconciled; ready with the details after; withdrawn on stop', () => {
    const agent = new AbortController();
    const { r } = readiness(agent.signal);
    const source = new MemoryClusterSource(world);
    const duringSync: (string | undefined)[] = [];
    expect(agentReadiness(file, 'node-a')).toMatch(/is missing/);
    r.tracking(source).watch(
      {
        onEvents: () => undefined,
        // The agent reconciles here: the claim must not exist yet.
        onSynced: () => duringSync.push(agentReadiness(file, 'node-a')),
      },
      agent.signal,
    );
    expect(duringSync).toEqual([expect.stringMatching(/is missing/)]);
    expect(agentReadiness(file, 'node-a', new Date('2026-12-02T05:00:01Z'))).toBeUndefined();
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({
      node: 'node-a',
      podsCgroup: '/sys/fs/cgroup/kubepods.slice',
      links: LINKS,
      cluster: { pods: 2, namespaces: 1, enrolled: 1 },
    });
    agent.abort();
    expect(existsSync(file)).toBe(false);
    expect(agentReadiness(file, 'node-a')).toMatch(/is missing/);
  });

  test('a claim left by an earlier agent is withdrawn when a new agent starts', () => {
    const first = new AbortController();
    readiness(first.signal)
      .r.tracking(new MemoryClusterSource(world))
      .watch({ onEvents: () => undefined, onSynced: () => undefined }, first.signal);
    expect(existsSync(file)).toBe(true);
    // SIGKILL: the first agent never withdraws. The next one does before it claims anything.
    readiness(stop.signal);
    expect(existsSync(file)).toBe(false);
  });

  test('no claim when the kernel shows a link without a program', () => {
    const { r } = readiness(stop.signal, { ...LINKS, sendmsg4: [] });
    r.tracking(new MemoryClusterSource(world)).watch(
      { onEvents: () => undefined, onSynced: () => undefined },
      stop.signal,
    );
    expect(existsSync(file)).toBe(false);
  });

  test('no claim before the source has synced (an API server that never answers)', () => {
    const { r } = readiness(stop.signal);
    const silent: ClusterSource = { description: 'silent', watch: () => undefined };
    r.tracking(silent).watch({ onEvents: () => undefined, onSynced: () => undefined }, stop.signal);
    expect(existsSync(file)).toBe(false);
  });

  test('the claim is refreshed on every heartbeat; once the agent stops refreshing (SIGKILL) the proxy turns not ready', () => {
    const { r, clock } = readiness(stop.signal);
    r.tracking(new MemoryClusterSource(world)).watch(
      { onEvents: () => undefined, onSynced: () => undefined },
      stop.signal,
    );
    expect(JSON.parse(readFileSync(file, 'utf8')).refreshedAt).toBe('2026-12-02T05:00:00.000Z');
    clock.advance(60_000);
    // Twelve heartbeats later the claim is still live, refreshed at the last one, with its first readyAt.
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({
      readyAt: '2026-12-02T05:00:00.000Z',
      refreshedAt: '2026-12-02T05:01:00.000Z',
    });
    expect(proxySays(clock)).toBeUndefined();
    // A killed agent: the file stays, no heartbeat comes (a clock the agent no longer runs on).
    const proxyClock = new ManualClock(clock.now());
    proxyClock.advance(15_000);
    expect(agentReadiness(file, 'node-a', proxyClock.now())).toBeUndefined();
    proxyClock.advance(1_000);
    expect(agentReadiness(file, 'node-a', proxyClock.now())).toMatch(
      /last refreshed at 2026-12-02T05:01:00.000Z, 16s ago, more than 15s .*is the node agent running\?/,
    );
  });

  test('a link that loses its program later withdraws the claim at the next heartbeat, and it comes back', () => {
    const links: Record<string, number[]> = { ...LINKS };
    const { r, clock } = readiness(stop.signal, links);
    r.tracking(new MemoryClusterSource(world)).watch(
      { onEvents: () => undefined, onSynced: () => undefined },
      stop.signal,
    );
    expect(proxySays(clock)).toBeUndefined();
    links.connect6 = [];
    clock.advance(5_000);
    expect(existsSync(file)).toBe(false);
    links.connect6 = [12];
    clock.advance(5_000);
    expect(proxySays(clock)).toBeUndefined();
    expect(JSON.parse(readFileSync(file, 'utf8')).readyAt).toBe('2026-12-02T05:00:10.000Z');
  });

  test('no claim when the first reconcile failed; claimed at the heartbeat after one succeeds', () => {
    const state: { reconcileError?: string } = { reconcileError: 'enrollment sync failed: EPERM' };
    const { r, clock } = readiness(stop.signal, LINKS, state);
    r.tracking(new MemoryClusterSource(world)).watch(
      { onEvents: () => undefined, onSynced: () => undefined },
      stop.signal,
    );
    expect(existsSync(file)).toBe(false);
    clock.advance(5_000);
    expect(existsSync(file)).toBe(false);
    delete state.reconcileError;
    clock.advance(5_000);
    expect(proxySays(clock)).toBeUndefined();
  });

  test('the claim names no pid (meaningless across containers)', () => {
    const { r } = readiness(stop.signal);
    r.tracking(new MemoryClusterSource(world)).watch(
      { onEvents: () => undefined, onSynced: () => undefined },
      stop.signal,
    );
    expect(Object.keys(JSON.parse(readFileSync(file, 'utf8'))).sort()).toEqual([
      'cluster',
      'links',
      'node',
      'podsCgroup',
      'readyAt',
      'refreshedAt',
    ]);
  });
});
