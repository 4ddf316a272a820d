import type { Container } from '../manifests/model.js';
import type { ServiceState } from './state.js';

export interface PodFacts {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly node: string;
  readonly serviceAccount: string;
  readonly ip4: string;
  readonly hostIp: string;
}

const FIELD_VALUES: Readonly<Record<string, (p: PodFacts) => string>> = {
  'metadata.name': (p) => p.name,
  'metadata.namespace': (p) => p.namespace,
  'metadata.uid': (p) => p.uid,
  'spec.nodeName': (p) => p.node,
  'spec.serviceAccountName': (p) => p.serviceAccount,
  'status.podIP': (p) => p.ip4,
  'status.hostIP': (p) => p.hostIp,
};

/** Kubernetes `$(VAR)` expansion: known variables are replaced, `$$(` escapes, unknown references stay. */
export function expandVars(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => {
    if (m === '$$') return '$';
    return name !== undefined && vars[name] !== undefined ? vars[name] : m;
  });
}

/** Docker-link style variables for the Services of the pod's namespace (`BACKEND_SERVICE_HOST`, ...). */
export function serviceLinkEnv(namespace: string, services: readonly ServiceState[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const svc of services) {
    if (svc.namespace !== namespace || svc.vips.length === 0 || svc.ports.length === 0) continue;
    const prefix = svc.name.toUpperCase().replace(/-/g, '_');
    env[`${prefix}_SERVICE_HOST`] = svc.vips[0]!;
    env[`${prefix}_SERVICE_PORT`] = String(svc.ports[0]!.port);
    for (const p of svc.ports) {
      if (p.name !== undefined)
        env[`${prefix}_SERVICE_PORT_${p.name.toUpperCase().replace(/-/g, '_')}`] = String(p.port);
    }
  }
  return env;
}

/**
 * The environment and argv of a container process: host PATH, pod identity, service links, then the
 * container's own variables in order (each may refer to earlier ones with `$(NAME)`), then command
 * and args expanded the same way.
 */
export function containerProcess(
  c: Container,
  pod: PodFacts,
  services: readonly ServiceState[],
  hostPath: string,
): { env: Record<string, string>; argv: string[] } {
  const env: Record<string, string> = {
    PATH: hostPath,
    HOME: '/root',
    HOSTNAME: pod.name,
    ...serviceLinkEnv(pod.namespace, services),
  };
  for (const v of c.env) {
    if (v.fieldRef !== undefined) env[v.name] = FIELD_VALUES[v.fieldRef]?.(pod) ?? '';
    else env[v.name] = expandVars(v.value ?? '', env);
  }
  const argv = [...c.command, ...c.args].map((a) => expandVars(a, env));
  return { env, argv };
}
