import { describe, expect, test } from 'vitest';
import { ResourceDiffer } from '../../src/cluster/diff.js';
import { parseKubeObject } from '../../src/cluster/kube-objects.js';
import type { ClusterConfigObject, ClusterResource } from '../../src/cluster/resources.js';
import { type ApiInputs, apiObjects } from '../../src/local/api-objects.js';
import type { NodeLayout } from '../../src/local/layout.js';
import type { PodState, ServiceState } from '../../src/local/state.js';
import { parseManifestTexts } from '../../src/manifests/load-manifests.js';

const node: NodeLayout = {
  name: 'node-0',
  index: 0,
  netns: 'ambit.node.0',
  ip4: '172.30.0.2',
  ip6: 'fd00:30::2',
  podCidr4: '10.244.0.0/24',
  podCidr6: 'fd00:10:244::/64',
  gateway4: '10.244.0.1',
  gateway6: 'fd00:10:244::1',
  proxy4: '10.244.0.254',
  proxy6: 'fd00:10:244::fe',
  podsCgroup: 'nodes/node-0/pods',
  systemCgroup: 'nodes/node-0/system',
};

function pod(name: string, over: Partial<PodState> = {}): PodState {
  return {
    namespace: 'shop',
    name,
    uid: `uid-${name}`,
    node: 'node-0',
    netns: `ambit.pod.shop.${name}`,
    ip4: '10.244.0.2',
    ip6: 'fd00:10:244::2',
    cgroup: `nodes/node-0/pods/shop_${name}`,
    serviceAccount: 'web-sa',
    labels: { app: 'web' },
    annotations: { note: 'x' },
    phase: 'Running',
    ready: true,
    containers: [{ name: 'c', state: 'running', ready: true, restarts: 0 }],
    ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
    createdAt: '2024-01-01T00:00:00Z',
    ...over,
  };
}

const web: ServiceState = {
  namespace: 'shop',
  name: 'web',
  labels: { team: 'a' },
  annotations: {},
  vips: ['10.96.0.10', 'fd00:10:96::a'],
  ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
  selector: { app: 'web' },
  endpoints: [
    {
      pod: 'web-a',
      node: 'node-0',
      ip4: '10.244.0.2',
      ip6: 'fd00:10:244::2',
      ready: true,
      ports: { http: 8080 },
    },
    {
      pod: 'gone',
      node: 'node-0',
      ip4: '10.244.0.7',
      ip6: 'fd00:10:244::7',
      ready: false,
      ports: { http: 8080 },
    },
  ],
};

