import type { Labels } from '../../src/config/model.js';
import type {
  ClusterSnapshot,
  SnapshotEndpoint,
  SnapshotPod,
  SnapshotService,
} from '../../src/kube/snapshot.js';

/** Builders for cluster snapshots: small objects with defaults, overridden per test row. */

export function snapPod(name: string, over: Partial<SnapshotPod> = {}): SnapshotPod {
  return {
    uid: `uid-${name}`,
    namespace: 'shop',
    name,
    node: 'node-0',
    ips: ['10.244.0.2', 'fd00:10:244::2'],
    serviceAccount: 'default',
    labels: {},
    annotations: {},
    phase: 'Running',
    ready: true,
    hostNetwork: false,
    cgroup: `pods/shop_${name}`,
    ports: [],
    ...over,
  };
}

export function snapEndpoint(pod: string, over: Partial<SnapshotEndpoint> = {}): SnapshotEndpoint {
  return {
    podUid: `uid-${pod}`,
    pod,
    node: 'node-0',
    ips: [],
    ready: true,
    ports: {},
    ...over,
  };
}

export function snapService(name: string, over: Partial<SnapshotService> = {}): SnapshotService {
  return {
    namespace: 'shop',
    name,
    labels: {},
    annotations: {},
    vips: ['10.96.0.10'],
    ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }],
    endpoints: [],
    ...over,
  };
}

export function snapshot(over: Partial<ClusterSnapshot> = {}): ClusterSnapshot {
  return {
    revision: 'rev-1',
    namespaces: [{ name: 'shop', labels: {} }],
    nodes: [{ name: 'node-0', ip4: '172.18.0.2', ip6: 'fd00:18::2' }],
    pods: [],
    services: [],
    config: [],
    ...over,
  };
}

export const AMBIENT_NS: Labels = { 'ambit.dev/dataplane-mode': 'ambient' };
