import { parentRefSelects } from './route-attach.js';
import {
  type BackendObjectRef,
  GATEWAY_GROUP,
  type Gateway,
  type HttpFilter,
  type MeshRoute,
  type ParentRef,
  WAYPOINT_CLASS,
} from './types.js';
import { USE_WAYPOINT, type WaypointRef } from './waypoint.js';
import { checkWaypoint } from './waypoint-render.js';

/**
 * Gateway API status for what Ambit controls: waypoint Gateways (class `ambit-waypoint`) and the
 * HTTPRoutes and GRPCRoutes attached to Services (GAMMA), computed the way istiod does for its
 * waypoints, with the spec's condition types and reasons. Pure: the facts about the cluster come in
 * as arguments, and the status writer adds `observedGeneration` and `lastTransitionTime`
 * (`toKubeConditions`).
 */

/** A condition without its bookkeeping fields (see `toKubeConditions`). */
export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  /** CamelCase, from the spec's constants where one fits. */
  readonly reason: string;
  readonly message: string;
}

/** The GatewayClass `ambit-waypoint`'s `controllerName`, written in every route parent status. */
export const CONTROLLER_NAME = 'ambit.dev/gateway-controller';

export const ConditionType = {
  Accepted: 'Accepted',
  Programmed: 'Programmed',
  ResolvedRefs: 'ResolvedRefs',
  /** Istio's own route condition: whether a waypoint serves the parent Service. */
  ResolvedWaypoints: 'ResolvedWaypoints',
} as const;

/** The reasons used here: the spec's (apis/v1 shared_types.go, gateway_types.go), and Istio's two. */
export const Reason = {
  Accepted: 'Accepted',
  Programmed: 'Programmed',
  ResolvedRefs: 'ResolvedRefs',
  Invalid: 'Invalid',
  Pending: 'Pending',
  ListenersNotValid: 'ListenersNotValid',
  UnsupportedAddress: 'UnsupportedAddress',
  AddressNotAssigned: 'AddressNotAssigned',
  AddressNotUsable: 'AddressNotUsable',
  UnsupportedProtocol: 'UnsupportedProtocol',
  PortUnavailable: 'PortUnavailable',
  NoMatchingParent: 'NoMatchingParent',
  NotAllowedByListeners: 'NotAllowedByListeners',
  UnsupportedValue: 'UnsupportedValue',
  /** GEP-1294: an HTTPRoute shadowed by GRPCRoutes on the same Service port. */
  Conflicted: 'Conflicted',
  BackendNotFound: 'BackendNotFound',
  RefNotPermitted: 'RefNotPermitted',
  InvalidKind: 'InvalidKind',
  ResolvedWaypoints: 'ResolvedWaypoints',
  /** Istio's: neither the Service nor its namespace asks for a waypoint. */
  MissingUseWaypointLabel: 'MissingUseWaypointLabel',
  /** A waypoint is asked for but cannot take the Service's traffic (missing, or for workloads only). */
  WaypointNotUsable: 'WaypointNotUsable',
} as const;

/** metav1.Condition's limit on `message`. */
const MAX_MESSAGE = 32768;

function cond(type: string, status: Condition['status'], reason: string, message: string): Condition {
  return {
    type,
    status,
    reason,
    message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message,
  };
}

// ---------------------------------------------------------------------------------------------
// Gateways

export interface GatewayFacts {
  /** From the waypoint Deployment's status. */
  readonly readyReplicas: number;
  readonly replicas: number;
  /** The waypoint Service's cluster IP, once it has one. */
  readonly address?: string;
  /** From rendering and the Gateway's labels (`WaypointRender.problems`): reported, not fatal. */
  readonly problems: readonly string[];
}

export interface RouteGroupKind {
  readonly group: string;
  readonly kind: string;
}

export interface ListenerStatus {
  readonly name: string;
  readonly supportedKinds: readonly RouteGroupKind[];
  readonly attachedRoutes: number;
  readonly conditions: readonly Condition[];
}

export interface GatewayStatus {
  readonly conditions: readonly Condition[];
  readonly addresses: readonly { readonly type: 'IPAddress'; readonly value: string }[];
  readonly listeners: readonly ListenerStatus[];
}

const nsName = (namespace: string, name: string): string => `${namespace}/${name}`;

