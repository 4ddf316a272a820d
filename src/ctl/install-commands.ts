import { parseArgs } from 'node:util';
import { AmbitError, ErrorCode } from '../errors.js';
import { WAYPOINT_CLASS } from '../gateway-api/types.js';
import { CA_ROOT_CONFIGMAP, CA_ROOT_MANAGED_BY, MANAGED_BY_LABEL } from '../gateway-api/waypoint-render.js';
import { objectsJson, objectsYaml } from '../install/output.js';
import { NODE, NODE_CLEANUP, renderInstall } from '../install/render.js';
import { CA_ROOT_DELETE_ARGS, uninstallObjects, uninstallYaml } from '../install/uninstall-plan.js';
import { type InstallValues, parseValues, VALUE_KEYS } from '../install/values.js';
import { AMBIENT, DATAPLANE_MODE } from '../mesh/labels.js';
import { type KubectlRunner, mustRun, spawnKubectl } from './kubectl.js';
import type { CliSettings } from './settings.js';

/** The Gateway API release Ambit is built and tested against (Gateway, HTTPRoute and GRPCRoute v1). */
export const GATEWAY_API_VERSION = 'v1.2.1';
/** The upstream standard-channel manifest of that release, applied as it is published (never vendored). */
export const GATEWAY_API_CRDS_URL = `https://github.com/kubernetes-sigs/gateway-api/releases/download/${GATEWAY_API_VERSION}/standard-install.yaml`;

const APPLY = ['apply', '--server-side', '--field-manager=ambit', '-f', '-'];

export const INSTALL_USAGE = `Usage: ambit install [--dry-run] [-o yaml|json] [--set key=value]... [--namespace ambit-system]
                     [--kubeconfig file] [--context name]
       ambit install gateway-api-crds [--dry-run]

Installs Ambit in the cluster kubectl points at: the namespace, the CRDs of Ambit's policies, the RBAC,
the control plane (Deployment, Service, PodDisruptionBudget), the node DaemonSet (node agent and node
proxy) and the GatewayClass ${WAYPOINT_CLASS}, piped to \`kubectl ${APPLY.join(' ')}\`.
The Gateway API CRDs are a separate step (\`ambit install gateway-api-crds\` applies the upstream
${GATEWAY_API_VERSION} standard-install.yaml); install refuses to start without them.

  --dry-run           print the objects instead of applying them (-o yaml: documents; -o json: a v1 List)
  --set key=value     override a value (repeatable); keys: ${VALUE_KEYS.join(', ')}
  --namespace ns      Ambit's namespace (same as --set namespace=ns)`;

export const UNINSTALL_USAGE = `Usage: ambit uninstall [-o yaml] [--force] [--namespace ambit-system] [--set key=value]...
                       [--kubeconfig file] [--context name]

Removes every object \`ambit install\` made, and cleans every node. Refused while a namespace is enrolled
(${DATAPLANE_MODE}=${AMBIENT}) or a waypoint (a Gateway of class ${WAYPOINT_CLASS}) exists, unless --force.
Steps: delete the node DaemonSet; run the node cleanup DaemonSet (${NODE_CLEANUP}: the node agent's
--uninstall removes its pins, links, nftables tables, CNI conflist entry and plugin binary) and wait until
every node reports done; delete it; delete the rest, in reverse install order; then the ConfigMaps the
control plane published in every namespace (label ${MANAGED_BY_LABEL}=${CA_ROOT_MANAGED_BY}). Stopping the node agent
(SIGTERM) never uninstalls: it leaves the redirection in place for the next agent.

  -o yaml             print every object uninstall would delete or apply (the node cleanup DaemonSet), in
                      order, and, as a comment, the kubectl call that deletes the CA root ConfigMaps by
                      label; do nothing
  --force             go on although namespaces are enrolled or waypoints exist (their pods lose the mesh)
  --namespace, --set  the values install was run with (the objects' namespace, the node image)`;

export const NAMESPACE_USAGE = `Usage: ambit namespace enroll|unenroll <namespace> [--kubeconfig file] [--context name]

  enroll     label the namespace ${DATAPLANE_MODE}=${AMBIENT}: its pods join the mesh
  unenroll   remove the label: its pods leave the mesh`;

const CLUSTER_OPTIONS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
} as const;

function values(namespace: string | undefined, sets: readonly string[] | undefined): InstallValues {
  return parseValues([...(sets ?? []), ...(namespace === undefined ? [] : [`namespace=${namespace}`])]);
}

type Runner = (s: CliSettings, target: { kubeconfig?: string; context?: string }) => KubectlRunner;
const realKubectl: Runner = (s, t) => spawnKubectl(s.kubectl, t);

