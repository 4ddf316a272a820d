import {
  type ClusterConfigObject,
  type ClusterEndpointSlice,
  type ClusterNamespace,
  type ClusterNode,
  type ClusterPod,
  type ClusterResource,
  type ClusterService,
  type ClusterServiceAccount,
  namespacedName,
  resourceKey,
} from './resources.js';
import type { ClusterEvent } from './source.js';

/**
 * The cluster as the events of a source have built it, indexed the ways daemons look things up (an
 * informer's cache). Applying a batch is O(batch); nothing is rebuilt from scratch.
 */
export class ClusterStore {
  readonly namespaces = new Map<string, ClusterNamespace>();
  readonly nodes = new Map<string, ClusterNode>();
  /** By `ns/name`. */
  readonly serviceAccounts = new Map<string, ClusterServiceAccount>();
  /** By `ns/name`. */
  readonly pods = new Map<string, ClusterPod>();
  readonly services = new Map<string, ClusterService>();
  readonly slices = new Map<string, ClusterEndpointSlice>();
  /** By `Kind/ns/name`. */
  readonly config = new Map<string, ClusterConfigObject>();
  /** `ns/service` -> the keys of its EndpointSlices. */
  private readonly slicesByService = new Map<string, Set<string>>();
  /** `ns/serviceaccount` -> the keys of the pods running as it. */
  private readonly podsBySa = new Map<string, Set<string>>();

  apply(events: readonly ClusterEvent[]): void {
    for (const e of events) {
      if (e.type === 'deleted') this.remove(e.resource);
      else {
        if (e.type === 'updated') this.remove(e.previous);
        this.put(e.resource);
      }
    }
  }

  private put(r: ClusterResource): void {
    switch (r.kind) {
      case 'Namespace':
        this.namespaces.set(r.name, r);
        break;
      case 'Node':
        this.nodes.set(r.name, r);
        break;
      case 'ServiceAccount':
        this.serviceAccounts.set(namespacedName(r), r);
        break;
      case 'Pod': {
        const key = namespacedName(r);
        this.pods.set(key, r);
        index(this.podsBySa, `${r.namespace}/${r.serviceAccount}`, key);
        break;
      }
      case 'Service':
        this.services.set(namespacedName(r), r);
        break;
      case 'EndpointSlice': {
        const key = namespacedName(r);
        this.slices.set(key, r);
        index(this.slicesByService, `${r.namespace}/${r.service}`, key);
        break;
      }
      default:
        this.config.set(resourceKey(r), r);
    }
  }

  private remove(r: ClusterResource): void {
    switch (r.kind) {
      case 'Namespace':
        this.namespaces.delete(r.name);
        break;
      case 'Node':
        this.nodes.delete(r.name);
        break;
      case 'ServiceAccount':
        this.serviceAccounts.delete(namespacedName(r));
        break;
      case 'Pod': {
        const key = namespacedName(r);
        this.pods.delete(key);
        unindex(this.podsBySa, `${r.namespace}/${r.serviceAccount}`, key);
        break;
      }
      case 'Service':
        this.services.delete(namespacedName(r));
        break;
      case 'EndpointSlice': {
        const key = namespacedName(r);
        this.slices.delete(key);
        unindex(this.slicesByService, `${r.namespace}/${r.service}`, key);
        break;
      }
      default:
        this.config.delete(resourceKey(r));
    }
  }

  /** The EndpointSlices of a Service (`ns/name`). */
  slicesOf(service: string): ClusterEndpointSlice[] {
    return [...(this.slicesByService.get(service) ?? [])].flatMap((k) => this.slices.get(k) ?? []);
  }

  /** The pods running as a service account. */
  podsRunningAs(namespace: string, serviceAccount: string): ClusterPod[] {
    return [...(this.podsBySa.get(`${namespace}/${serviceAccount}`) ?? [])].flatMap(
      (k) => this.pods.get(k) ?? [],
    );
  }
}

function index(m: Map<string, Set<string>>, key: string, value: string): void {
  const s = m.get(key);
  if (s === undefined) m.set(key, new Set([value]));
  else s.add(value);
}

function unindex(m: Map<string, Set<string>>, key: string, value: string): void {
  const s = m.get(key);
  s?.delete(value);
  if (s?.size === 0) m.delete(key);
}
