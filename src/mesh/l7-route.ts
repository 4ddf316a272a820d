import { type ServicePort, servicePortKey } from '../config/kube-types.js';
import { type Random, WeightedPicker } from '../gateway-api/backend-pick.js';
import { attachedRoutes } from '../gateway-api/route-attach.js';
import {
  GrpcRouteTable,
  type HttpRequestFacts,
  HttpRouteTable,
  parseGrpcPath,
} from '../gateway-api/route-match.js';
import type {
  BackendRef,
  GrpcFilter,
  HeaderModifier,
  HttpFilter,
  MeshRoute,
  ParentRef,
  PathMatch,
  RequestMirror,
  RequestRedirect,
  UrlRewrite,
} from '../gateway-api/types.js';
import type { HttpFailure } from '../telemetry/http-outcomes.js';
import { type RequestTimeouts, type RetryPolicy, retryPolicyOf, timeoutsOf } from './http-retry.js';
import type { MeshIndex } from './mesh-index.js';
import type { MeshService } from './view.js';

/*
 * What a waypoint does with one request, decided from its view alone (a pure function, so that
 * `ambit explain ... http://...` shows exactly what the waypoint does): the routes attached to the
 * Service port for the client's namespace, the rule that matches, the backend its weights pick, and
 * what the rule's filters, timeouts and retries say. The endpoint is picked later, per attempt.
 */

/** The routes of one Service port for one client namespace, compiled once per config. */
export interface PortRoutes {
  readonly http: HttpRouteTable;
  readonly grpc: GrpcRouteTable;
  readonly hasHttp: boolean;
  readonly hasGrpc: boolean;
  /** These are the client namespace's consumer routes. */
  readonly consumer: boolean;
  /** `Kind/ns/name` of the routes in force. */
  readonly names: readonly string[];
}

export function compilePortRoutes(
  routes: Iterable<MeshRoute>,
  service: MeshService,
  port: ServicePort,
  clientNamespace: string | undefined,
): PortRoutes {
  const a = attachedRoutes(
    routes,
    {
      namespace: service.namespace,
      name: service.name,
      port: port.port,
      ...(port.name === undefined ? {} : { portName: port.name }),
    },
    clientNamespace,
  );
  return {
    http: HttpRouteTable.compile(a.http),
    grpc: GrpcRouteTable.compile(a.grpc),
    hasHttp: a.http.length > 0,
    hasGrpc: a.grpc.length > 0,
    consumer: a.consumer,
    names: [
      ...a.http.map((r) => `HTTPRoute/${r.namespace}/${r.name}`),
      ...a.grpc.map((r) => `GRPCRoute/${r.namespace}/${r.name}`),
    ],
  };
}

export interface L7Request extends HttpRequestFacts {
  /** A gRPC call (`content-type: application/grpc...`). */
  readonly grpc: boolean;
}

/** A route rule, by name, for logs, metrics exemplars and `explain`. */
export interface RuleRef {
  readonly kind: 'HTTPRoute' | 'GRPCRoute';
  readonly namespace: string;
  readonly name: string;
  readonly rule: number;
  readonly ruleName?: string;
}

export interface BackendChoice {
  readonly namespace: string;
  readonly name: string;
  readonly port: number;
  readonly weight: number;
  /** Undefined when the backend does not exist or may not be used (requests for it get 500). */
  readonly service?: MeshService;
  readonly problem?: string;
}

export type L7Decision =
  | {
      readonly kind: 'forward';
      readonly route?: RuleRef;
      readonly backend: BackendChoice & { readonly service: MeshService };
      /** Every backend of the rule with its weight (for `explain`). */
      readonly backends: readonly BackendChoice[];
      readonly requestHeaders: readonly HeaderModifier[];
      readonly responseHeaders: readonly HeaderModifier[];
      readonly rewrite?: { readonly rewrite: UrlRewrite; readonly match: PathMatch };
      readonly mirrors: readonly RequestMirror[];
      readonly timeouts: RequestTimeouts;
      readonly retry: RetryPolicy;
    }
  | {
      readonly kind: 'redirect';
      readonly route: RuleRef;
      readonly redirect: RequestRedirect;
      readonly match: PathMatch;
      readonly responseHeaders: readonly HeaderModifier[];
    }
  | {
      readonly kind: 'refuse';
      readonly failure: HttpFailure;
      readonly reason: string;
      readonly route?: RuleRef;
      readonly backends?: readonly BackendChoice[];
    };

