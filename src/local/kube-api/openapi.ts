import { createHash } from 'node:crypto';
import { API_RESOURCES, type ApiResource, apiVersionOf } from '../../kube/api-resources.js';
import type { Json } from './selectors.js';

/**
 * The OpenAPI v3 documents kubectl reads before `apply` and `create`: it asks whether the server
 * validates fields itself (a `fieldValidation` query parameter on each kind's PATCH) and, when it does,
 * leaves validation to the server, which here is local mode's manifest parser with its file:line:path
 * messages. Schemas are not served: kubectl then builds strategic merge patches for built-in kinds from
 * its own types and JSON merge patches for the others, as it does for custom resources without schemas.
 */
function gvPath(gv: string): string {
  return gv.includes('/') ? `apis/${gv}` : `api/${gv}`;
}

function groupVersions(): Map<string, ApiResource[]> {
  const m = new Map<string, ApiResource[]>();
  for (const r of API_RESOURCES) {
    const gv = apiVersionOf(r);
    m.set(gv, [...(m.get(gv) ?? []), r]);
  }
  return m;
}

/** The documents by path (`/openapi/v3`, `/openapi/v3/api/v1`, ...). */
export function openApiDocuments(): ReadonlyMap<string, Json> {
  const docs = new Map<string, Json>();
  const index: Json = {};
  for (const [gv, resources] of groupVersions()) {
    const paths: Json = {};
    for (const r of resources) {
      const base = `/${gvPath(gv)}${r.namespaced ? '/namespaces/{namespace}' : ''}/${r.plural}/{name}`;
      paths[base] = {
        patch: {
          operationId: `patch${r.kind}`,
          'x-kubernetes-action': 'patch',
          'x-kubernetes-group-version-kind': { group: r.group, version: r.version, kind: r.kind },
          parameters: [
            { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
          ],
          responses: { '200': { description: 'OK' } },
        },
      };
    }
    const doc = {
      openapi: '3.0.0',
      info: { title: 'Kubernetes (ambit local mode)', version: 'v1.32.0' },
      paths,
      components: { schemas: {} },
    };
    const hash = createHash('sha256').update(JSON.stringify(doc)).digest('hex').slice(0, 32).toUpperCase();
    docs.set(`/openapi/v3/${gvPath(gv)}`, doc);
    index[gvPath(gv)] = { serverRelativeURL: `/openapi/v3/${gvPath(gv)}?hash=${hash}` };
  }
  docs.set('/openapi/v3', { paths: index });
  return docs;
}
