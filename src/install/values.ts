import { LOG_LEVELS, type LogLevel } from '../config/log-level.js';
import { absolutePath, dns1123Label, dns1123Subdomain } from '../config/validators.js';
import { AmbitError, ErrorCode } from '../errors.js';
import { AMBIT_IMAGE, AMBIT_VERSION } from '../version.js';

/** What `ambit install` renders from: the defaults, with `--set key=value` on top. Frozen once parsed. */
export interface InstallValues {
  /** Where Ambit's own objects live. */
  readonly namespace: string;
  readonly images: { readonly node: string; readonly controlPlane: string; readonly waypoint: string };
  readonly imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  readonly controlPlane: { readonly replicas: number };
  readonly trustDomain: string;
  readonly logLevel: LogLevel;
  /**
   * The host's cgroup v2 mount, mounted into the node agent at the same path. The kubelet's pod root
   * below it is not a value: the agent discovers it from its own pod, for every driver and nesting.
   */
  readonly cgroupRoot: string;
  /** The host's CNI folders (the node agent installs its plugin and edits the conflist there). */
  readonly cni: { readonly binDir: string; readonly confDir: string };
}

const REGISTRY = 'ghcr.io/ambit-mesh';

export const DEFAULT_VALUES: InstallValues = {
  namespace: 'ambit-system',
  images: {
    node: `${REGISTRY}/ambit-node:${AMBIT_VERSION}`,
    controlPlane: `${REGISTRY}/ambit-control-plane:${AMBIT_VERSION}`,
    // The waypoint image is the one the control plane renders waypoints with by default.
    waypoint: AMBIT_IMAGE,
  },
  imagePullPolicy: 'IfNotPresent',
  controlPlane: { replicas: 1 },
  trustDomain: 'cluster.local',
  logLevel: 'info',
  cgroupRoot: '/sys/fs/cgroup',
  cni: { binDir: '/opt/cni/bin', confDir: '/etc/cni/net.d' },
};

/** A value's check: undefined when good, else why not (`is not an absolute path`). */
type Check = (v: string) => string | undefined;

const image: Check = (v) => (v === '' ? 'is empty' : /\s/.test(v) ? 'contains whitespace' : undefined);
const oneOf =
  (values: readonly string[]): Check =>
  (v) =>
    values.includes(v) ? undefined : `is not one of ${values.join(', ')}`;
const replicas: Check = (v) => {
  if (!/^[0-9]+$/.test(v)) return 'is not a whole number';
  // Each replica loads or generates the CA root in its own folder: two would sign with different
  // roots until the CA is shared through the API.
  if (Number(v) !== 1) return 'must be 1: each control-plane replica would generate its own CA root';
  return undefined;
};

/** Every key `--set` takes, its check, and where it goes. */
const KEYS: Readonly<Record<string, { readonly check: Check; readonly number?: true }>> = {
  namespace: { check: dns1123Label },
  'images.node': { check: image },
  'images.controlPlane': { check: image },
  'images.waypoint': { check: image },
  imagePullPolicy: { check: oneOf(['Always', 'IfNotPresent', 'Never']) },
  'controlPlane.replicas': { check: replicas, number: true },
  trustDomain: { check: dns1123Subdomain },
  logLevel: { check: oneOf(LOG_LEVELS) },
  cgroupRoot: { check: absolutePath },
  'cni.binDir': { check: absolutePath },
  'cni.confDir': { check: absolutePath },
};

/** The keys `--set` takes, for help texts. */
export const VALUE_KEYS: readonly string[] = Object.keys(KEYS);

type Tree = { [k: string]: string | number | Tree };

/**
 * The values from `--set key=value` assignments over the defaults, Helm's way (dotted keys). Every
 * problem is collected and reported once, each naming the key and why: an unknown key, a missing `=`,
 * a bad value.
 */
export function parseValues(sets: readonly string[], base: InstallValues = DEFAULT_VALUES): InstallValues {
  const tree = structuredClone(base) as unknown as Tree;
  const errors: string[] = [];
  for (const set of sets) {
    const eq = set.indexOf('=');
    if (eq <= 0) {
      errors.push(`--set ${set}: use key=value`);
      continue;
    }
    const key = set.slice(0, eq);
    const value = set.slice(eq + 1);
    const spec = KEYS[key];
    if (spec === undefined) {
      errors.push(`--set ${set}: unknown key ${key} (keys: ${VALUE_KEYS.join(', ')})`);
      continue;
    }
    const bad = spec.check(value);
    if (bad !== undefined) {
      errors.push(`--set ${set}: ${key} ${JSON.stringify(value)} ${bad}`);
      continue;
    }
    const path = key.split('.');
    let node: Tree = tree;
    for (const p of path.slice(0, -1)) node = node[p] as Tree;
    node[path[path.length - 1] ?? key] = spec.number === true ? Number(value) : value;
  }
  if (errors.length > 0) throw new AmbitError(ErrorCode.USAGE, errors.join('\n'));
  return deepFreeze(tree) as unknown as InstallValues;
}

function deepFreeze<T extends object>(o: T): T {
  for (const v of Object.values(o)) if (typeof v === 'object' && v !== null) deepFreeze(v);
  return Object.freeze(o);
}
