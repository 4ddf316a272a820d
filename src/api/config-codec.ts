import { isIP } from 'node:net';
import type { Protocol } from '../config/model.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import type { MeshNode, MeshService, MeshView, ServiceEndpoint, Workload } from '../mesh/view.js';

/*
 * The config stream's wire shapes (as proto-loader decodes ambit.proto) and the two pure functions on
 * them: the control plane turns two views into an update (full, or the difference), and a proxy
 * applies an update to what it had. Wire shapes stop here: proxies only ever see validated domain types.
 */

export interface WireWorkload {
  uid: string;
  namespace: string;
  name: string;
  service_account: string;
  node: string;
  ips: string[];
  labels: Record<string, string>;
  app: string;
  workload_name: string;
  captured: boolean;
  identity: string;
  ready: boolean;
}

export interface WireService {
  namespace: string;
  name: string;
  hostname: string;
  vips: string[];
  ports: { name: string; port: number; target_port: string; protocol: string; app_protocol: string }[];
  labels: Record<string, string>;
  endpoints: { workload_uid: string; ready: boolean; ports: Record<string, number> }[];
}

export interface WireRejection {
  kind: string;
  namespace: string;
  name: string;
  file: string;
  line: number;
  path: string;
  message: string;
}

export interface WirePolicy {
  key: string;
  json: string;
}

export interface ConfigUpdate {
  version: string;
  full: boolean;
  trust_domain: string;
  nodes: { name: string; ips: string[] }[];
  workloads: WireWorkload[];
  services: WireService[];
  removed_workloads: string[];
  removed_services: string[];
  trust_bundle: string[];
  rejections: WireRejection[];
  policies: WirePolicy[];
  removed_policies: string[];
}

/** What the control plane publishes for nodes; proxies rebuild the same from updates. */
export interface PushedConfig {
  readonly view: MeshView;
  readonly trustBundle: readonly string[];
  readonly rejections: readonly WireRejection[];
  /** Policies by key, as validated JSON (decoded by the policy module). */
  readonly policies: ReadonlyMap<string, string>;
}

export function serviceKey(s: { namespace: string; name: string }): string {
  return `${s.namespace}/${s.name}`;
}

function encodeWorkload(w: Workload): WireWorkload {
  return {
    uid: w.uid,
    namespace: w.namespace,
    name: w.name,
    service_account: w.serviceAccount,
    node: w.node,
    ips: [...w.ips],
    labels: { ...w.labels },
    app: w.app,
    workload_name: w.workloadName,
    captured: w.captured,
    identity: w.identity,
    ready: w.ready,
  };
}

