import { selectorMatches, servicePortKey } from '../config/kube-types.js';
import type { ServiceObject } from '../manifests/model.js';
import type { EndpointState, PodState, ServiceState } from './state.js';

/** Endpoints of a Service: its selected, running pods, with each service port resolved on each pod. */
export function buildService(
  svc: ServiceObject,
  vips: readonly string[],
  pods: readonly PodState[],
): ServiceState {
  const endpoints: EndpointState[] = [];
  const selector = svc.selector;
  if (selector !== undefined) {
    for (const pod of pods) {
      if (pod.namespace !== svc.meta.namespace || pod.phase !== 'Running') continue;
      if (!selectorMatches(selector, pod.labels)) continue;
      const ports: Record<string, number> = {};
      for (const sp of svc.ports) {
        const target =
          typeof sp.targetPort === 'number'
            ? sp.targetPort
            : pod.ports.find((p) => p.name === sp.targetPort && p.protocol === sp.protocol)?.containerPort;
        // A named targetPort that the pod does not declare leaves the pod out for that port (as Kubernetes does).
        if (target !== undefined) ports[servicePortKey(sp)] = target;
      }
      endpoints.push({ pod: pod.name, node: pod.node, ip4: pod.ip4, ip6: pod.ip6, ready: pod.ready, ports });
    }
  }
  endpoints.sort((a, b) => a.pod.localeCompare(b.pod));
  return {
    namespace: svc.meta.namespace,
    name: svc.meta.name,
    labels: svc.meta.labels,
    annotations: svc.meta.annotations,
    vips,
    ports: svc.ports,
    ...(selector === undefined ? {} : { selector }),
    endpoints,
  };
}

export const NFT_TABLE = 'ambit_services';

/**
 * The nftables ruleset a node uses to send Service VIP traffic of pods outside the mesh to ready
 * endpoints (what kube-proxy does): one DNAT per VIP and port with a round-robin map, a TCP reset
 * when no endpoint is ready, and masquerade for a pod that reaches itself through its own Service.
 * The text replaces the table atomically.
 */
export function nftServiceRules(services: readonly ServiceState[]): string {
  const dnat: string[] = [];
  const reject: string[] = [];
  const hairpin = new Set<string>();
  for (const svc of services) {
    for (const vip of svc.vips) {
      const v6 = vip.includes(':');
      const fam = v6 ? 'ip6' : 'ip';
      for (const sp of svc.ports) {
        if (sp.protocol === 'SCTP') continue;
        const l4 = sp.protocol === 'UDP' ? 'udp' : 'tcp';
        const key = servicePortKey(sp);
        const targets = svc.endpoints
          .filter((e) => e.ready && e.ports[key] !== undefined)
          .map((e) => ({ ip: v6 ? e.ip6 : e.ip4, port: e.ports[key]! }));
        const match = `${fam} daddr ${vip} ${l4} dport ${sp.port}`;
        if (targets.length === 0) {
          reject.push(`    ${match} reject${l4 === 'tcp' ? ' with tcp reset' : ''}`);
          continue;
        }
        const map = targets.map((t, i) => `${i} : ${t.ip} . ${t.port}`).join(', ');
        dnat.push(`    ${match} dnat ${fam} to numgen inc mod ${targets.length} map { ${map} }`);
        for (const t of targets) hairpin.add(`    ${fam} saddr ${t.ip} ${fam} daddr ${t.ip} masquerade`);
      }
    }
  }
  return [
    `table inet ${NFT_TABLE}`,
    `delete table inet ${NFT_TABLE}`,
    `table inet ${NFT_TABLE} {`,
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    '    jump services',
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    '    jump services',
    '  }',
    '  chain services {',
    ...dnat,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...[...hairpin].sort(),
    '  }',
    '  chain no_endpoints {',
    '    type filter hook prerouting priority -110; policy accept;',
    ...reject,
    '  }',
    '}',
    '',
  ].join('\n');
}

/**
 * The hosts file of a pod: itself, and every Service under `svc.ns`, `svc.ns.svc` and
 * `svc.ns.svc.cluster.local`, plus the short name `svc` for Services in the pod's own namespace.
 * Headless Services resolve to their ready endpoints.
 */
export function hostsFile(
  pod: { namespace: string; name: string; ip4: string; ip6: string },
  services: readonly ServiceState[],
): string {
  const lines = [
    '# Written by ambit local; Service names of the local cluster.',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    `${pod.ip4}\t${pod.name}`,
    `${pod.ip6}\t${pod.name}`,
  ];
  for (const svc of [...services].sort((a, b) =>
    `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`),
  )) {
    const names = [
      `${svc.name}.${svc.namespace}`,
      `${svc.name}.${svc.namespace}.svc`,
      `${svc.name}.${svc.namespace}.svc.cluster.local`,
    ];
    if (svc.namespace === pod.namespace) names.unshift(svc.name);
    const addrs =
      svc.vips.length > 0 ? svc.vips : svc.endpoints.filter((e) => e.ready).flatMap((e) => [e.ip4, e.ip6]);
    for (const a of addrs) lines.push(`${a}\t${names.join(' ')}`);
  }
  return `${lines.join('\n')}\n`;
}

export function resolvConf(namespace: string): string {
  // No DNS server runs in a local cluster: names resolve from the hosts file, and a lookup that misses it
  // fails at once instead of waiting for a resolver that is not there.
  return `search ${namespace}.svc.cluster.local svc.cluster.local cluster.local\nnameserver 127.0.0.1\noptions timeout:1 attempts:1 ndots:5\n`;
}