/**
 * The status of a waypoint Gateway (class `ambit-waypoint`; the caller writes none for other
 * classes, which are another controller's):
 * - Accepted: False when nothing can be rendered for it (ListenersNotValid: no HBONE listener on
 *   15008; UnsupportedAddress; Invalid: a name that cannot name a Service). True otherwise, with
 *   reason ListenersNotValid when some listeners are ignored (as istiod and the spec do when at
 *   least one listener is valid), and the render problems in the message.
 * - Programmed: True once a waypoint pod is ready and its Service has an address; else False with
 *   Invalid (not accepted), Pending (no pod ready), AddressNotAssigned (no cluster IP yet) or
 *   AddressNotUsable (the Service's IP is not the one `spec.addresses` asks for).
 * - listeners: routes attach to the Services a waypoint serves, not to its listener, so each
 *   listener supports no route kind and has no attached routes (as istiod reports its waypoints).
 */
export function gatewayStatus(gw: Gateway, f: GatewayFacts): GatewayStatus {
  const check = checkWaypoint(gw);
  const problems = [...new Set(f.problems)].filter((p) => p !== check.rejected?.message);
  const withProblems = (message: string): string =>
    problems.length === 0 ? message : `${message}; ${problems.join('; ')}`;
  const ignored = gw.listeners.flatMap((l, i) => {
    const p = check.listeners[i];
    return p === undefined ? [] : [`listener ${l.name} is ignored: ${p.message}`];
  });

  let accepted: Condition;
  if (check.rejected !== undefined)
    accepted = cond(ConditionType.Accepted, 'False', check.rejected.reason, check.rejected.message);
  else if (ignored.length > 0)
    accepted = cond(
      ConditionType.Accepted,
      'True',
      Reason.ListenersNotValid,
      withProblems(ignored.join('; ')),
    );
  else accepted = cond(ConditionType.Accepted, 'True', Reason.Accepted, withProblems('Resource accepted'));

  const pods = `${f.readyReplicas}/${f.replicas} waypoint pods ready`;
  const service = `Service ${nsName(gw.namespace, gw.name)}`;
  let programmed: Condition;
  if (check.rejected !== undefined)
    programmed = cond(ConditionType.Programmed, 'False', Reason.Invalid, 'the Gateway is not accepted');
  else if (f.readyReplicas < 1)
    programmed = cond(
      ConditionType.Programmed,
      'False',
      Reason.Pending,
      f.address === undefined ? `${pods}; ${service} has no cluster IP yet` : pods,
    );
  else if (f.address === undefined)
    programmed = cond(
      ConditionType.Programmed,
      'False',
      Reason.AddressNotAssigned,
      `${service} has no cluster IP yet`,
    );
  else if (check.clusterIps.length > 0 && !check.clusterIps.includes(f.address))
    programmed = cond(
      ConditionType.Programmed,
      'False',
      Reason.AddressNotUsable,
      `spec.addresses asks for ${check.clusterIps.join(', ')} but ${service} has ${f.address}; a Service's cluster IP cannot change: delete the Service to have it re-created with the new address`,
    );
  else
    programmed = cond(ConditionType.Programmed, 'True', Reason.Programmed, `${pods}; address ${f.address}`);

  const listeners = gw.listeners.map((l, i): ListenerStatus => {
    const p = check.listeners[i];
    const conditions =
      p === undefined
        ? [
            cond(ConditionType.Accepted, 'True', Reason.Accepted, 'Listener accepted'),
            programmed.status === 'True'
              ? cond(ConditionType.Programmed, 'True', Reason.Programmed, 'Listener programmed')
              : cond(ConditionType.Programmed, 'False', Reason.Pending, programmed.message),
          ]
        : [
            cond(ConditionType.Accepted, 'False', p.reason, p.message),
            cond(ConditionType.Programmed, 'False', Reason.Invalid, p.message),
          ];
    return {
      name: l.name,
      supportedKinds: [],
      attachedRoutes: 0,
      // A waypoint listener refers to nothing (no certificates): its references always resolve.
      conditions: [
        ...conditions,
        cond(ConditionType.ResolvedRefs, 'True', Reason.ResolvedRefs, 'No references'),
      ],
    };
  });

  return {
    conditions: [accepted, programmed],
    addresses: f.address === undefined ? [] : [{ type: 'IPAddress', value: f.address }],
    listeners,
  };
}