/**
 * A backendRef as the mesh resolves it: a Service in the route's namespace, or in another namespace
 * when it is the Service the route is attached to (a consumer route sending its namespace's clients
 * to the producer's Service, as the MeshConsumerRoute conformance test does). ReferenceGrant is not
 * read yet, so any other cross-namespace backend is not permitted.
 */
export function resolveBackend(
  mesh: MeshIndex,
  routeNamespace: string,
  ref: Pick<BackendRef, 'group' | 'kind' | 'name' | 'namespace' | 'port' | 'weight'>,
  parents: readonly ParentRef[] = [],
): BackendChoice {
  const namespace = ref.namespace ?? routeNamespace;
  const base = { namespace, name: ref.name, port: ref.port ?? 0, weight: ref.weight };
  if (ref.group !== '' || ref.kind !== 'Service')
    return {
      ...base,
      problem: `backend kind ${ref.group === '' ? '' : `${ref.group}/`}${ref.kind} is not a Service`,
    };
  const isParent = parents.some(
    (p) =>
      p.group === '' &&
      p.kind === 'Service' &&
      p.name === ref.name &&
      (p.namespace ?? routeNamespace) === namespace,
  );
  if (namespace !== routeNamespace && !isParent)
    return {
      ...base,
      problem: `backend ${namespace}/${ref.name} is in another namespace and no ReferenceGrant is read (RefNotPermitted)`,
    };
  const service = mesh.service(namespace, ref.name);
  if (service === undefined) return { ...base, problem: `Service ${namespace}/${ref.name} does not exist` };
  if (!service.ports.some((p) => p.port === ref.port && p.protocol === 'TCP'))
    return { ...base, problem: `Service ${namespace}/${ref.name} has no TCP port ${ref.port}` };
  return { ...base, service };
}

function modifiers<F extends HttpFilter | GrpcFilter>(
  filters: readonly F[],
  type: 'RequestHeaderModifier' | 'ResponseHeaderModifier',
): HeaderModifier[] {
  const out: HeaderModifier[] = [];
  for (const f of filters)
    if (f.type === type) out.push((f as Extract<HttpFilter, { headers: HeaderModifier }>).headers);
  return out;
}

function mirrorsOf<F extends HttpFilter | GrpcFilter>(filters: readonly F[]): RequestMirror[] {
  const out: RequestMirror[] = [];
  for (const f of filters)
    if (f.type === 'RequestMirror') out.push((f as Extract<HttpFilter, { type: 'RequestMirror' }>).mirror);
  return out;
}

/**
 * The decision for one request to `service:port` (the VIP the client dialled):
 * - no route attached: the Service itself, with the default retry policy and no timeouts;
 * - routes attached, none matches: 404 (gRPC: UNIMPLEMENTED);
 * - the matched rule redirects: the redirect;
 * - else a backend by weight (`random` draws it); a backend that does not exist takes its share of
 *   requests to a 500, as the spec says, and a rule whose weights are all 0 (or that has no backend)
 *   answers 500 too.
 */
