import type { ConfigIssue } from '../config/issue.js';
import { type Manifests, type MeshObject, objectKey } from '../manifests/model.js';

function all(m: Manifests): MeshObject[] {
  return [...m.namespaces, ...m.serviceAccounts, ...m.pods, ...m.deployments, ...m.services, ...m.kept];
}

/**
 * Applies a reload of the manifests per object: valid objects replace their old versions, objects that
 * were removed go away, and an object that now fails validation (or sits in a file that no longer
 * parses) keeps its last good version instead of disappearing. Returns the effective objects.
 */
export function mergeReload(
  previous: Manifests | undefined,
  next: Manifests,
  issues: readonly ConfigIssue[],
): MeshObject[] {
  const out = new Map<string, MeshObject>();
  for (const o of all(next)) out.set(objectKey(o), o);
  if (previous === undefined) return [...out.values()];
  const rejected = new Set(
    issues.filter((i) => i.severity === 'error' && i.object !== undefined).map((i) => i.object!),
  );
  const brokenFiles = new Set(
    issues.filter((i) => i.severity === 'error' && i.object === undefined).map((i) => i.file),
  );
  for (const o of all(previous)) {
    const key = objectKey(o);
    if (out.has(key)) continue;
    if (rejected.has(key) || brokenFiles.has(o.source.file)) out.set(key, o);
  }
  return [...out.values()];
}

export function toManifests(objects: readonly MeshObject[]): Manifests {
  return {
    namespaces: objects.filter((o) => o.kind === 'Namespace'),
    serviceAccounts: objects.filter((o) => o.kind === 'ServiceAccount'),
    pods: objects.filter((o) => o.kind === 'Pod'),
    deployments: objects.filter((o) => o.kind === 'Deployment'),
    services: objects.filter((o) => o.kind === 'Service'),
    kept: objects.filter(
      (o) => !['Namespace', 'ServiceAccount', 'Pod', 'Deployment', 'Service'].includes(o.kind),
    ),
  } as Manifests;
}