/**
 * The status of a Gateway of class `ambit-waypoint` that could not be read (`reason`: the parse
 * error with `file:line path`): not accepted, not programmed; its listeners are not known.
 */
export function rejectedGatewayStatus(reason: string): GatewayStatus {
  return {
    conditions: [
      cond(ConditionType.Accepted, 'False', Reason.Invalid, reason),
      cond(ConditionType.Programmed, 'False', Reason.Invalid, 'the Gateway is not accepted'),
    ],
    addresses: [],
    listeners: [],
  };
}

// ---------------------------------------------------------------------------------------------
// Routes

/** A Service port as `RouteFacts.service` gives it: a number, or a port with its name. */
export type ServicePortFact = number | { readonly port: number; readonly name?: string };

export interface RouteFacts {
  /** The Service, if it exists, with its ports. */
  service(namespace: string, name: string): { readonly ports: readonly ServicePortFact[] } | undefined;
  /**
   * The waypoint the Service's traffic goes through, if any; or why the waypoint its labels ask for
   * is not used (mesh/waypoints.ts `bindWaypoint`'s `problem`).
   */
  waypointOf(namespace: string, name: string): WaypointRef | { readonly problem: string } | undefined;
  /**
   * Whether a ReferenceGrant in `to` lets routes of `kind` in `from` refer to the Service `name`.
   * Absent: no ReferenceGrant support, so a cross-namespace backend is not permitted.
   */
  referenceAllowed?(r: {
    readonly kind: MeshRoute['kind'];
    readonly from: string;
    readonly to: string;
    readonly name: string;
  }): boolean;
  /** A Gateway, to tell whether a Gateway parentRef is a waypoint (Ambit's to report on). */
  gateway?(namespace: string, name: string): Gateway | undefined;
  /**
   * Every route of the mesh (this one may be among them), to find HTTPRoutes that GRPCRoutes
   * shadow on the same Service port (GEP-1294). Absent: no conflict is reported.
   */
  routes?: Iterable<MeshRoute>;
}

export interface RouteParentStatus {
  readonly parentRef: ParentRef;
  readonly controllerName: string;
  readonly conditions: readonly Condition[];
}

export interface RouteStatus {
  readonly parents: readonly RouteParentStatus[];
}

const isServiceRef = (r: { readonly group: string; readonly kind: string }): boolean =>
  r.group === '' && r.kind === 'Service';
const isGatewayRef = (r: ParentRef): boolean => r.group === GATEWAY_GROUP && r.kind === 'Gateway';

/**
 * Whether Ambit writes the status for this parentRef: a Service (GAMMA), or a Gateway that is a
 * waypoint. Other parents (another class's Gateways, unknown kinds, Gateways that do not exist)
 * belong to other controllers or to none, and get no entry, as istiod does.
 */
export function ownsParent(ref: ParentRef, routeNamespace: string, f: Pick<RouteFacts, 'gateway'>): boolean {
  if (isServiceRef(ref)) return true;
  if (!isGatewayRef(ref)) return false;
  return f.gateway?.(ref.namespace ?? routeNamespace, ref.name)?.gatewayClassName === WAYPOINT_CLASS;
}

const portOf = (p: ServicePortFact): { port: number; name?: string } =>
  typeof p === 'number' ? { port: p } : p;

/**
 * The status of a valid route, one entry per parentRef Ambit owns (`ownsParent`), in spec order:
 * - Accepted: True when the parent Service exists and has the port (`port`, or the port named by
 *   `sectionName`); False NoMatchingParent when it does not; False Conflicted when GRPCRoutes of
 *   the route's namespace take every port it attaches to (GEP-1294: GRPCRoute wins); False
 *   NotAllowedByListeners for a waypoint Gateway named as parent, since routes attach to the
 *   Services a waypoint serves.
 * - ResolvedRefs: False BackendNotFound / RefNotPermitted / InvalidKind for a backendRef (or a
 *   RequestMirror's) that does not resolve. The route stays accepted: requests for that backend get
 *   a 500, the spec's rule; a weight-0 backend is reported as well, though it gets no traffic.
 * - ResolvedWaypoints (Service parents): whether a waypoint serves the Service. Without one the
 *   route stays Accepted (it is valid, and applies as soon as a waypoint serves the Service) and
 *   this condition says why it has no effect yet. istiod reports the same case with its message
 *   alone ("label missing ... route will not be respected") under status True; False here, so that
 *   `kubectl wait --for=condition=ResolvedWaypoints` means what it says.
 */
