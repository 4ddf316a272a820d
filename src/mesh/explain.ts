import { hostPort, isV6 } from '../net/ip.js';
import type { ActivePolicies } from '../policy/active.js';
import { outcomeInfo } from '../telemetry/outcomes.js';
import { decideInbound } from './inbound.js';
import type { MeshIndex } from './mesh-index.js';
import { type Picker, routeOutbound, transportFor } from './route.js';
import type { Workload } from './view.js';

/** One step of the decision path, for people: what was decided and why. */
export interface ExplainStep {
  readonly step:
    | 'source'
    | 'route'
    | 'transport'
    | 'waypoint'
    | 'peer-authentication'
    | 'waypoint-required'
    | 'authorization';
  readonly detail: string;
}

/** What happens to a connection to one endpoint. */
export interface EndpointVerdict {
  readonly endpoint: string;
  readonly address: string;
  readonly node: string;
  readonly steps: readonly ExplainStep[];
  readonly verdict: 'allowed' | 'denied' | 'refused';
  readonly reason: string;
}

export interface Explanation {
  readonly source: {
    readonly pod: string;
    readonly ip: string;
    readonly identity?: string;
    readonly inMesh: boolean;
  };
  readonly destination: string;
  readonly steps: readonly ExplainStep[];
  /** A Service VIP has one entry per ready endpoint (the proxy picks among them round-robin). */
  readonly endpoints: readonly EndpointVerdict[];
  /** `allowed` only when every endpoint allows; `mixed` when some allow and some do not. */
  readonly verdict: 'allowed' | 'denied' | 'refused' | 'mixed';
}

/**
 * The decision path of a connection from `src` to `dstIp:dstPort`, computed from a node proxy's own
 * view and policies with the same functions the proxies use: how the source is captured and
 * identified, where the route goes, how it is carried, and what the destination's PeerAuthentication
 * and authorization decide.
 */
