import type { IncomingMessage } from 'node:http';
import type { ApiResource } from '../../kube/api-resources.js';
import type { Json } from './selectors.js';

/*
 * How local mode's API server answers failures: as `Status` objects, the way kube-apiserver does.
 */

/** A failure the API answers with a `Status`. */
export class ApiStatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Json,
  ) {
    super(message);
  }
}

export function status(e: ApiStatusError): Json {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: e.message,
    reason: e.reason,
    ...(e.details === undefined ? {} : { details: e.details }),
    code: e.code,
  };
}

export const notFound = (r: ApiResource, name: string): ApiStatusError =>
  new ApiStatusError(
    404,
    'NotFound',
    `${r.plural}${r.group === '' ? '' : `.${r.group}`} "${name}" not found`,
    {
      name,
      group: r.group,
      kind: r.plural,
    },
  );

export function metaOf(o: unknown): Json {
  return ((o as Json | undefined)?.metadata ?? {}) as Json;
}

/** kubectl asks for server-side printing (a `meta.k8s.io` Table) in its Accept header. */
export function wantsTable(req: IncomingMessage): boolean {
  return /as=Table/.test(req.headers.accept ?? '');
}