export function routeStatus(route: MeshRoute, f: RouteFacts): RouteStatus {
  const refs = resolvedRefs(route, f);
  const parents: RouteParentStatus[] = [];
  const seen = new Set<string>();
  for (const ref of route.route.parentRefs) {
    const key = JSON.stringify(ref);
    if (seen.has(key) || !ownsParent(ref, route.route.namespace, f)) continue;
    seen.add(key);
    const conditions = isServiceRef(ref)
      ? serviceParent(route, ref, f, refs)
      : [
          cond(
            ConditionType.Accepted,
            'False',
            Reason.NotAllowedByListeners,
            `Gateway ${nsName(ref.namespace ?? route.route.namespace, ref.name)} is a waypoint: routes attach to the Services it serves (parentRefs: [{group: "", kind: Service, name: <service>}]), not to the waypoint`,
          ),
          refs,
        ];
    parents.push({ parentRef: ref, controllerName: CONTROLLER_NAME, conditions });
  }
  return { parents };
}

function serviceParent(route: MeshRoute, ref: ParentRef, f: RouteFacts, refs: Condition): Condition[] {
  const r = route.route;
  const namespace = ref.namespace ?? r.namespace;
  const service = `Service ${nsName(namespace, ref.name)}`;
  const svc = f.service(namespace, ref.name);
  if (svc === undefined) {
    const missing = `${service} does not exist`;
    return [
      cond(ConditionType.Accepted, 'False', Reason.NoMatchingParent, missing),
      refs,
      cond(ConditionType.ResolvedWaypoints, 'False', Reason.NoMatchingParent, missing),
    ];
  }
  const ports = svc.ports.map(portOf);
  const selected = ports.filter(
    (p) =>
      (ref.port === undefined || p.port === ref.port) &&
      (ref.sectionName === undefined || p.name === ref.sectionName),
  );
  let accepted: Condition;
  if (selected.length === 0) {
    const has = ports.length === 0 ? 'it has none' : `it has ${ports.map(showPort).join(', ')}`;
    const port = ref.port === undefined ? 'port' : `port ${ref.port}`;
    const wanted =
      ref.sectionName === undefined
        ? ref.port === undefined
          ? 'ports'
          : port
        : `${port} named ${ref.sectionName}`;
    accepted = cond(
      ConditionType.Accepted,
      'False',
      Reason.NoMatchingParent,
      `${service} has no ${wanted} (${has})`,
    );
  } else {
    const { ports: shadowed, by } =
      route.kind === 'HTTPRoute' ? shadowedPorts(r, namespace, ref.name, selected, f) : { ports: [], by: [] };
    const on =
      ref.port === undefined && ref.sectionName === undefined
        ? ''
        : ` port ${selected.map(showPort).join(', ')}`;
    if (shadowed.length === selected.length)
      accepted = cond(
        ConditionType.Accepted,
        'False',
        Reason.Conflicted,
        `GRPCRoute ${by.join(', ')} attaches to ${service}${on} too, and a GRPCRoute takes precedence over an HTTPRoute on the same port (GEP-1294)`,
      );
    else
      accepted = cond(
        ConditionType.Accepted,
        'True',
        Reason.Accepted,
        `attached to ${service}${on}` +
          (shadowed.length === 0
            ? ''
            : `; not on port ${shadowed.map(showPort).join(', ')}, where GRPCRoute ${by.join(', ')} takes precedence (GEP-1294)`),
      );
  }
  return [accepted, refs, waypointCondition(f.waypointOf(namespace, ref.name), service)];
}

function showPort(p: { port: number; name?: string }): string {
  return p.name === undefined ? String(p.port) : `${p.port} (${p.name})`;
}

/**
 * The selected ports of the Service on which GRPCRoutes of the HTTPRoute's own namespace attach, and
 * those routes (`ns/name`, sorted).
 */
