import { decodeTrafficPolicy, encodeTrafficPolicy } from '../../src/api/config-traffic-policy.js';
import { services } from '../../src/api/grpc.js';
import { formatIssue } from '../../src/config/issue.js';
import { parseManifestTexts } from '../../src/manifests/load-manifests.js';
import type { AppliedTrafficPolicy, BackendTrafficPolicy } from '../../src/traffic-policy/types.js';

/** What the BackendTrafficPolicy tests share: a policy loaded from YAML, and a policy sent over the wire. */

/** The targetRefs line of a policy on Service web. */
export const TARGET_WEB = 'targetRefs: [{group: "", kind: Service, name: web}]';

const OPTS = { requireCommand: true, nodeNames: ['node-1'] } as const;
const SHOP = 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n';

/**
 * Loads a BackendTrafficPolicy `p` in namespace shop as the manifest loader does: `spec` (YAML, its
 * lines indented under `spec:`) starts at line 7 of p.yaml. The parsed policy, if it was kept, and every
 * error as `file:line path: reason`.
 */
export function loadTrafficPolicy(spec: string): {
  value: BackendTrafficPolicy | undefined;
  errors: string[];
} {
  const text = `apiVersion: traffic.ambit.dev/v1alpha1\nkind: BackendTrafficPolicy\nmetadata:\n  name: p\n  namespace: shop\nspec:\n${spec
    .trim()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')}\n`;
  const { manifests, issues } = parseManifestTexts(
    [
      { file: 'ns.yaml', text: SHOP },
      { file: 'p.yaml', text },
    ],
    OPTS,
  );
  const kept = manifests.kept.filter((k) => k.kind === 'BackendTrafficPolicy');
  return {
    value: (kept[0] as { parsed?: { value: BackendTrafficPolicy } } | undefined)?.parsed?.value,
    errors: issues.filter((i) => i.severity === 'error').map(formatIssue),
  };
}

/**
 * `applied` as a waypoint receives it: on Service shop/web in a StreamConfig update, serialized and
 * deserialized by the config service's protobuf codec, then decoded.
 */
export function overTheWire(applied: AppliedTrafficPolicy): AppliedTrafficPolicy {
  const method = services().config.service.StreamConfig!;
  const u = {
    version: '1',
    full: true,
    services: [
      {
        namespace: 'shop',
        name: 'web',
        hostname: 'web.shop.svc.cluster.local',
        vips: [],
        ports: [],
        labels: {},
        endpoints: [],
        waypoint: null,
        traffic_policy: encodeTrafficPolicy(applied),
      },
    ],
  };
  const back = method.responseDeserialize(method.responseSerialize(u)) as {
    services: { traffic_policy: ReturnType<typeof encodeTrafficPolicy> }[];
  };
  return decodeTrafficPolicy(back.services[0]!.traffic_policy);
}