export function decideL7(
  mesh: MeshIndex,
  routes: PortRoutes,
  service: MeshService,
  port: ServicePort,
  req: L7Request,
  random: Random,
): L7Decision {
  const self: BackendChoice & { service: MeshService } = {
    namespace: service.namespace,
    name: service.name,
    port: port.port,
    weight: 1,
    service,
  };
  const asIs = (): L7Decision => ({
    kind: 'forward',
    backend: self,
    backends: [self],
    requestHeaders: [],
    responseHeaders: [],
    mirrors: [],
    timeouts: {},
    retry: retryPolicyOf(undefined),
  });
  if (req.grpc && routes.hasGrpc) {
    const call = parseGrpcPath(req.path);
    const d =
      call === undefined
        ? ({ kind: 'unmatched' } as const)
        : routes.grpc.match({ service: call.service, method: call.method, header: req.header });
    if (d.kind === 'none') return asIs();
    if (d.kind === 'unmatched')
      return { kind: 'refuse', failure: 'no-route', reason: 'no GRPCRoute rule matches this call' };
    const ref: RuleRef = {
      kind: 'GRPCRoute',
      namespace: d.route.namespace,
      name: d.route.name,
      rule: d.ruleIndex,
      ...(d.rule.name === undefined ? {} : { ruleName: d.rule.name }),
    };
    return forwardTo(
      mesh,
      ref,
      d.route.namespace,
      d.route.parentRefs,
      d.rule.filters,
      d.rule.backendRefs,
      undefined,
      undefined,
      random,
      retryPolicyOf(undefined),
      {},
    );
  }
  if (!routes.hasHttp) {
    // Only GRPCRoutes are attached and this is not a gRPC call: nothing matches it.
    return routes.hasGrpc
      ? {
          kind: 'refuse',
          failure: 'no-route',
          reason: 'only GRPCRoutes are attached and this is not a gRPC call',
        }
      : asIs();
  }
  const d = routes.http.match(req);
  if (d.kind === 'none') return asIs();
  if (d.kind === 'unmatched')
    return { kind: 'refuse', failure: 'no-route', reason: 'no HTTPRoute rule matches this request' };
  const ref: RuleRef = {
    kind: 'HTTPRoute',
    namespace: d.route.namespace,
    name: d.route.name,
    rule: d.ruleIndex,
    ...(d.rule.name === undefined ? {} : { ruleName: d.rule.name }),
  };
  const redirect = d.rule.filters.find((f) => f.type === 'RequestRedirect');
  if (redirect !== undefined)
    return {
      kind: 'redirect',
      route: ref,
      redirect: redirect.redirect,
      match: d.match.path,
      responseHeaders: modifiers(d.rule.filters, 'ResponseHeaderModifier'),
    };
  const rewrite = d.rule.filters.find((f) => f.type === 'URLRewrite');
  return forwardTo(
    mesh,
    ref,
    d.route.namespace,
    d.route.parentRefs,
    d.rule.filters,
    d.rule.backendRefs,
    rewrite?.rewrite,
    d.match.path,
    random,
    retryPolicyOf(d.rule.retry),
    timeoutsOf(d.rule.timeouts),
  );
}

function forwardTo<F extends HttpFilter | GrpcFilter>(
  mesh: MeshIndex,
  route: RuleRef,
  routeNamespace: string,
  parents: readonly ParentRef[],
  filters: readonly F[],
  refs: readonly BackendRef<F>[],
  rewrite: UrlRewrite | undefined,
  match: PathMatch | undefined,
  random: Random,
  retry: RetryPolicy,
  timeouts: RequestTimeouts,
): L7Decision {
  const backends = refs.map((r) => ({ ref: r, choice: resolveBackend(mesh, routeNamespace, r, parents) }));
  const choices = backends.map((b) => b.choice);
  if (backends.length === 0)
    return { kind: 'refuse', failure: 'no-backend', reason: 'the matched rule has no backendRefs', route };
  const picked = new WeightedPicker(backends.map((b) => ({ ...b, weight: b.ref.weight }))).pick(random);
  if (picked === undefined)
    return {
      kind: 'refuse',
      failure: 'no-backend',
      reason: 'every backend of the matched rule has weight 0',
      route,
      backends: choices,
    };
  const service = picked.choice.service;
  if (service === undefined)
    return {
      kind: 'refuse',
      failure: 'no-backend',
      reason: picked.choice.problem ?? 'the backend does not exist',
      route,
      backends: choices,
    };
  return {
    kind: 'forward',
    route,
    backend: { ...picked.choice, service },
    backends: choices,
    requestHeaders: [
      ...modifiers(filters, 'RequestHeaderModifier'),
      ...modifiers(picked.ref.filters, 'RequestHeaderModifier'),
    ],
    responseHeaders: [
      ...modifiers(filters, 'ResponseHeaderModifier'),
      ...modifiers(picked.ref.filters, 'ResponseHeaderModifier'),
    ],
    ...(rewrite === undefined || match === undefined ? {} : { rewrite: { rewrite, match } }),
    mirrors: [...mirrorsOf(filters), ...mirrorsOf(picked.ref.filters)],
    timeouts,
    retry,
  };
}

/** The ready endpoints of a Service port, as (workload uid, target port) pairs. */
export function serviceEndpoints(
  mesh: MeshIndex,
  service: MeshService,
  port: number,
): { readonly workloadUid: string; readonly targetPort: number }[] {
  const sp = service.ports.find((p) => p.port === port && p.protocol === 'TCP');
  if (sp === undefined) return [];
  const key = servicePortKey(sp);
  const out: { workloadUid: string; targetPort: number }[] = [];
  for (const e of service.endpoints) {
    const target = e.ports[key];
    if (!e.ready || target === undefined || mesh.workload(e.workloadUid) === undefined) continue;
    out.push({ workloadUid: e.workloadUid, targetPort: target });
  }
  return out;
}