export function explainConnection(
  mesh: MeshIndex,
  policies: ActivePolicies,
  src: Workload,
  dst: { ip: string; port: number },
): Explanation {
  const steps: ExplainStep[] = [];
  const srcIp = src.ips.find((ip) => isV6(ip) === isV6(dst.ip)) ?? src.ips[0]!;
  const inMesh = src.captured;
  const source = {
    pod: `${src.namespace}/${src.name}`,
    ip: srcIp,
    ...(inMesh ? { identity: src.identity } : {}),
    inMesh,
  };
  steps.push({
    step: 'source',
    detail: inMesh
      ? `${src.namespace}/${src.name} is in the mesh: eBPF sends its connect() to the node proxy on ${src.node}, which knows it as ${src.identity}`
      : `${src.namespace}/${src.name} is not in the mesh: it connects directly, as plaintext, with no identity`,
  });
  const endpoints: EndpointVerdict[] = [];
  const destination = hostPort(dst.ip, dst.port);
  let all: Workload[] = [];
  const collect: Picker = (_key, candidates) => {
    all = [...candidates];
    return candidates[0];
  };
  let route = routeOutbound(mesh, dst, collect, src);
  // Who makes the connection to the endpoints: the source, or the waypoint it goes through.
  let hop: { identity: string; ip: string; from: Workload } = {
    identity: src.identity,
    ip: srcIp,
    from: src,
  };
  if (route.kind === 'waypoint') {
    const w = route.waypoint;
    const what =
      route.service !== undefined
        ? `Service ${route.service.hostname}`
        : `pod ${route.workload?.namespace}/${route.workload?.name}`;
    steps.push({
      step: 'route',
      detail: `${destination} is ${what}, which uses waypoint ${w.namespace}/${w.name} (for ${w.for} traffic): ${all.length} ready waypoint pod(s), picked round-robin`,
    });
    steps.push({
      step: 'transport',
      detail: `HBONE (mTLS, HTTP/2 CONNECT ${destination}) to waypoint pod ${route.pod.namespace}/${route.pod.name} at ${hostPort(route.target.ip, route.target.port)}, presenting ${src.identity}; the waypoint must prove ${w.identity}`,
    });
    steps.push({
      step: 'waypoint',
      detail: `the waypoint applies the L7 routes of ${what} per request (see \`ambit explain -n ${src.namespace} ${src.name} http://...\`) and opens its own HBONE connections to the endpoints, as ${w.identity}: L4 policy there sees the waypoint, L7 policy the client`,
    });
    hop = {
      identity: w.identity,
      ip: route.pod.ips.find((ip) => isV6(ip) === isV6(dst.ip)) ?? route.pod.ips[0]!,
      from: route.pod,
    };
    all = [];
    route = routeOutbound(mesh, dst, collect, route.pod);
  }
  if (route.kind === 'refuse') {
    steps.push({ step: 'route', detail: `refused (${outcomeInfo(route.outcome).flag}): ${route.reason}` });
    return {
      source,
      destination,
      steps,
      endpoints,
      verdict: 'refused',
    };
  }
  if (route.kind === 'passthrough') {
    steps.push({ step: 'route', detail: `${destination} is outside the mesh: passed through as plain TCP` });
    return {
      source,
      destination,
      steps,
      endpoints,
      verdict: 'allowed',
    };
  }
  if (route.kind === 'waypoint') throw new Error('unreachable: a waypoint never routes to a waypoint');
  const first = route;
  const targets =
    first.kind === 'service'
      ? all.map((w) => {
          const r = routeOutbound(mesh, dst, (_k, c) => c.find((x) => x.uid === w.uid), hop.from);
          return { w, target: r.kind === 'service' ? r.target : first.target };
        })
      : [{ w: first.workload, target: first.target }];
  steps.push({
    step: 'route',
    detail:
      first.kind === 'service'
        ? `${destination} is Service ${first.service.hostname}: ${targets.length} ready endpoint(s), picked ${hop.from === src ? 'round-robin' : 'per request by the waypoint (least request)'}`
        : `${destination} is pod ${first.workload.namespace}/${first.workload.name} on ${first.workload.node}`,
  });
  for (const { w, target } of targets) {
    const epSteps: ExplainStep[] = [];
    const address = hostPort(target.ip, target.port);
    const name = `${w.namespace}/${w.name}`;
    const finish = (verdict: EndpointVerdict['verdict'], reason: string): void => {
      endpoints.push({ endpoint: name, address, node: w.node, steps: epSteps, verdict, reason });
    };
    if (inMesh) {
      const t = transportFor(mesh, first.kind === 'service' ? { ...first, endpoint: w, target } : first);
      if (t.kind === 'plain') {
        epSteps.push({
          step: 'transport',
          detail: `${name} is not in the mesh: plain TCP from the proxy, no authentication`,
        });
        finish('allowed', 'the destination is outside the mesh');
        continue;
      }
      epSteps.push({
        step: 'transport',
        detail: `HBONE (mTLS, HTTP/2 CONNECT) to ${hostPort(t.nodeIp, 15008)} on ${w.node}, presenting ${hop.identity}; the server must prove ${t.dstIdentity}`,
      });
      // What the destination's proxy decides, from the same view (it presents the identity asked for).
      const d = decideInbound(mesh, policies, {
        node: w.node,
        via: { kind: 'hbone', peer: hop.identity, serverIdentity: t.dstIdentity },
        source: { ip: hop.ip, port: 0 },
        target,
      });
      const authz = d.authz;
      if (d.waypoint !== undefined) epSteps.push({ step: 'waypoint-required', detail: d.waypoint });
      if (!d.allowed && d.waypoint !== undefined) {
        finish('denied', d.reason);
        continue;
      }
      epSteps.push({
        step: 'authorization',
        detail:
          authz === undefined
            ? d.allowed
              ? ''
              : d.reason
            : `${authz.reason}${authz.applicable.length > 0 ? ` [policies: ${authz.applicable.join(', ')}]` : ''}`,
      });
      finish(d.allowed ? 'allowed' : 'denied', d.allowed ? d.authz.reason : d.reason);
      continue;
    }
    if (!w.captured) {
      epSteps.push({
        step: 'transport',
        detail: `plain TCP, straight to ${name} (neither side is in the mesh)`,
      });
      finish('allowed', 'neither side is in the mesh');
      continue;
    }
    const d = decideInbound(mesh, policies, {
      node: w.node,
      via: { kind: 'plaintext' },
      source: { ip: srcIp, port: 0 },
      target,
    });
    const mode = d.mtls ?? { mode: 'PERMISSIVE' };
    epSteps.push({
      step: 'peer-authentication',
      detail: `plaintext to ${name} is captured by ${w.node}'s proxy; mTLS mode ${mode.mode}${mode.from === undefined ? ' (default)' : ` (PeerAuthentication ${mode.from})`}`,
    });
    if (mode.mode === 'STRICT') {
      finish(
        'refused',
        `plaintext from outside the mesh is refused: STRICT${mode.from === undefined ? '' : ` (${mode.from})`}`,
      );
      continue;
    }
    if (d.waypoint !== undefined) epSteps.push({ step: 'waypoint-required', detail: d.waypoint });
    if (!d.allowed && d.waypoint !== undefined) {
      finish('denied', d.reason);
      continue;
    }
    epSteps.push({
      step: 'authorization',
      detail: `with no peer identity: ${d.allowed ? d.authz.reason : (d.authz?.reason ?? d.reason)}`,
    });
    finish(d.allowed ? 'allowed' : 'denied', d.allowed ? d.authz.reason : d.reason);
  }
  const verdicts = new Set(endpoints.map((e) => e.verdict));
  const verdict: Explanation['verdict'] =
    endpoints.length === 0 ? 'refused' : verdicts.size === 1 ? [...verdicts][0]! : 'mixed';
  return {
    source,
    destination,
    steps,
    endpoints,
    verdict,
  };
}
