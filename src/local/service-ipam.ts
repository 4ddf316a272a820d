import { inCidr } from '../net/ip.js';
import { SERVICE_CIDR_V4, SERVICE_HOST_MAX, SERVICE_HOST_MIN, serviceAddresses } from './layout.js';
import { allocate } from './scheduler.js';

export interface VipRequest {
  /** `ns/name`. */
  readonly key: string;
  /** A fixed VIP asked for in the manifest (`spec.clusterIP`), `None` for headless, or none. */
  readonly clusterIP?: string;
  readonly ipFamilies: readonly ('IPv4' | 'IPv6')[];
}

/**
 * Service VIPs, as the API server's service IPAM hands them out: one number per Service in the
 * layout's Service ranges, its IPv4 and IPv6 address from the same number; a fixed `clusterIP` is
 * honoured when it is free and inside the range. A Service keeps its VIPs until it is removed.
 */
export class VipAllocator {
  private readonly byService = new Map<string, { n: number; addrs: string[] }>();

  /** The VIPs of a Service, allocating on first sight; a reason when its clusterIP cannot be honoured. */
  vipsFor(req: VipRequest): { vips: string[]; problem?: string } {
    if (req.clusterIP === 'None') return { vips: [] };
    const existing = this.byService.get(req.key);
    if (existing !== undefined) return { vips: existing.addrs };
    const used = new Set([...this.byService.values()].map((v) => v.n));
    let n: number | undefined;
    let problem: string | undefined;
    if (req.clusterIP !== undefined) {
      n = numberOf(req.clusterIP);
      if (n === undefined || used.has(n)) {
        problem = `clusterIP ${req.clusterIP} is outside ${SERVICE_CIDR_V4} or taken; allocating another`;
        n = undefined;
      }
    }
    n ??= allocate(used, SERVICE_HOST_MIN, SERVICE_HOST_MAX);
    if (n === undefined) return { vips: [], problem: 'no free Service VIP' };
    const a = serviceAddresses(n);
    const addrs = req.ipFamilies.map((f) => (f === 'IPv4' ? a.ip4 : a.ip6));
    this.byService.set(req.key, { n, addrs });
    return problem === undefined ? { vips: addrs } : { vips: addrs, problem };
  }

  /** Frees the VIPs of Services that no longer exist. */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.byService.keys()) if (!keys.has(key)) this.byService.delete(key);
  }
}

/** The number of an IPv4 VIP in the Service range, or undefined when it is not in it. */
function numberOf(ip: string): number | undefined {
  if (!inCidr(ip, SERVICE_CIDR_V4)) return undefined;
  const parts = ip.split('.').map(Number);
  const n = parts[2]! * 256 + parts[3]!;
  return n >= SERVICE_HOST_MIN && n <= SERVICE_HOST_MAX ? n : undefined;
}
