import { collectionPath, resourceOfKind } from '../kube/api-resources.js';
import type { KubeClient } from '../kube/client.js';
import type { Json } from '../kube/field-paths.js';

/** The field manager of every apply the control plane makes (what `managedFields` shows). */
export const FIELD_MANAGER = 'ambit-control-plane';

/** An object the control plane applies: a kind the API resources know, with its name (and namespace). */
export interface AppliedObject {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
}

/**
 * Server-side apply of one object as the control plane's field manager, with `force` (the control
 * plane owns what it sets; someone else's change to one of those fields is taken back): a PATCH of
 * `application/apply-patch+yaml`, which creates the object when it is missing (RBAC asks for
 * `create` and `patch`). Resolves to the object as the API server stored it.
 */
export async function applyServerSide(
  client: Pick<KubeClient, 'json'>,
  object: AppliedObject,
): Promise<Json> {
  const r = resourceOfKind(object.kind);
  if (r === undefined) throw new Error(`no API resource for ${object.kind}`);
  const path = `${collectionPath(r, object.metadata.namespace)}/${encodeURIComponent(object.metadata.name)}?fieldManager=${FIELD_MANAGER}&force=true`;
  return (await client.json('PATCH', path, object, undefined, 'application/apply-patch+yaml')) as Json;
}
