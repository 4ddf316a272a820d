import type { WaypointRef } from '../gateway-api/waypoint.js';
import { canonicalIp } from '../net/ip.js';
import type { MeshService, MeshView, MeshWaypoint, Workload } from './view.js';
import { waypointKey } from './waypoints.js';

/** Lookups over a MeshView, built once per config version. */
export class MeshIndex {
  private readonly byIp = new Map<string, Workload>();
  private readonly byUid = new Map<string, Workload>();
  private readonly byVip = new Map<string, MeshService>();
  private readonly byHost = new Map<string, MeshService>();
  private readonly byKey = new Map<string, MeshService>();
  private readonly nodeIps = new Map<string, readonly string[]>();
  private readonly waypointsByKey = new Map<string, MeshWaypoint>();
  private readonly servicesByUid = new Map<string, MeshService[]>();

  constructor(readonly view: MeshView) {
    for (const w of view.workloads) {
      this.byUid.set(w.uid, w);
      for (const ip of w.ips) this.byIp.set(canonicalIp(ip), w);
    }
    for (const s of view.services) {
      this.byHost.set(s.hostname, s);
      this.byKey.set(`${s.namespace}/${s.name}`, s);
      for (const vip of s.vips) this.byVip.set(canonicalIp(vip), s);
      for (const e of s.endpoints) {
        const list = this.servicesByUid.get(e.workloadUid);
        if (list === undefined) this.servicesByUid.set(e.workloadUid, [s]);
        else list.push(s);
      }
    }
    for (const n of view.nodes) this.nodeIps.set(n.name, n.ips);
    for (const w of view.waypoints) this.waypointsByKey.set(waypointKey(w), w);
  }

  waypoint(ref: WaypointRef): MeshWaypoint | undefined {
    return this.waypointsByKey.get(waypointKey(ref));
  }

  /** The waypoint's pods that are ready to take traffic (the ready endpoints of its Service). */
  waypointPods(w: MeshWaypoint): Workload[] {
    const out: Workload[] = [];
    for (const e of this.byKey.get(w.service)?.endpoints ?? []) {
      const pod = this.byUid.get(e.workloadUid);
      if (e.ready && pod?.ready) out.push(pod);
    }
    return out;
  }

  service(namespace: string, name: string): MeshService | undefined {
    return this.byKey.get(`${namespace}/${name}`);
  }

  workloadByIp(ip: string): Workload | undefined {
    return this.byIp.get(canonicalIp(ip));
  }

  /** The Services a workload is an endpoint of. */
  servicesOf(uid: string): readonly MeshService[] {
    return this.servicesByUid.get(uid) ?? [];
  }

  workload(uid: string): Workload | undefined {
    return this.byUid.get(uid);
  }

  serviceByVip(ip: string): MeshService | undefined {
    return this.byVip.get(canonicalIp(ip));
  }

  serviceByHost(host: string): MeshService | undefined {
    return this.byHost.get(host);
  }

  nodeAddresses(node: string): readonly string[] {
    return this.nodeIps.get(node) ?? [];
  }

  workloadsOnNode(node: string): Workload[] {
    return this.view.workloads.filter((w) => w.node === node);
  }
}
