import { setTimeout as sleep } from 'node:timers/promises';
import { parseKubeObject } from '../../cluster/kube-objects.js';
import type { ClusterPod } from '../../cluster/resources.js';
import type { ClusterStore } from '../../cluster/store.js';
import type { Labels } from '../../config/kube-types.js';
import type { Logger } from '../../telemetry/logger.js';
import type { PodLookup } from './cni-calls.js';

/** One GET against the Kubernetes API: the object, or undefined when it does not exist (404). */
export type KubeGet = (path: string) => Promise<unknown>;

/** How long a CNI call waits for its pod to reach the agent's view or the API, and how often it looks. */
export const POD_LOOKUP_WAIT_MS = 5_000;
const POD_LOOKUP_POLL_MS = 250;

/**
 * Finds the pod of a CNI call: in the agent's API view (the watch usually has it: the kubelet starts a
 * pod only after the API server has it), else with a GET, which also covers a watch that lags. Both are
 * retried until the bound, since a runtime may call before either has caught up.
 */
export function podLookup(
  store: ClusterStore,
  get: KubeGet,
  log: Logger,
  waitMs = POD_LOOKUP_WAIT_MS,
): PodLookup {
  const fromStore = (ns: string, name: string, uid: string | undefined): ClusterPod | undefined => {
    const p = store.pods.get(`${ns}/${name}`);
    return p !== undefined && (uid === undefined || p.uid === uid) ? p : undefined;
  };
  return {
    async pod(ns, name, uid) {
      const deadline = Date.now() + waitMs;
      for (;;) {
        const cached = fromStore(ns, name, uid);
        if (cached !== undefined) return cached;
        try {
          const raw = await get(
            `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}`,
          );
          if (raw !== undefined) {
            const parsed = parseKubeObject(raw);
            if (
              'resource' in parsed &&
              parsed.resource.kind === 'Pod' &&
              (uid === undefined || parsed.resource.uid === uid)
            )
              return parsed.resource;
          }
        } catch (err) {
          log.debug({ err, pod: `${ns}/${name}` }, 'pod lookup in the API failed; retrying');
        }
        if (Date.now() + POD_LOOKUP_POLL_MS > deadline) return fromStore(ns, name, uid);
        await sleep(POD_LOOKUP_POLL_MS);
      }
    },
    // Not found is an answer; an API that cannot be asked is not (the call fails and is retried).
    async namespaceLabels(ns): Promise<Labels | undefined> {
      const cached = store.namespaces.get(ns);
      if (cached !== undefined) return cached.labels;
      const raw = await get(`/api/v1/namespaces/${encodeURIComponent(ns)}`);
      if (raw === undefined) return undefined;
      const parsed = parseKubeObject(raw);
      return 'resource' in parsed && parsed.resource.kind === 'Namespace'
        ? parsed.resource.labels
        : undefined;
    },
  };
}