function encodeService(s: MeshService): WireService {
  return {
    namespace: s.namespace,
    name: s.name,
    hostname: s.hostname,
    vips: [...s.vips],
    ports: s.ports.map((p) => ({
      name: p.name ?? '',
      port: p.port,
      target_port: String(p.targetPort),
      protocol: p.protocol,
      app_protocol: p.appProtocol ?? '',
    })),
    labels: { ...s.labels },
    endpoints: s.endpoints.map((e) => ({
      workload_uid: e.workloadUid,
      ready: e.ready,
      ports: { ...e.ports },
    })),
  };
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * The update that brings a node from `prev` (what it was last sent; undefined for a new stream) to
 * `next`: everything when `prev` is undefined, otherwise only what changed and what went away.
 */
export function makeUpdate(
  prev: PushedConfig | undefined,
  next: PushedConfig,
  version: bigint,
): ConfigUpdate {
  const full = prev === undefined;
  const prevW = new Map(prev?.view.workloads.map((w) => [w.uid, w]) ?? []);
  const prevS = new Map(prev?.view.services.map((s) => [serviceKey(s), s]) ?? []);
  const nextW = new Set(next.view.workloads.map((w) => w.uid));
  const nextS = new Set(next.view.services.map(serviceKey));
  return {
    version: version.toString(),
    full,
    trust_domain: next.view.trustDomain,
    nodes: next.view.nodes.map((n) => ({ name: n.name, ips: [...n.ips] })),
    workloads: next.view.workloads.filter((w) => full || !same(prevW.get(w.uid), w)).map(encodeWorkload),
    services: next.view.services.filter((s) => full || !same(prevS.get(serviceKey(s)), s)).map(encodeService),
    removed_workloads: full ? [] : [...prevW.keys()].filter((k) => !nextW.has(k)),
    removed_services: full ? [] : [...prevS.keys()].filter((k) => !nextS.has(k)),
    trust_bundle: full || !same(prev.trustBundle, next.trustBundle) ? [...next.trustBundle] : [],
    rejections: [...next.rejections],
    policies: [...next.policies]
      .filter(([k, v]) => full || prev.policies.get(k) !== v)
      .map(([key, json]) => ({ key, json })),
    removed_policies: full ? [] : [...prev.policies.keys()].filter((k) => !next.policies.has(k)),
  };
}

/** True when the update changes nothing a node would notice (only the version moved). */
export function isEmptyUpdate(u: ConfigUpdate): boolean {
  return (
    !u.full &&
    u.workloads.length === 0 &&
    u.services.length === 0 &&
    u.removed_workloads.length === 0 &&
    u.removed_services.length === 0 &&
    u.trust_bundle.length === 0 &&
    u.policies.length === 0 &&
    u.removed_policies.length === 0
  );
}

function decodeWorkload(w: WireWorkload, problems: string[]): Workload | undefined {
  const bad = (why: string): undefined => {
    problems.push(`workload ${w.namespace}/${w.name} (${w.uid}): ${why}; ignored`);
    return undefined;
  };
  if (w.uid === '' || w.name === '' || w.namespace === '') return bad('uid, name and namespace are required');
  const ips = w.ips.filter((ip) => isIP(ip) !== 0);
  if (ips.length !== w.ips.length) return bad(`an address is not an IP (${w.ips.join(', ')})`);
  if (SpiffeId.tryParse(w.identity) === undefined)
    return bad(`identity ${JSON.stringify(w.identity)} is not a SPIFFE id`);
  return {
    uid: w.uid,
    namespace: w.namespace,
    name: w.name,
    serviceAccount: w.service_account,
    node: w.node,
    ips,
    labels: w.labels,
    app: w.app,
    workloadName: w.workload_name,
    captured: w.captured,
    identity: w.identity,
    ready: w.ready,
  };
}

function decodeService(s: WireService, problems: string[]): MeshService | undefined {
  if (s.vips.some((ip) => isIP(ip) === 0)) {
    problems.push(`service ${s.namespace}/${s.name}: a VIP is not an IP (${s.vips.join(', ')}); ignored`);
    return undefined;
  }
  const endpoints: ServiceEndpoint[] = s.endpoints.map((e) => ({
    workloadUid: e.workload_uid,
    ready: e.ready,
    ports: e.ports,
  }));
  return {
    namespace: s.namespace,
    name: s.name,
    hostname: s.hostname,
    vips: s.vips,
    labels: s.labels,
    ports: s.ports.map((p) => ({
      ...(p.name === '' ? {} : { name: p.name }),
      port: p.port,
      targetPort: /^[0-9]+$/.test(p.target_port) ? Number(p.target_port) : p.target_port,
      protocol: (p.protocol === '' ? 'TCP' : p.protocol) as Protocol,
      ...(p.app_protocol === '' ? {} : { appProtocol: p.app_protocol }),
    })),
    endpoints,
  };
}

/**
 * Applies an update to what a proxy had. Entries that fail validation are left out and described in
 * `problems`; everything else applies (a bad workload never takes the rest of the config down).
 */
export function applyUpdate(
  current: PushedConfig | undefined,
  u: ConfigUpdate,
): { config: PushedConfig; problems: string[] } {
  const problems: string[] = [];
  const base = u.full || current === undefined ? undefined : current;
  const workloads = new Map(base?.view.workloads.map((w) => [w.uid, w]) ?? []);
  const services = new Map(base?.view.services.map((s) => [serviceKey(s), s]) ?? []);
  const policies = new Map(base?.policies ?? []);
  for (const k of u.removed_workloads) workloads.delete(k);
  for (const k of u.removed_services) services.delete(k);
  for (const k of u.removed_policies) policies.delete(k);
  for (const w of u.workloads) {
    const d = decodeWorkload(w, problems);
    if (d !== undefined) workloads.set(d.uid, d);
  }
  for (const s of u.services) {
    const d = decodeService(s, problems);
    if (d !== undefined) services.set(serviceKey(d), d);
  }
  for (const p of u.policies) policies.set(p.key, p.json);
  const nodes: MeshNode[] = u.nodes.map((n) => ({ name: n.name, ips: n.ips }));
  const view: MeshView = {
    revision: u.version,
    trustDomain: u.trust_domain,
    nodes,
    workloads: [...workloads.values()],
    services: [...services.values()],
  };
  const trustBundle = u.trust_bundle.length > 0 ? u.trust_bundle : (base?.trustBundle ?? []);
  return { config: { view, trustBundle, rejections: u.rejections, policies }, problems };
}
