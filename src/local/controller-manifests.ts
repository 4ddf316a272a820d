import YAML from 'yaml';
import type { ConfigIssue } from '../config/issue.js';
import { isWaypoint } from '../gateway-api/waypoint.js';
import { checkWaypoint } from '../gateway-api/waypoint-render.js';
import { parseManifestTexts } from '../manifests/load-manifests.js';
import { type Manifests, type MeshObject, objectKey } from '../manifests/model.js';
import type { ParseOptions } from '../manifests/parse-object.js';
import { toManifests } from './manifest-merge.js';

/*
 * The objects controllers made through local mode's API (kept in the run folder, see
 * kube-api/controller-objects.ts), run by the cluster like declared ones: the control plane's
 * waypoint Deployments become pods here, exactly as a cluster's Deployment controller and kubelet
 * would run them. They are parsed with the manifests' parser, so a kept object is held to the
 * same rules as a declared one.
 */

type Json = Record<string, unknown>;

/** Where messages say a kept object comes from. */
export const CONTROLLER_OBJECTS_FILE = 'controller-objects (local API)';

function describe(o: Json): string {
  const m = (o.metadata ?? {}) as Json;
  return `${String(o.kind)} ${String(m.namespace ?? '')}/${String(m.name ?? '')}`;
}

/** One kept object, parsed (the Namespace it is in goes along so the namespace check holds). */
export function parseControllerObject(
  o: Json,
  opts: ParseOptions,
): { objects: MeshObject[]; issues: ConfigIssue[] } {
  const m = (o.metadata ?? {}) as Json;
  const docs =
    typeof m.namespace === 'string' && m.namespace !== ''
      ? [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: m.namespace } }, o]
      : [o];
  const r = parseManifestTexts(
    [
      {
        file: `${CONTROLLER_OBJECTS_FILE}: ${describe(o)}`,
        text: docs.map((d) => YAML.stringify(d)).join('---\n'),
      },
    ],
    opts,
  );
  const objects = [
    ...r.manifests.serviceAccounts,
    ...r.manifests.deployments,
    ...r.manifests.services,
    ...r.manifests.pods,
    ...r.manifests.kept,
    ...(o.kind === 'Namespace' ? r.manifests.namespaces : []),
  ];
  return { objects, issues: [...r.issues] };
}

/** The errors that refuse a kept object (as the API answers a write of it). */
export function controllerObjectProblems(o: Json, opts: ParseOptions): string[] {
  return parseControllerObject(o, opts)
    .issues.filter((i) => i.severity === 'error')
    .map((i) => `${i.path === '' ? '' : `${i.path}: `}${i.message}`);
}

/**
 * The manifests with the kept objects added. An object the manifests declare under the same name
 * wins, with a warning; one that no longer parses is left out, with its errors. `inEffect` names
 * (objectKey) the kept objects that run.
 */
export function withControllerObjects(
  m: Manifests,
  objects: readonly Json[],
  opts: ParseOptions,
): { manifests: Manifests; issues: ConfigIssue[]; inEffect: Set<string> } {
  const issues: ConfigIssue[] = [];
  const declared = new Set<string>(
    [...m.namespaces, ...m.serviceAccounts, ...m.pods, ...m.deployments, ...m.services, ...m.kept].map((o) =>
      objectKey(o),
    ),
  );
  const added: MeshObject[] = [];
  const inEffect = new Set<string>();
  for (const o of objects) {
    const r = parseControllerObject(o, opts);
    issues.push(...r.issues);
    if (r.issues.some((i) => i.severity === 'error')) continue;
    for (const p of r.objects) {
      const key = objectKey(p);
      if (declared.has(key)) {
        issues.push({
          severity: 'warning',
          file: p.source.file,
          line: p.source.line,
          path: '',
          object: key,
          message: `${key} is declared in the manifests: the one a controller made is not run`,
        });
        continue;
      }
      added.push(p);
      inEffect.add(key);
    }
  }
  if (added.length === 0) return { manifests: m, issues, inEffect };
  const all: MeshObject[] = [
    ...m.namespaces,
    ...m.serviceAccounts,
    ...m.pods,
    ...m.deployments,
    ...m.services,
    ...m.kept,
    ...added,
  ];
  return { manifests: toManifests(all), issues, inEffect };
}

/**
 * The waypoint Gateways whose Deployment the control plane has not made yet (`ns/name`): local mode
 * is not ready while one is pending, so that `ambit local up --wait` returns with the waypoints
 * running, as it does with every declared pod. A Gateway the control plane rejects makes nothing and
 * is not waited for.
 */
export function pendingWaypoints(m: Manifests): string[] {
  const deployments = new Set(m.deployments.map((d) => `${d.meta.namespace}/${d.meta.name}`));
  const out: string[] = [];
  for (const k of m.kept) {
    if (k.kind !== 'Gateway' || k.parsed?.kind !== 'Gateway') continue;
    const gw = k.parsed.value;
    if (!isWaypoint(gw) || checkWaypoint(gw).rejected !== undefined) continue;
    const key = `${gw.namespace}/${gw.name}`;
    if (!deployments.has(key)) out.push(key);
  }
  return out;
}
