/**
 * The one catalog of Ambit error codes. Callers branch on `code`, never on message text.
 * Every code here is documented in docs/errors.md (test/unit/errors.test.ts keeps the two in step).
 */
export const ErrorCode = {
  /** A manifest file could not be read, or is not valid YAML. */
  CONFIG_READ: 'AMBIT_ERR_CONFIG_READ',
  /** A Kubernetes object failed validation; the message names file:line and field path. */
  CONFIG_INVALID: 'AMBIT_ERR_CONFIG_INVALID',
  /** Command-line flags or environment variables are wrong. */
  USAGE: 'AMBIT_ERR_USAGE',
  /** The machine lacks something Ambit needs (root, kernel feature, tool). */
  PRECONDITION: 'AMBIT_ERR_PRECONDITION',
  /** An external command (ip, nft, ...) failed. */
  COMMAND_FAILED: 'AMBIT_ERR_COMMAND_FAILED',
  /** Local mode state is missing, stale or already present. */
  LOCAL_STATE: 'AMBIT_ERR_LOCAL_STATE',
  /** A named pod, node or object does not exist. */
  NOT_FOUND: 'AMBIT_ERR_NOT_FOUND',
  /** An address pool is exhausted. */
  IPAM_EXHAUSTED: 'AMBIT_ERR_IPAM_EXHAUSTED',
  /** A libbpf call or BPF object operation failed. */
  BPF: 'AMBIT_ERR_BPF',
  /** The node proxy found no route for a connection. */
  NO_ROUTE: 'AMBIT_ERR_NO_ROUTE',
  /** Connecting to an upstream failed. */
  UPSTREAM_CONNECT: 'AMBIT_ERR_UPSTREAM_CONNECT',
  /** A certificate, key, CSR or trust bundle is invalid. */
  CERTIFICATE: 'AMBIT_ERR_CERTIFICATE',
  /** A peer presented the wrong identity, or none. */
  IDENTITY: 'AMBIT_ERR_IDENTITY',
  /** The CA refused to sign. */
  CA_DENIED: 'AMBIT_ERR_CA_DENIED',
  /** HBONE protocol failure (bad CONNECT, bad authority, tunnel error). */
  HBONE: 'AMBIT_ERR_HBONE',
  /** Talking to the control plane failed. */
  CONTROL_PLANE: 'AMBIT_ERR_CONTROL_PLANE',
  /** A connection was denied by authorization policy. */
  POLICY_DENIED: 'AMBIT_ERR_POLICY_DENIED',
  /** The Kubernetes API server refused a request or could not be reached. */
  KUBE_API: 'AMBIT_ERR_KUBE_API',
  /** A node's CNI network config (conflist) cannot be read or edited. */
  CNI_CONFIG: 'AMBIT_ERR_CNI_CONFIG',
  /** A CNI plugin call (ADD, DEL) failed; the pod's sandbox is not made. */
  CNI_PLUGIN: 'AMBIT_ERR_CNI_PLUGIN',
  /** A timeout expired. */
  TIMEOUT: 'AMBIT_ERR_TIMEOUT',
  /** Something that must not happen; a bug in Ambit. */
  INTERNAL: 'AMBIT_ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base error for everything Ambit raises on purpose. */
export class AmbitError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AmbitError';
    this.code = code;
  }
}

/** True when `err` is an AmbitError with the given code. */
export function hasCode(err: unknown, code: ErrorCode): err is AmbitError {
  return err instanceof AmbitError && err.code === code;
}

/** The message of any thrown value, including its cause chain, for logs and CLI output. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 5; depth++) {
    if (cur instanceof Error) {
      parts.push(cur.message);
      cur = cur.cause;
    } else {
      // A cause that is not an Error (a library's plain detail object) adds nothing readable.
      if (typeof cur !== 'object') parts.push(String(cur));
      break;
    }
  }
  return parts.join(': ');
}
