import type { ServicePort } from '../config/kube-types.js';
import type { Random } from '../gateway-api/backend-pick.js';
import {
  applyHeaderModifier,
  type HeaderRecord,
  redirectLocation,
  rewriteRequest,
} from '../gateway-api/route-filters.js';
import { authorizeRequest, type RequestAttrs, type RequestAuthzDecision } from '../mesh/authz-l7.js';
import { decideL7, type L7Decision } from '../mesh/l7-route.js';
import type { MeshService, Workload } from '../mesh/view.js';
import { isV6 } from '../net/ip.js';
import { principalOf } from '../policy/active.js';
import type { RoutingState } from './routing-state.js';

/*
 * What the request path of the waypoint shares between plain requests (forward.ts), upgrades
 * (upgrade.ts) and `explain`: the connection's context, the request as the route decision reads it,
 * the decision itself, and what its filters make of the request. No sockets here.
 */

/** Who sent a connection to the waypoint, and what it addressed: a Service port (VIP) or a pod. */
export interface ConnContext {
  readonly client: {
    /** The identity the client's node proxy proved for it (the source for L7 policy and telemetry). */
    readonly identity: string;
    readonly namespace: string;
    readonly address: string;
    readonly workload?: Workload;
  };
  readonly dst:
    | {
        readonly kind: 'service';
        readonly service: MeshService;
        readonly port: ServicePort;
        readonly vip: string;
      }
    | { readonly kind: 'workload'; readonly workload: Workload; readonly port: number };
}

/** A request's head, whatever its protocol (header names lowercase). */
export interface RequestHead {
  readonly method: string;
  /** Path and query, as sent. */
  readonly path: string;
  readonly authority: string;
  readonly headers: HeaderRecord;
}

export function headerOf(h: HeaderRecord, name: string): string | undefined {
  const v = h[name];
  return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : v;
}

export function isGrpc(h: HeaderRecord): boolean {
  return (headerOf(h, 'content-type') ?? '').startsWith('application/grpc');
}

/** Whether the connection addressed an IPv6 destination (endpoints are dialled in the same family). */
export function dstIsV6(ctx: ConnContext): boolean {
  return isV6(ctx.dst.kind === 'service' ? ctx.dst.vip : (ctx.dst.workload.ips[0] ?? ''));
}

/** What telemetry names as the destination when no backend Service is known: the Service, or the pod. */
export function dstName(ctx: ConnContext): string {
  return ctx.dst.kind === 'service'
    ? ctx.dst.service.hostname
    : `${ctx.dst.workload.namespace}/${ctx.dst.workload.name}`;
}

function splitPath(path: string): { path: string; query: string } {
  const q = path.indexOf('?');
  return q === -1 ? { path, query: '' } : { path: path.slice(0, q), query: path.slice(q) };
}

/**
 * The route decision for a request addressed to a Service port; undefined for one addressed to a pod
 * (a waypoint for workloads): Service routes never apply to pod-IP traffic.
 */
export function decide(
  state: RoutingState,
  ctx: ConnContext,
  req: RequestHead,
  random: Random,
): L7Decision | undefined {
  if (ctx.dst.kind !== 'service') return undefined;
  const { path, query } = splitPath(req.path);
  return decideL7(
    state.mesh,
    state.routesFor(ctx.dst.service, ctx.dst.port, ctx.client.namespace),
    ctx.dst.service,
    ctx.dst.port,
    {
      method: req.method,
      path,
      query: query === '' ? [] : [...new URLSearchParams(query.slice(1))],
      header: (name) => (name === 'host' ? req.authority : headerOf(req.headers, name)),
      grpc: isGrpc(req.headers),
    },
    random,
  );
}

/**
 * The waypoint's authorization of a request (AuthorizationPolicies with targetRefs naming the Service
 * addressed or this waypoint's Gateway), before any routing: the same function `explain` runs.
 */
export function authorizeAt(
  state: RoutingState,
  ctx: ConnContext,
  req: RequestHead,
  auth?: RequestAttrs['auth'],
): RequestAuthzDecision {
  const dst = ctx.dst;
  return authorizeRequest(
    state.authz,
    {
      waypoint: state.self,
      ...(dst.kind === 'service'
        ? { service: { namespace: dst.service.namespace, name: dst.service.name } }
        : {}),
    },
    {
      srcPrincipal: principalOf(ctx.client.identity),
      srcIp: ctx.client.address,
      dstIp: dst.kind === 'service' ? dst.vip : (dst.workload.ips[0] ?? ''),
      dstPort: dst.kind === 'service' ? dst.port.port : dst.port,
      method: req.method,
      path: splitPath(req.path).path,
      host: req.authority,
      header: (name) =>
        name === 'host' || name === ':authority' ? req.authority : headerOf(req.headers, name),
      ...(auth === undefined ? {} : { auth }),
    },
  );
}

/**
 * The redirect a RequestRedirect rule answers with. The port of the Location, when the filter names
 * neither a port nor a scheme, is the Service port the client dialled (the spec's "listener port"),
 * never the Host header's.
 */
export function redirectFor(
  d: Extract<L7Decision, { kind: 'redirect' }>,
  ctx: Extract<ConnContext['dst'], { kind: 'service' }>,
  req: RequestHead,
): { status: number; headers: HeaderRecord } {
  const host = /^(\[[^\]]+\]|[^:]+)/.exec(req.authority)?.[1]?.replace(/^\[|\]$/g, '') ?? req.authority;
  const { path, query } = splitPath(req.path);
  const r = redirectLocation({ scheme: 'http', host, port: ctx.port.port, path, query }, d.redirect, d.match);
  const headers: HeaderRecord = { location: r.location, 'content-length': '0' };
  for (const m of d.responseHeaders) applyHeaderModifier(headers, m);
  return { status: r.status, headers };
}

/** Request headers a proxy never passes on (`expect` was answered here; the rest are hop-by-hop). */
const NOT_FORWARDED = ['expect', 'upgrade', 'http2-settings'];

/**
 * The request as it goes to the backend: the rule's request header modifiers (rule, then backendRef),
 * its URL rewrite, and the headers the waypoint adds (`x-request-id`, `x-forwarded-proto`).
 */
export function upstreamHead(
  d: Extract<L7Decision, { kind: 'forward' }> | undefined,
  req: RequestHead,
  requestId: string,
  keep: readonly string[] = [],
): RequestHead {
  const headers: HeaderRecord = { ...req.headers };
  for (const h of NOT_FORWARDED) if (!keep.includes(h)) delete headers[h];
  let path = req.path;
  let authority = req.authority;
  if (d !== undefined) {
    for (const m of d.requestHeaders) applyHeaderModifier(headers, m);
    if (d.rewrite !== undefined) {
      const { path: p, query } = splitPath(path);
      const host = /^(\[[^\]]+\]|[^:]+)/.exec(authority)?.[1] ?? authority;
      const r = rewriteRequest({ host, path: p }, d.rewrite.rewrite, d.rewrite.match);
      path = r.path + query;
      if (d.rewrite.rewrite.hostname !== undefined) authority = r.host;
    }
  }
  headers['x-request-id'] = requestId;
  if (headers['x-forwarded-proto'] === undefined) headers['x-forwarded-proto'] = 'http';
  return { method: req.method, path, authority, headers };
}