function shadowedPorts(
  r: MeshRoute['route'],
  namespace: string,
  name: string,
  selected: readonly { port: number; name?: string }[],
  f: RouteFacts,
): { ports: { port: number; name?: string }[]; by: string[] } {
  if (f.routes === undefined) return { ports: [], by: [] };
  const grpc: MeshRoute['route'][] = [];
  // A producer HTTPRoute competes with producer GRPCRoutes, a consumer one with its namespace's:
  // either way, with the GRPCRoutes of its own namespace (route-attach.ts decides per group).
  for (const m of f.routes)
    if (m.kind === 'GRPCRoute' && m.route.namespace === r.namespace) grpc.push(m.route);
  const by = new Set<string>();
  const ports = selected.filter((p) => {
    const target = { namespace, name, port: p.port, ...(p.name === undefined ? {} : { portName: p.name }) };
    const winners = grpc.filter((g) =>
      g.parentRefs.some((ref) => parentRefSelects(ref, g.namespace, target)),
    );
    for (const g of winners) by.add(nsName(g.namespace, g.name));
    return winners.length > 0;
  });
  return { ports, by: [...by].sort() };
}

function waypointCondition(w: ReturnType<RouteFacts['waypointOf']>, service: string): Condition {
  if (w === undefined)
    return cond(
      ConditionType.ResolvedWaypoints,
      'False',
      Reason.MissingUseWaypointLabel,
      `no waypoint serves ${service} (label ${USE_WAYPOINT} on the Service or its namespace); the route has no effect until one does`,
    );
  if ('problem' in w)
    return cond(
      ConditionType.ResolvedWaypoints,
      'False',
      Reason.WaypointNotUsable,
      `${w.problem}; the route has no effect until a waypoint serves ${service}`,
    );
  return cond(
    ConditionType.ResolvedWaypoints,
    'True',
    Reason.ResolvedWaypoints,
    `${service} is served by waypoint ${nsName(w.namespace, w.name)}`,
  );
}

interface RefProblem {
  readonly reason: string;
  readonly message: string;
}

/** Every backend a route refers to, with its field path: backendRefs, and RequestMirror filters. */
function backends(route: MeshRoute): { path: string; ref: BackendObjectRef; weight?: number }[] {
  const out: { path: string; ref: BackendObjectRef; weight?: number }[] = [];
  const mirrors = (filters: readonly HttpFilter[], at: string): void => {
    filters.forEach((fl, k) => {
      if (fl.type === 'RequestMirror')
        out.push({ path: `${at}.filters[${k}].requestMirror.backendRef`, ref: fl.mirror.backendRef });
    });
  };
  route.route.rules.forEach((rule, i) => {
    const at = `spec.rules[${i}]`;
    mirrors(rule.filters, at);
    rule.backendRefs.forEach((b, j) => {
      out.push({ path: `${at}.backendRefs[${j}]`, ref: b, weight: b.weight });
      mirrors(b.filters, `${at}.backendRefs[${j}]`);
    });
  });
  return out;
}

function refProblem(
  route: MeshRoute,
  b: { path: string; ref: BackendObjectRef; weight?: number },
  f: RouteFacts,
): RefProblem | undefined {
  const { ref } = b;
  const from = route.route.namespace;
  const namespace = ref.namespace ?? from;
  const service = `Service ${nsName(namespace, ref.name)}`;
  const idle = b.weight === 0 ? ' (weight 0: it gets no traffic)' : '';
  if (!isServiceRef(ref))
    return {
      reason: Reason.InvalidKind,
      message: `${b.path}: kind ${ref.group === '' ? ref.kind : `${ref.kind}.${ref.group}`} is not supported; a backend is a Service`,
    };
  if (
    namespace !== from &&
    !(f.referenceAllowed?.({ kind: route.kind, from, to: namespace, name: ref.name }) ?? false)
  )
    return {
      reason: Reason.RefNotPermitted,
      message: `${b.path}: ${service} is in another namespace, and no ReferenceGrant in ${namespace} allows ${route.kind}s from ${from} to refer to it`,
    };
  const svc = f.service(namespace, ref.name);
  if (svc === undefined)
    return {
      reason: Reason.BackendNotFound,
      message: `${b.path}: ${service} does not exist${idle}`,
    };
  const ports = svc.ports.map(portOf);
  if (ref.port !== undefined && !ports.some((p) => p.port === ref.port))
    return {
      reason: Reason.BackendNotFound,
      message: `${b.path}: ${service} has no port ${ref.port} (${ports.length === 0 ? 'it has none' : `it has ${ports.map(showPort).join(', ')}`})${idle}`,
    };
  return undefined;
}

