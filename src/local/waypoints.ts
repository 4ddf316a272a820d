import YAML from 'yaml';
import type { ConfigIssue } from '../config/issue.js';
import type { Gateway } from '../gateway-api/types.js';
import { isWaypoint } from '../gateway-api/waypoint.js';
import {
  type KubeObject,
  renderWaypoint,
  type WaypointRenderOptions,
} from '../gateway-api/waypoint-render.js';
import { parseManifestTexts } from '../manifests/load-manifests.js';
import { type Manifests, type MeshObject, objectKey } from '../manifests/model.js';
import { toManifests } from './manifest-merge.js';

/*
 * Waypoints in a local cluster. On Kubernetes the control plane applies what `renderWaypoint` makes
 * of each waypoint Gateway (a ServiceAccount, a Deployment, a Service) through the API; a local
 * cluster has no writable API yet, so its daemon, which plays the API server and the controllers,
 * applies the same render itself, adapted to local pods: the container runs this build's waypoint
 * with Node (pods have no images), and reads its token and trust bundle where the local kubelet
 * puts them instead of from projected volumes.
 */

export interface LocalWaypointOptions extends WaypointRenderOptions {
  /** The command that runs the waypoint daemon in a pod: Node and `dist/l7-waypoint/main.js`. */
  readonly command: readonly string[];
  /** The pod's ServiceAccount token file; `$(POD_NAMESPACE)` and `$(POD_NAME)` are expanded per pod. */
  readonly tokenFile: string;
  readonly caBundle: string;
  readonly logLevel: string;
}

/** A rendered object made runnable as a local pod (only the Deployment's container changes). */
export function localize(o: KubeObject, l: LocalWaypointOptions): KubeObject {
  if (o.kind !== 'Deployment') return o;
  const spec = structuredClone(o.spec) as {
    template: {
      spec: {
        containers: { env: { name: string; value?: string }[]; command?: string[]; args?: string[] }[];
      };
    };
  };
  for (const c of spec.template.spec.containers) {
    c.command = [...l.command];
    c.args = [];
    const set = (name: string, value: string): void => {
      const e = c.env.find((v) => v.name === name);
      if (e === undefined) c.env.push({ name, value });
      else e.value = value;
    };
    set('AMBIT_TOKEN_FILE', l.tokenFile);
    set('AMBIT_CA_BUNDLE', l.caBundle);
    set('AMBIT_LOG_LEVEL', l.logLevel);
  }
  return { ...o, spec: spec as unknown as KubeObject['spec'] };
}

/**
 * The manifests with every waypoint Gateway's rendered objects added (an object the user declared
 * under the same name wins, with a warning). Render problems and objects that fail to parse come back
 * as issues on the Gateway.
 */
export function withWaypoints(
  m: Manifests,
  l: LocalWaypointOptions,
): { manifests: Manifests; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const declared = new Set<string>(
    [...m.serviceAccounts, ...m.deployments, ...m.services].map((o) => objectKey(o)),
  );
  const added: MeshObject[] = [];
  for (const k of m.kept) {
    if (k.kind !== 'Gateway' || k.parsed?.kind !== 'Gateway') continue;
    const gw: Gateway = k.parsed.value;
    if (!isWaypoint(gw)) continue;
    const where = { file: k.source.file, line: k.source.line, path: '', object: objectKey(k) };
    const r = renderWaypoint(gw, l);
    for (const p of r.problems) issues.push({ severity: 'warning', ...where, message: p });
    // The Namespace goes along so that the objects' cross-checks (namespace declared) hold; it is dropped.
    const namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: gw.namespace } };
    const text = [namespace, ...r.objects.map((o) => localize(o, l))]
      .map((o) => YAML.stringify(o))
      .join('---\n');
    const parsed = parseManifestTexts(
      [{ file: `${k.source.file} (waypoint ${gw.namespace}/${gw.name})`, text }],
      {
        requireCommand: true,
      },
    );
    for (const i of parsed.issues) issues.push({ ...i, file: k.source.file, line: k.source.line });
    for (const o of [
      ...parsed.manifests.serviceAccounts,
      ...parsed.manifests.deployments,
      ...parsed.manifests.services,
    ]) {
      const key = objectKey(o);
      if (declared.has(key)) {
        issues.push({
          severity: 'warning',
          ...where,
          message: `${key} is declared in the manifests: the waypoint's own ${o.kind} is not made`,
        });
        continue;
      }
      added.push({ ...o, source: k.source });
    }
  }
  if (added.length === 0) return { manifests: m, issues };
  const all: MeshObject[] = [
    ...m.namespaces,
    ...m.serviceAccounts,
    ...m.pods,
    ...m.deployments,
    ...m.services,
    ...m.kept,
    ...added,
  ];
  return { manifests: toManifests(all), issues };
}
