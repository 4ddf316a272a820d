import { API_RESOURCES, type ApiResource, apiVersionOf } from '../../kube/api-resources.js';
import { ApiStatusError } from './api-status.js';
import type { Json } from './selectors.js';

/** Discovery, as kubectl reads it: the version, the API groups, and each group version's resources. */

const VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.0-ambit-local', platform: 'linux/amd64' };

export function groupsOf(): Map<string, ApiResource[]> {
  const m = new Map<string, ApiResource[]>();
  for (const r of API_RESOURCES) {
    const gv = apiVersionOf(r);
    m.set(gv, [...(m.get(gv) ?? []), r]);
  }
  return m;
}

function resourceList(groupVersion: string, resources: readonly ApiResource[]): Json {
  const entries: Json[] = resources.map((r) => ({
    name: r.plural,
    singularName: r.singular,
    namespaced: r.namespaced,
    kind: r.kind,
    verbs: r.verbs,
    ...(r.shortNames.length === 0 ? {} : { shortNames: r.shortNames }),
    ...(r.categories === undefined ? {} : { categories: r.categories }),
  }));
  if (groupVersion === 'apps/v1')
    entries.push({
      name: 'deployments/scale',
      singularName: '',
      namespaced: true,
      group: 'autoscaling',
      version: 'v1',
      kind: 'Scale',
      verbs: ['get', 'patch', 'update'],
    });
  if (groupVersion === 'v1')
    entries.push({ name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] });
  if (groupVersion === 'authentication.k8s.io/v1')
    entries.push({
      name: 'tokenreviews',
      singularName: 'tokenreview',
      namespaced: false,
      kind: 'TokenReview',
      verbs: ['create'],
    });
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources: entries };
}

/** The discovery document at `path`, or undefined when `path` is not a discovery path. */
export function discovery(
  path: string,
  groups: ReadonlyMap<string, readonly ApiResource[]>,
): Json | undefined {
  if (path === '/version') return VERSION;
  if (path === '/api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] };
  if (path === '/apis')
    return {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: [...new Set([...groups.keys(), 'authentication.k8s.io/v1'])]
        .filter((gv) => gv.includes('/'))
        .map((gv) => {
          const [name, version] = gv.split('/') as [string, string];
          return {
            name,
            versions: [{ groupVersion: gv, version }],
            preferredVersion: { groupVersion: gv, version },
          };
        }),
    };
  const gvPath = /^\/(?:api\/(v1)|apis\/([^/]+\/[^/]+))$/.exec(path);
  if (gvPath !== null) {
    const gv = gvPath[1] ?? gvPath[2] ?? '';
    if (gv === 'authentication.k8s.io/v1') return resourceList(gv, []);
    const resources = groups.get(gv);
    if (resources === undefined)
      throw new ApiStatusError(404, 'NotFound', `the server could not find the requested resource (${gv})`);
    return resourceList(gv, resources);
  }
  return undefined;
}