const out = (text: string): boolean => process.stdout.write(text);
const step = (text: string): boolean => process.stderr.write(`${text}\n`);

function target(v: { kubeconfig?: string | undefined; context?: string | undefined }): {
  kubeconfig?: string;
  context?: string;
} {
  return {
    ...(v.kubeconfig === undefined ? {} : { kubeconfig: v.kubeconfig }),
    ...(v.context === undefined ? {} : { context: v.context }),
  };
}

export async function installCommand(
  argv: readonly string[],
  s: CliSettings,
  kubectl: Runner = realKubectl,
): Promise<number> {
  const { values: f, positionals } = parseArgs({
    args: [...argv],
    options: {
      'dry-run': { type: 'boolean', default: false },
      output: { type: 'string', short: 'o' },
      set: { type: 'string', multiple: true },
      namespace: { type: 'string', short: 'n' },
      ...CLUSTER_OPTIONS,
    },
    allowPositionals: true,
    strict: true,
  });
  const [what, ...extra] = positionals;
  if (extra.length > 0 || (what !== undefined && what !== 'gateway-api-crds'))
    throw new AmbitError(
      ErrorCode.USAGE,
      `unexpected argument ${JSON.stringify(positionals.join(' '))}\n\n${INSTALL_USAGE}`,
    );
  const format = f.output ?? 'yaml';
  if (format !== 'yaml' && format !== 'json')
    throw new AmbitError(ErrorCode.USAGE, `-o ${format}: use yaml or json`);
  if (what === 'gateway-api-crds') {
    const args = ['apply', '--server-side', '--field-manager=ambit', '-f', GATEWAY_API_CRDS_URL];
    if (f['dry-run']) {
      out(`kubectl ${args.join(' ')}\n`);
      return 0;
    }
    step(`Gateway API ${GATEWAY_API_VERSION} CRDs (standard channel): kubectl ${args.join(' ')}`);
    await mustRun(kubectl(s, target(f)), args);
    return 0;
  }
  const v = values(f.namespace, f.set);
  const objects = renderInstall(v);
  if (f['dry-run']) {
    out(format === 'json' ? objectsJson(objects) : objectsYaml(objects));
    return 0;
  }
  const k = kubectl(s, target(f));
  const crd = await k.run(['get', 'crd', 'gateways.gateway.networking.k8s.io', '-o', 'name'], {
    capture: true,
  });
  if (crd.code !== 0)
    throw new AmbitError(
      ErrorCode.PRECONDITION,
      `the Gateway API CRDs are not in the cluster (the GatewayClass ${WAYPOINT_CLASS} needs them): run \`ambit install gateway-api-crds\` first`,
    );
  step(`applying ${objects.length} objects to namespace ${v.namespace} (kubectl ${APPLY.join(' ')})`);
  await mustRun(k, APPLY, { stdin: objectsYaml(objects) });
  step(`waiting for the control plane and the node DaemonSet to be ready`);
  await mustRun(k, [
    'rollout',
    'status',
    '-n',
    v.namespace,
    'deployment/ambit-control-plane',
    '--timeout=5m',
  ]);
  await mustRun(k, ['rollout', 'status', '-n', v.namespace, `daemonset/${NODE}`, '--timeout=10m']);
  step(`Ambit is installed; enroll a namespace with \`ambit namespace enroll <ns>\``);
  return 0;
}

interface Named {
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
  readonly spec?: { readonly gatewayClassName?: string };
}

/**
 * Why uninstall must not go on: the enrolled namespaces and the waypoints, each named. Pure: from
 * `kubectl get ns -l ... -o json` and `kubectl get gateways -A -o json`.
 */
export function uninstallBlockers(namespaces: readonly Named[], gateways: readonly Named[]): string[] {
  const enrolled = namespaces.map((n) => n.metadata?.name ?? '?').sort();
  const waypoints = gateways
    .filter((g) => g.spec?.gatewayClassName === WAYPOINT_CLASS)
    .map((g) => `${g.metadata?.namespace ?? '?'}/${g.metadata?.name ?? '?'}`)
    .sort();
  return [
    ...(enrolled.length === 0
      ? []
      : [
          `namespaces still enrolled (${DATAPLANE_MODE}=${AMBIENT}): ${enrolled.join(', ')} (ambit namespace unenroll <ns>)`,
        ]),
    ...(waypoints.length === 0
      ? []
      : [`waypoints still exist: ${waypoints.join(', ')} (ambit waypoint delete <name> -n <ns>)`]),
  ];
}

