import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { parse } from 'yaml';
import { AmbitError, ErrorCode } from '../errors.js';

/**
 * Where the Kubernetes API is and how to authenticate to it: read once from a kubeconfig file or from
 * the in-cluster service-account mount. Files (token, CA) are named, not read, so that the client can
 * re-read them when they rotate (a projected token is replaced about every hour).
 */
export interface KubeTarget {
  /** `https://host:port`, without a trailing slash. */
  readonly server: string;
  /** Where this came from, for errors and logs. */
  readonly origin: string;
  readonly caFile?: string;
  readonly caData?: Buffer;
  readonly token?: string;
  readonly tokenFile?: string;
  readonly certData?: Buffer;
  readonly keyData?: Buffer;
  readonly insecureSkipTlsVerify: boolean;
  /** The context's namespace, when it names one. */
  readonly namespace?: string;
}

export const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function named(list: unknown, name: string, what: string, file: string): Json {
  const entries = Array.isArray(list) ? list : [];
  const hit = entries.map(obj).find((e) => e?.name === name);
  const value = obj(hit?.[what]);
  if (value === undefined)
    throw new AmbitError(
      ErrorCode.USAGE,
      `${file}: no ${what} named "${name}" (${what}s: ${entries.map((e) => obj(e)?.name).join(', ') || 'none'})`,
    );
  return value;
}

/** Reads a kubeconfig file: the given context, else its current-context. Relative paths are from the file's folder. */
export function loadKubeconfig(file: string, context?: string): KubeTarget {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new AmbitError(ErrorCode.USAGE, `cannot read kubeconfig ${file}: ${(err as Error).message}`);
  }
  let doc: Json | undefined;
  try {
    doc = obj(parse(text));
  } catch (err) {
    throw new AmbitError(ErrorCode.CONFIG_READ, `${file}: not valid YAML: ${(err as Error).message}`);
  }
  if (doc === undefined) throw new AmbitError(ErrorCode.CONFIG_READ, `${file}: not a kubeconfig`);
  const ctxName = context ?? str(doc['current-context']);
  if (ctxName === undefined)
    throw new AmbitError(ErrorCode.USAGE, `${file}: no current-context, and no context was given`);
  const ctx = named(doc.contexts, ctxName, 'context', file);
  const clusterName = str(ctx.cluster) ?? '';
  const cluster = named(doc.clusters, clusterName, 'cluster', file);
  const user = str(ctx.user) === undefined ? {} : named(doc.users, String(ctx.user), 'user', file);
  const server = str(cluster.server);
  if (server === undefined || !/^https:\/\//.test(server))
    throw new AmbitError(
      ErrorCode.CONFIG_INVALID,
      `${file}: clusters[${clusterName}].server must be an https:// URL (got ${String(cluster.server)})`,
    );
  const path = (p: string | undefined): string | undefined =>
    p === undefined ? undefined : isAbsolute(p) ? p : join(dirname(file), p);
  const b64 = (v: unknown): Buffer | undefined =>
    str(v) === undefined ? undefined : Buffer.from(String(v), 'base64');
  const caFile = path(str(cluster['certificate-authority']));
  const caData = b64(cluster['certificate-authority-data']);
  const token = str(user.token);
  const tokenFile = path(str(user.tokenFile));
  const certData = b64(user['client-certificate-data']) ?? fileData(path(str(user['client-certificate'])));
  const keyData = b64(user['client-key-data']) ?? fileData(path(str(user['client-key'])));
  const namespace = str(ctx.namespace);
  return {
    server: server.replace(/\/+$/, ''),
    origin: `kubeconfig ${file} (context ${ctxName})`,
    ...(caFile === undefined ? {} : { caFile }),
    ...(caData === undefined ? {} : { caData }),
    ...(token === undefined ? {} : { token }),
    ...(tokenFile === undefined ? {} : { tokenFile }),
    ...(certData === undefined ? {} : { certData }),
    ...(keyData === undefined ? {} : { keyData }),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    ...(namespace === undefined ? {} : { namespace }),
  };
}

function fileData(p: string | undefined): Buffer | undefined {
  return p === undefined ? undefined : readFileSync(p);
}

/** The API server as a pod sees it: KUBERNETES_SERVICE_HOST/PORT and the mounted token and CA. */
export function inClusterTarget(
  env: { readonly host?: string; readonly port?: string },
  dir = IN_CLUSTER_DIR,
): KubeTarget {
  if (env.host === undefined || env.host === '')
    throw new AmbitError(
      ErrorCode.USAGE,
      'not running in a cluster (KUBERNETES_SERVICE_HOST is not set): give --kubeconfig <file>',
    );
  const host = env.host.includes(':') ? `[${env.host}]` : env.host;
  return {
    server: `https://${host}:${env.port ?? '443'}`,
    origin: `in-cluster config (${dir})`,
    caFile: join(dir, 'ca.crt'),
    tokenFile: join(dir, 'token'),
    insecureSkipTlsVerify: false,
  };
}

/** The target a daemon's settings name: its kubeconfig when given, else the in-cluster API. */
export function kubeTarget(s: {
  readonly kubeconfig?: string;
  readonly inCluster: { readonly host?: string; readonly port?: string };
}): KubeTarget {
  return s.kubeconfig === undefined ? inClusterTarget(s.inCluster) : loadKubeconfig(s.kubeconfig);
}
