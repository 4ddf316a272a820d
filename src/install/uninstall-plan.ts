import {
  CA_ROOT_CONFIGMAP,
  CA_ROOT_MANAGED_BY,
  type KubeObject,
  MANAGED_BY_LABEL,
} from '../gateway-api/waypoint-render.js';
import { objectsYaml } from './output.js';
import { NODE, NODE_CLEANUP, renderInstall, renderNodeCleanup } from './render.js';
import type { InstallValues } from './values.js';

/*
 * What `ambit uninstall` touches, in its order, for the command (src/ctl/install-commands.ts) and for
 * `ambit uninstall -o yaml`: the node DaemonSet first (its agents stop, redirection stays), the node
 * cleanup DaemonSet (applied, waited for, deleted), the rest of the install in reverse order (the
 * namespace last), then, by label in every namespace, the CA root ConfigMaps the control plane
 * published (objects install never made). Pure.
 */

/** The label of the ConfigMaps the control plane publishes (ambit-ca-root-cert, one per namespace). */
export const CA_ROOT_SELECTOR = `${MANAGED_BY_LABEL}=${CA_ROOT_MANAGED_BY}`;

/** The kubectl arguments of the last step: the CA root ConfigMaps, by label, in every namespace. */
export const CA_ROOT_DELETE_ARGS: readonly string[] = [
  'delete',
  'configmap',
  '--all-namespaces',
  '-l',
  CA_ROOT_SELECTOR,
  '--ignore-not-found',
  '--wait=true',
];

export interface UninstallObjects {
  /** The node DaemonSet, deleted first. */
  readonly node: KubeObject;
  /** The node cleanup DaemonSet, applied once the node DaemonSet is gone, then deleted. */
  readonly cleanup: KubeObject;
  /** Everything else install made, in reverse install order (the namespace last). */
  readonly rest: readonly KubeObject[];
}

export function uninstallObjects(v: InstallValues): UninstallObjects {
  const installed = renderInstall(v).reverse();
  const isNode = (o: KubeObject): boolean => o.kind === 'DaemonSet' && o.metadata.name === NODE;
  const node = installed.find(isNode);
  if (node === undefined) throw new Error('the install renders no node DaemonSet');
  return { node, cleanup: renderNodeCleanup(v), rest: installed.filter((o) => !isNode(o)) };
}

/**
 * `ambit uninstall -o yaml`: every object uninstall deletes or applies, each once, in the order it
 * first touches them, as YAML documents (so `kubectl delete -f -` of it deletes them too); the
 * ConfigMaps it deletes by label are not objects it knows by name, so the last document is a comment
 * with the exact kubectl call.
 */
export function uninstallYaml(v: InstallValues): string {
  const o = uninstallObjects(v);
  return (
    `# ambit uninstall (namespace ${v.namespace}): every object it deletes, in order. ${NODE_CLEANUP}\n` +
    `# is applied once ${NODE} is gone, runs the node cleanup on every node, and is deleted again.\n` +
    objectsYaml([o.node, o.cleanup, ...o.rest]) +
    `---\n# Then the ${CA_ROOT_CONFIGMAP} ConfigMaps the control plane published, in every namespace, by label:\n` +
    `# kubectl ${CA_ROOT_DELETE_ARGS.join(' ')}\n`
  );
}