function items(text: string, what: string): Named[] {
  try {
    const list = JSON.parse(text) as { items?: Named[] };
    return list.items ?? [];
  } catch {
    throw new AmbitError(ErrorCode.COMMAND_FAILED, `kubectl get ${what}: the answer is not JSON`);
  }
}

export async function uninstallCommand(
  argv: readonly string[],
  s: CliSettings,
  kubectl: Runner = realKubectl,
): Promise<number> {
  const { values: f, positionals } = parseArgs({
    args: [...argv],
    options: {
      output: { type: 'string', short: 'o' },
      force: { type: 'boolean', default: false },
      set: { type: 'string', multiple: true },
      namespace: { type: 'string', short: 'n' },
      ...CLUSTER_OPTIONS,
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0)
    throw new AmbitError(ErrorCode.USAGE, `unexpected argument ${positionals[0]}\n\n${UNINSTALL_USAGE}`);
  if (f.output !== undefined && f.output !== 'yaml')
    throw new AmbitError(ErrorCode.USAGE, `-o ${f.output}: uninstall prints yaml only (-o yaml)`);
  const v = values(f.namespace, f.set);
  if (f.output === 'yaml') {
    out(uninstallYaml(v));
    return 0;
  }
  const plan = uninstallObjects(v);
  // The node DaemonSet is deleted first, on its own; the rest after the node cleanup.
  const objects = plan.rest;
  const k = kubectl(s, target(f));
  const ns = await mustRun(k, ['get', 'namespaces', '-l', `${DATAPLANE_MODE}=${AMBIENT}`, '-o', 'json'], {
    capture: true,
  });
  // Without the Gateway API CRDs there is no Gateway, so no waypoint.
  const gw = await k.run(['get', 'gateways.gateway.networking.k8s.io', '-A', '-o', 'json'], {
    capture: true,
  });
  const blockers = uninstallBlockers(
    items(ns, 'namespaces'),
    gw.code === 0 ? items(gw.stdout, 'gateways') : [],
  );
  if (blockers.length > 0 && !f.force)
    throw new AmbitError(
      ErrorCode.PRECONDITION,
      `uninstall refused: ${blockers.join('; ')}; or --force (their pods lose the mesh)`,
    );
  for (const b of blockers) step(`warning: ${b}; going on (--force)`);
  step(
    `1/5 deleting the node DaemonSet ${v.namespace}/${NODE} (its agents stop; redirection stays until the cleanup)`,
  );
  await mustRun(k, [
    'delete',
    '--ignore-not-found',
    '--wait=true',
    '-n',
    v.namespace,
    `daemonset/${plan.node.metadata.name}`,
  ]);
  step(`2/5 node cleanup: ${NODE_CLEANUP} runs the node agent's --uninstall on every node`);
  const cleanup = objectsYaml([plan.cleanup]);
  await mustRun(k, APPLY, { stdin: cleanup });
  await mustRun(k, ['rollout', 'status', '-n', v.namespace, `daemonset/${NODE_CLEANUP}`, '--timeout=10m']);
  step(`3/5 every node is clean; deleting ${NODE_CLEANUP}`);
  await mustRun(k, ['delete', '--ignore-not-found', '--wait=true', '-f', '-'], { stdin: cleanup });
  step(
    `4/5 deleting ${objects.length} objects (the CRDs take every AuthorizationPolicy and PeerAuthentication with them)`,
  );
  await mustRun(k, ['delete', '--ignore-not-found', '--wait=true', '-f', '-'], {
    stdin: objectsYaml(objects),
  });
  // The control plane is gone now, so nothing publishes them again.
  step(`5/5 deleting the control plane's ${CA_ROOT_CONFIGMAP} ConfigMaps in every namespace`);
  await mustRun(k, CA_ROOT_DELETE_ARGS);
  step('Ambit is uninstalled');
  return 0;
}

export async function namespaceCommand(
  argv: readonly string[],
  s: CliSettings,
  kubectl: Runner = realKubectl,
): Promise<number> {
  const { values: f, positionals } = parseArgs({
    args: [...argv],
    options: { ...CLUSTER_OPTIONS },
    allowPositionals: true,
    strict: true,
  });
  const [action, ns, ...extra] = positionals;
  if (ns === undefined || extra.length > 0 || (action !== 'enroll' && action !== 'unenroll'))
    throw new AmbitError(ErrorCode.USAGE, NAMESPACE_USAGE);
  const label = action === 'enroll' ? `${DATAPLANE_MODE}=${AMBIENT}` : `${DATAPLANE_MODE}-`;
  await mustRun(kubectl(s, target(f)), ['label', 'namespace', ns, label, '--overwrite']);
  return 0;
}
