import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { describeError } from '../errors.js';
import { type LocalState, readState } from '../local/state.js';
import type { Logger } from '../telemetry/logger.js';
import type { ClusterSnapshot } from './snapshot.js';

/** Maps a local cluster's state file to a cluster snapshot (the local stand-in for API objects). */
export function snapshotFromLocalState(state: LocalState): ClusterSnapshot {
  const uidOf = new Map(state.pods.map((p) => [`${p.namespace}/${p.name}`, p.uid]));
  const body = {
    namespaces: state.namespaces,
    nodes: state.nodes.map((n) => ({ name: n.name, ip4: n.ip4, ip6: n.ip6 })),
    pods: state.pods.map((p) => ({
      uid: p.uid,
      namespace: p.namespace,
      name: p.name,
      node: p.node,
      ips: [p.ip4, p.ip6],
      serviceAccount: p.serviceAccount,
      labels: p.labels,
      annotations: p.annotations,
      phase: p.phase,
      ready: p.ready,
      hostNetwork: false,
      cgroup: p.cgroup,
      ports: p.ports,
    })),
    services: state.services.map((s) => ({
      namespace: s.namespace,
      name: s.name,
      labels: s.labels,
      annotations: s.annotations,
      vips: s.vips,
      ports: s.ports,
      endpoints: s.endpoints.map((e) => {
        const podUid = uidOf.get(`${s.namespace}/${e.pod}`);
        return {
          ...(podUid === undefined ? {} : { podUid }),
          pod: e.pod,
          node: e.node,
          ips: [e.ip4, e.ip6],
          ready: e.ready,
          ports: e.ports,
        };
      }),
    })),
    config: state.kept.map((k) => ({
      apiVersion: k.apiVersion,
      kind: k.kind,
      namespace: k.namespace,
      name: k.name,
      file: k.file,
      line: k.line,
      body: k.body,
    })),
  };
  const revision = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
  return { revision, ...body };
}

/**
 * Watches a local cluster's state file and calls `onChange` with a new snapshot whenever its content
 * changes. A missing or unreadable file keeps the last good snapshot. Stops when `signal` aborts.
 */
export function watchLocalApi(
  statePath: string,
  log: Logger,
  onChange: (s: ClusterSnapshot) => void,
  signal: AbortSignal,
): void {
  let last = '';
  const read = (): void => {
    try {
      const state = readState(statePath);
      if (state === undefined) return;
      const snap = snapshotFromLocalState(state);
      if (snap.revision === last) return;
      last = snap.revision;
      onChange(snap);
    } catch (err) {
      log.warn(
        { err: describeError(err), file: statePath },
        'cannot read the local cluster state; keeping the last good one',
      );
    }
  };
  // The daemon replaces the file by rename, so watch the folder, not the file.
  const name = basename(statePath);
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(dirname(statePath), (_event, file) => {
    if (file !== null && file !== name) return;
    clearTimeout(timer);
    timer = setTimeout(read, 20);
  });
  // fs.watch can miss events under load; a slow poll makes sure a change is seen eventually.
  const poll = setInterval(read, 2000);
  signal.addEventListener('abort', () => {
    watcher.close();
    clearInterval(poll);
    clearTimeout(timer);
  });
  read();
}
