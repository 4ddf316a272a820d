import { stringify } from 'yaml';
import type { KubeObject } from '../gateway-api/waypoint-render.js';

/**
 * Objects as YAML documents separated by `---`, for `kubectl apply -f -`; the same bytes every time.
 * A value shared by two fields is written out twice (no YAML anchors, which readers of a manifest trip on).
 */
export function objectsYaml(objects: readonly KubeObject[]): string {
  return objects.map((o) => `---\n${stringify(o, { lineWidth: 0, aliasDuplicateObjects: false })}`).join('');
}

/** Objects as one `v1` List, as `kubectl get -o json` prints several. */
export function objectsJson(objects: readonly KubeObject[]): string {
  return `${JSON.stringify({ apiVersion: 'v1', kind: 'List', metadata: {}, items: objects }, null, 2)}\n`;
}