/** ResolvedRefs for the whole route (backends are the same whatever the parent): the first reason, every message. */
function resolvedRefs(route: MeshRoute, f: RouteFacts): Condition {
  const problems = backends(route).flatMap((b) => {
    const p = refProblem(route, b, f);
    return p === undefined ? [] : [p];
  });
  const first = problems[0];
  if (first === undefined)
    return cond(ConditionType.ResolvedRefs, 'True', Reason.ResolvedRefs, 'All references resolved');
  return cond(ConditionType.ResolvedRefs, 'False', first.reason, problems.map((p) => p.message).join('; '));
}

/**
 * The status of a route that could not be read (`reason`: the parse error, `file:line path: why`):
 * Accepted False UnsupportedValue on each parentRef Ambit owns. Without the route's facts that is
 * every Service parentRef; pass `owns` (e.g. `ownsParent` with the facts) to include waypoint
 * Gateways. `kind` is the route's kind, named when `reason` is empty.
 */
export function rejectedRouteStatus(
  kind: MeshRoute['kind'],
  parentRefs: readonly ParentRef[],
  reason: string,
  owns: (ref: ParentRef) => boolean = isServiceRef,
): RouteStatus {
  const seen = new Set<string>();
  const parents: RouteParentStatus[] = [];
  for (const ref of parentRefs) {
    const key = JSON.stringify(ref);
    if (seen.has(key) || !owns(ref)) continue;
    seen.add(key);
    parents.push({
      parentRef: ref,
      controllerName: CONTROLLER_NAME,
      conditions: [
        cond(
          ConditionType.Accepted,
          'False',
          Reason.UnsupportedValue,
          reason === '' ? `the ${kind} could not be read` : reason,
        ),
      ],
    });
  }
  return { parents };
}

// ---------------------------------------------------------------------------------------------
// Presentation and the status writer

/**
 * One line for a CLI table: `Accepted=True, Programmed=False (Pending: 0/1 waypoint pods ready)`.
 * A condition's reason and message are shown when it is not True, or True for a reason other than
 * its own name (`Accepted=True (ListenersNotValid: ...)`).
 */
export function formatConditions(conditions: readonly Condition[]): string {
  return conditions
    .map((c) => {
      const plain = `${c.type}=${c.status}`;
      if (c.status === 'True' && c.reason === c.type) return plain;
      return c.message === '' ? `${plain} (${c.reason})` : `${plain} (${c.reason}: ${c.message})`;
    })
    .join(', ');
}

/** A condition as the API stores it (metav1.Condition). */
export interface KubeCondition extends Condition {
  readonly observedGeneration: number;
  /** RFC 3339: when `status` last changed. */
  readonly lastTransitionTime: string;
}

const OWN_TYPES: ReadonlySet<string> = new Set(Object.values(ConditionType));

/**
 * Merges freshly computed conditions into the ones the object has, as the spec asks of a status
 * writer: a condition keeps its `lastTransitionTime` while its status is unchanged; conditions that
 * another controller set are kept, in place; Ambit's own that no longer apply are dropped.
 * `now` is RFC 3339 (pure: the caller reads the clock).
 */
export function toKubeConditions(
  next: readonly Condition[],
  previous: readonly KubeCondition[],
  o: { readonly generation: number; readonly now: string },
): KubeCondition[] {
  const fresh = new Map(next.map((c) => [c.type, c]));
  const stamp = (c: Condition, before: KubeCondition | undefined): KubeCondition => ({
    ...c,
    observedGeneration: o.generation,
    lastTransitionTime:
      before !== undefined && before.status === c.status ? before.lastTransitionTime : o.now,
  });
  const out: KubeCondition[] = [];
  for (const p of previous) {
    const c = fresh.get(p.type);
    if (c !== undefined) {
      out.push(stamp(c, p));
      fresh.delete(p.type);
    } else if (!OWN_TYPES.has(p.type)) out.push(p);
  }
  for (const c of fresh.values()) out.push(stamp(c, undefined));
  return out;
}
