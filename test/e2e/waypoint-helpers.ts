import type { LocalState } from '../../src/local/state.js';
import { runCmd } from './helpers.js';

/** One Prometheus sample, as a waypoint's metrics endpoint (15020) exposes it. */
export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** The name of the waypoint pod of `namespace` in a local cluster's state. */
export function waypointPodOf(state: LocalState, namespace: string): string {
  const p = state.pods.find((x) => x.namespace === namespace && x.name.startsWith('waypoint-'));
  if (p === undefined) throw new Error(`no waypoint pod in ${namespace}`);
  return p.name;
}

/** The labelled samples a waypoint pod serves on 15020, read from inside its network namespace. */
export async function scrapeWaypoint(cluster: string, namespace: string, pod: string): Promise<Sample[]> {
  const r = await runCmd('ip', [
    'netns',
    'exec',
    `${cluster}.pod.${namespace}.${pod}`,
    'curl',
    '-s',
    'http://127.0.0.1:15020/metrics',
  ]);
  const out: Sample[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^(\w+)\{(.*)\} ([0-9.e+-]+)$/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of m[2]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of the samples named `name` whose labels include `match`. */
export const sumSamples = (s: readonly Sample[], name: string, match: Record<string, string> = {}): number =>
  s
    .filter((x) => x.name === name && Object.entries(match).every(([k, v]) => x.labels[k] === v))
    .reduce((n, x) => n + x.value, 0);
