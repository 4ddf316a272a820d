import type { Labels } from '../config/kube-types.js';

/**
 * Gateway API objects (`gateway.networking.k8s.io/v1`) as Ambit reads them: readonly, with every
 * default of the CRDs applied, so that nothing past the parser has to know what an absent field means.
 * Ambit uses a Gateway of class `ambit-waypoint` as a waypoint, and HTTPRoute and GRPCRoute attached
 * to Services (the GAMMA mesh pattern) or to a waypoint.
 */

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';
/** The GatewayClass whose Gateways Ambit runs as waypoints. */
export const WAYPOINT_CLASS = 'ambit-waypoint';

/** Where a route attaches: a Gateway (group gateway.networking.k8s.io) or a Service (group ''). */
export interface ParentRef {
  readonly group: string;
  readonly kind: string;
  /** Undefined: the route's own namespace. */
  readonly namespace?: string;
  readonly name: string;
  readonly sectionName?: string;
  readonly port?: number;
}

/** A backend: a Service port unless group/kind say otherwise. */
export interface BackendObjectRef {
  readonly group: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly port?: number;
}

export interface HeaderModifier {
  /** Header names are case-insensitive; they are kept lowercase. */
  readonly set: readonly { readonly name: string; readonly value: string }[];
  readonly add: readonly { readonly name: string; readonly value: string }[];
  readonly remove: readonly string[];
}

export type PathModifier =
  | { readonly type: 'ReplaceFullPath'; readonly value: string }
  | { readonly type: 'ReplacePrefixMatch'; readonly value: string };

export interface RequestRedirect {
  readonly scheme?: 'http' | 'https';
  readonly hostname?: string;
  readonly path?: PathModifier;
  readonly port?: number;
  /** 301, 302 (the default), 303, 307 or 308. */
  readonly statusCode: number;
}

export interface UrlRewrite {
  readonly hostname?: string;
  readonly path?: PathModifier;
}

export interface RequestMirror {
  readonly backendRef: BackendObjectRef;
  /** Share of requests mirrored, 0 to 1 (from `percent` or `fraction`); 1 when neither is set. */
  readonly fraction: number;
}

export type HttpFilter =
  | { readonly type: 'RequestHeaderModifier'; readonly headers: HeaderModifier }
  | { readonly type: 'ResponseHeaderModifier'; readonly headers: HeaderModifier }
  | { readonly type: 'RequestRedirect'; readonly redirect: RequestRedirect }
  | { readonly type: 'URLRewrite'; readonly rewrite: UrlRewrite }
  | { readonly type: 'RequestMirror'; readonly mirror: RequestMirror };

/** The filters a GRPCRoute allows. */
export type GrpcFilter = Extract<
  HttpFilter,
  { type: 'RequestHeaderModifier' | 'ResponseHeaderModifier' | 'RequestMirror' }
>;

export interface BackendRef<F = HttpFilter> extends BackendObjectRef {
  /** 0 to 1,000,000; 1 when unset. A weight of 0 receives no traffic. */
  readonly weight: number;
  readonly filters: readonly F[];
}

export type StringMatch =
  | { readonly type: 'Exact'; readonly value: string }
  | { readonly type: 'RegularExpression'; readonly value: string };

export type PathMatch =
  | { readonly type: 'Exact' | 'PathPrefix'; readonly value: string }
  | { readonly type: 'RegularExpression'; readonly value: string };

export interface HeaderMatch {
  /** Lowercase. */
  readonly name: string;
  readonly match: StringMatch;
}

export interface QueryParamMatch {
  /** Query parameter names are case-sensitive. */
  readonly name: string;
  readonly match: StringMatch;
}

export const HTTP_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export interface HttpRouteMatch {
  /** PathPrefix "/" when the match gave no path. */
  readonly path: PathMatch;
  readonly headers: readonly HeaderMatch[];
  readonly queryParams: readonly QueryParamMatch[];
  readonly method?: HttpMethod;
}

export interface RouteTimeouts {
  /** Bounds the whole request, retries included; 0 disables. */
  readonly requestMs?: number;
  /** Bounds each attempt to a backend; 0 disables; never longer than `requestMs`. */
  readonly backendRequestMs?: number;
}

export interface RouteRetry {
  /** Status codes that are retried (400 to 599). */
  readonly codes: readonly number[];
  /** Attempts after the first; undefined leaves it to the implementation's default. */
  readonly attempts?: number;
  /** The least time to wait between attempts. */
  readonly backoffMs?: number;
}

export interface HttpRouteRule {
  readonly name?: string;
  /** At least one: a rule without matches matches every request (PathPrefix "/"). */
  readonly matches: readonly HttpRouteMatch[];
  readonly filters: readonly HttpFilter[];
  readonly backendRefs: readonly BackendRef<HttpFilter>[];
  readonly timeouts?: RouteTimeouts;
  readonly retry?: RouteRetry;
}

interface RouteBase {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly parentRefs: readonly ParentRef[];
  readonly hostnames: readonly string[];
}

export interface HttpRoute extends RouteBase {
  readonly rules: readonly HttpRouteRule[];
}

export interface GrpcMethodMatch {
  readonly type: 'Exact' | 'RegularExpression';
  /** `package.Service`; undefined matches any service. */
  readonly service?: string;
  /** undefined matches any method. */
  readonly method?: string;
}

export interface GrpcRouteMatch {
  readonly method?: GrpcMethodMatch;
  readonly headers: readonly HeaderMatch[];
}

export interface GrpcRouteRule {
  readonly name?: string;
  /** Empty: every request matches. */
  readonly matches: readonly GrpcRouteMatch[];
  readonly filters: readonly GrpcFilter[];
  readonly backendRefs: readonly BackendRef<GrpcFilter>[];
}

export interface GrpcRoute extends RouteBase {
  readonly rules: readonly GrpcRouteRule[];
}

export interface Listener {
  readonly name: string;
  readonly port: number;
  /** `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP`, or an implementation's own (`HBONE` for waypoints). */
  readonly protocol: string;
  readonly hostname?: string;
  /** Which namespaces' routes may attach (default: the Gateway's own). */
  readonly allowedRoutes: { readonly from: 'Same' | 'All' | 'Selector'; readonly selector?: Labels };
}

export interface Gateway {
  readonly namespace: string;
  readonly name: string;
  /** Waypoints read `ambit.dev/waypoint-for` here. */
  readonly labels: Labels;
  /** Waypoints read `ambit.dev/replicas`, `ambit.dev/otlp-endpoint` and `ambit.dev/trace-sampling` here. */
  readonly annotations?: Labels;
  readonly gatewayClassName: string;
  readonly listeners: readonly Listener[];
  readonly addresses: readonly { readonly type: string; readonly value: string }[];
}

/** A route as the mesh pushes it: an HTTPRoute or a GRPCRoute. */
export type MeshRoute =
  | { readonly kind: 'HTTPRoute'; readonly route: HttpRoute }
  | { readonly kind: 'GRPCRoute'; readonly route: GrpcRoute };

/** `HTTPRoute/ns/name`. */
export function routeKey(r: MeshRoute): string {
  return `${r.kind}/${r.route.namespace}/${r.route.name}`;
}