/** An HTTPRoute as the manifests loader keeps it. */
const route = parseManifestTexts(
  [
    { file: 'ns.yaml', text: 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n' },
    {
      file: 'r.yaml',
      text: `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r
  namespace: shop
spec:
  parentRefs: [{ group: "", kind: Service, name: web, port: 80 }]
  rules: [{ backendRefs: [{ name: web, port: 80 }] }]
`,
    },
  ],
  { requireCommand: true, nodeNames: ['node-0'] },
).manifests.kept;

const base: ApiInputs = {
  namespaces: [{ name: 'shop', labels: { 'ambit.dev/dataplane-mode': 'ambient' } }],
  nodes: [node],
  pods: [pod('web-a'), pod('other', { namespace: 'dev', uid: 'uid-dev-other', ip4: '10.244.0.3' })],
  services: [web],
  config: route,
};

/** The local API's objects as the mesh's daemons read them. */
function read(inputs: ApiInputs): ClusterResource[] {
  return apiObjects(inputs).flatMap((o) => {
    const r = parseKubeObject(o);
    // Served for kubectl, not read by the mesh.
    if ('ignored' in r && o.kind === 'Deployment') return [];
    if (!('resource' in r)) throw new Error(`not read: ${JSON.stringify(r)}`);
    return [r.resource];
  });
}

describe('the local cluster API, read back as the daemons read it', () => {
  const resources = read(base);
  const of = <K extends ClusterResource['kind']>(kind: K) =>
    resources.filter((r): r is Extract<ClusterResource, { kind: K }> => r.kind === kind);

  test('pods carry both addresses and the facts the mesh needs, and no local-mode facts (no cgroup)', () => {
    expect(of('Pod')[0]).toEqual({
      kind: 'Pod',
      uid: 'uid-web-a',
      namespace: 'shop',
      name: 'web-a',
      node: 'node-0',
      ips: ['10.244.0.2', 'fd00:10:244::2'],
      serviceAccount: 'web-sa',
      labels: { app: 'web' },
      annotations: { note: 'x' },
      phase: 'Running',
      ready: true,
      hostNetwork: false,
      qosClass: 'BestEffort',
      terminating: false,
    });
    expect(of('Pod').map((p) => `${p.namespace}/${p.name}`)).toEqual(['shop/web-a', 'dev/other']);
  });

  test('a Service carries its VIPs and ports; its endpoints are EndpointSlices, one per address family', () => {
    expect(of('Service')).toEqual([
      {
        kind: 'Service',
        namespace: 'shop',
        name: 'web',
        labels: { team: 'a' },
        annotations: {},
        vips: ['10.96.0.10', 'fd00:10:96::a'],
        ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
      },
    ]);
    const slices = of('EndpointSlice');
    expect(slices.map((s) => s.service)).toEqual(['web', 'web']);
    expect(slices.map((s) => s.ports)).toEqual([
      [{ name: 'http', port: 8080, protocol: 'TCP' }],
      [{ name: 'http', port: 8080, protocol: 'TCP' }],
    ]);
    expect(slices[0]?.endpoints).toEqual([
      { addresses: ['10.244.0.2'], ready: true, podUid: 'uid-web-a', pod: 'web-a', node: 'node-0' },
      { addresses: ['10.244.0.7'], ready: false, pod: 'gone', node: 'node-0' },
    ]);
    expect(slices[1]?.endpoints.map((e) => e.addresses)).toEqual([['fd00:10:244::2'], ['fd00:10:244::7']]);
  });

  test('an endpoint does not take the uid of a same-named pod in another namespace', () => {
    const rs = read({ ...base, services: [{ ...web, endpoints: [{ ...web.endpoints[0]!, pod: 'other' }] }] });
    const slice = rs.find((r) => r.kind === 'EndpointSlice');
    expect(slice?.kind === 'EndpointSlice' && slice.endpoints[0]).not.toHaveProperty('podUid');
  });

  test('nodes, namespaces, and config objects parsed with where they came from', () => {
    expect(of('Node')).toEqual([{ kind: 'Node', name: 'node-0', addresses: ['172.30.0.2', 'fd00:30::2'] }]);
    expect(of('Namespace')).toEqual([
      {
        kind: 'Namespace',
        name: 'shop',
        labels: { 'kubernetes.io/metadata.name': 'shop', 'ambit.dev/dataplane-mode': 'ambient' },
      },
    ]);
    const [r] = resources.filter((x): x is ClusterConfigObject => x.kind === 'HTTPRoute');
    expect(r?.source).toEqual({ file: 'r.yaml', line: 1 });
    expect(r?.issues).toEqual([]);
    expect(r?.parsed?.kind === 'HTTPRoute' && r.parsed.value.parentRefs).toEqual([
      { group: '', kind: 'Service', name: 'web', port: 80 },
    ]);
  });

  test.each<{ what: string; inputs: ApiInputs; changed: string[] }>([
    {
      what: 'a pod label',
      inputs: { ...base, pods: [pod('web-a', { labels: { app: 'api' } }), base.pods[1]!] },
      changed: ['updated Pod/shop/web-a'],
    },
    {
      what: 'a pod turns not ready',
      inputs: { ...base, pods: [pod('web-a', { ready: false }), base.pods[1]!] },
      changed: ['updated Pod/shop/web-a'],
    },
    {
      what: 'a pod starts terminating',
      inputs: { ...base, pods: [pod('web-a', { phase: 'Terminating' }), base.pods[1]!] },
      changed: ['updated Pod/shop/web-a'],
    },
    {
      what: 'a pod recreated under its name',
      inputs: { ...base, pods: [pod('web-a', { uid: 'uid-new' }), base.pods[1]!] },
      // Its slices now name the new uid.
      changed: [
        'deleted Pod/shop/web-a',
        'added Pod/shop/web-a',
        'updated EndpointSlice/shop/*',
        'updated EndpointSlice/shop/*',
      ],
    },
    {
      what: 'a pod goes away (and the ServiceAccount only it named, which local mode made for it)',
      inputs: { ...base, pods: [pod('web-a')] },
      changed: ['deleted Pod/dev/other', 'deleted ServiceAccount/dev/web-sa'],
    },
    {
      what: 'a namespace label',
      inputs: { ...base, namespaces: [{ name: 'shop', labels: {} }] },
      changed: ['updated Namespace/shop'],
    },
    {
      what: 'a Service VIP',
      inputs: { ...base, services: [{ ...web, vips: ['10.96.0.11'] }] },
      changed: ['updated Service/shop/web'],
    },
    {
      what: 'an endpoint turns ready',
      inputs: {
        ...base,
        services: [{ ...web, endpoints: [web.endpoints[0]!, { ...web.endpoints[1]!, ready: true }] }],
      },
      changed: ['updated EndpointSlice/shop/*', 'updated EndpointSlice/shop/*'],
    },
    {
      what: 'a node address',
      inputs: { ...base, nodes: [{ ...node, ip4: '172.30.0.9' }] },
      changed: ['updated Node/node-0'],
    },
    {
      what: 'a container restart, the Service selector or the node gateway (nothing the mesh reads)',
      inputs: {
        ...base,
        pods: [
          pod('web-a', { containers: [{ name: 'c', state: 'running', ready: true, restarts: 3 }] }),
          base.pods[1]!,
        ],
        nodes: [{ ...node, gateway4: '10.244.0.254' }],
      },
      changed: [],
    },
  ])('a change is an event for what it touches: $what', ({ inputs, changed }) => {
    const differ = new ResourceDiffer();
    differ.diff(read(base));
    const events = differ.diff(read(inputs)).map((e) => {
      const r = e.resource;
      const key =
        r.kind === 'EndpointSlice'
          ? `EndpointSlice/${r.namespace}/*`
          : 'namespace' in r
            ? `${r.kind}/${r.namespace}/${r.name}`
            : `${r.kind}/${r.name}`;
      return `${e.type} ${key}`;
    });
    expect(events.sort()).toEqual([...changed].sort());
  });
});
