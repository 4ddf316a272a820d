import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Service, ServiceAccount } from 'kubernetes-models/v1';
import ts from 'typescript';
import { describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import type { Gateway } from '../../src/gateway-api/types.js';
import {
  type KubeObject,
  type RenderableGateway,
  renderWaypoint,
  type WaypointRenderOptions,
  waypointReplicas,
} from '../../src/gateway-api/waypoint-render.js';

const GOLDEN = resolve(import.meta.dirname, '../fixtures/waypoint-render');
const ROOT = resolve(import.meta.dirname, '../..');

const OPTIONS: WaypointRenderOptions = {
  image: 'ghcr.io/ambit-mesh/ambit:0.1.0',
  trustDomain: 'cluster.local',
  controlPlane: 'ambit-control-plane.ambit-system.svc:15012',
  version: '0.1.0',
};

/** A waypoint Gateway as the parser makes it: shop/waypoint with the mesh listener. */
function waypoint(over: Partial<RenderableGateway> = {}): RenderableGateway {
  return {
    namespace: 'shop',
    name: 'waypoint',
    labels: {},
    gatewayClassName: 'ambit-waypoint',
    listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE', allowedRoutes: { from: 'Same' } }],
    addresses: [],
    ...over,
  };
}

const toYaml = (objects: readonly KubeObject[]): string =>
  objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');

/**
 * Compares with test/fixtures/waypoint-render/<name>.yaml. UPDATE_GOLDEN=1 writes the file instead;
 * without it a missing file fails, so a new case cannot pass by writing its own expectation.
 */
function expectGolden(name: string, text: string): void {
  const file = resolve(GOLDEN, `${name}.yaml`);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(file, text);
    return;
  }
  if (!existsSync(file))
    throw new Error(`${file} is missing: run with UPDATE_GOLDEN=1 to write it, then review it`);
  expect(text).toBe(readFileSync(file, 'utf8'));
}

const GOLDEN_CASES: [string, RenderableGateway][] = [
  ['default', waypoint()],
  [
    'waypoint-for-workload',
    waypoint({
      name: 'pods',
      labels: { 'ambit.dev/waypoint-for': 'workload' },
      uid: 'c0ffee00-0000-4000-8000-000000000001',
    }),
  ],
  [
    'with-address',
    waypoint({
      addresses: [
        { type: 'IPAddress', value: '10.96.0.50' },
        { type: 'IPAddress', value: 'fd00:10:96::50' },
      ],
    }),
  ],
  ['replicas', waypoint({ annotations: { 'ambit.dev/replicas': '3' } })],
];

describe('renderWaypoint: golden files', () => {
  test.each(GOLDEN_CASES)('%s', (name, gw) => {
    const { objects, problems } = renderWaypoint(gw, OPTIONS);
    expect(problems).toEqual([]);
    expect(objects.map((o) => o.kind)).toEqual(['ServiceAccount', 'Deployment', 'Service']);
    expectGolden(name, toYaml(objects));
  });
});

/** The rendered objects of every golden case, for the schema checks. */
const ALL = GOLDEN_CASES.flatMap(([name, gw]) =>
  renderWaypoint(gw, OPTIONS).objects.map((o) => [`${name} ${o.kind}`, o] as const),
);

describe('renderWaypoint: every object is valid against the Kubernetes OpenAPI schemas', () => {
  const MODELS = { ServiceAccount, Deployment, Service } as const;

  test.each(ALL)('%s: types, required fields and enums (kubernetes-models validate())', (_, o) => {
    const Model = MODELS[o.kind as keyof typeof MODELS];
    expect(Model, `no model for ${o.kind}`).toBeDefined();
    expect(() => new Model(o as never).validate()).not.toThrow();
  });

  test('validate() catches a mistyped field (the check is not vacuous)', () => {
    const [, d] = ALL.find(([, o]) => o.kind === 'Deployment')!;
    const bad = structuredClone(d) as unknown as { spec: { replicas: unknown } };
    bad.spec.replicas = '1';
    expect(() => new Deployment(bad as never).validate()).toThrow(/replicas/);
  });

  // validate() lets unknown fields through (the schemas allow additional properties), so field names
  // are checked by type-checking each object, as an object literal, against the models' interfaces:
  // an excess property anywhere in it is an error.
  const TYPES: Record<string, { module: string; type: string }> = {
    ServiceAccount: { module: 'kubernetes-models/v1/ServiceAccount', type: 'IServiceAccount' },
    Deployment: { module: 'kubernetes-models/apps/v1/Deployment', type: 'IDeployment' },
    Service: { module: 'kubernetes-models/v1/Service', type: 'IService' },
  };

  /** The type errors of `const o: I<Kind> = <object>` for each object, one string per error. */
  function fieldErrors(objects: readonly KubeObject[]): string[] {
    const file = resolve(ROOT, 'test/unit/__waypoint-render-fields.ts');
    const source = [
      ...Object.values(TYPES).map((t) => `import type { ${t.type} } from '${t.module}';`),
      ...objects.map((o, i) => `export const o${i}: ${TYPES[o.kind]!.type} = ${JSON.stringify(o, null, 2)};`),
    ].join('\n');
    const options: ts.CompilerOptions = {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: [],
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
    };
    const host = ts.createCompilerHost(options);
    const read = host.getSourceFile.bind(host);
    host.getSourceFile = (name, lang, ...rest) =>
      resolve(name) === file ? ts.createSourceFile(name, source, lang) : read(name, lang, ...rest);
    const exists = host.fileExists.bind(host);
    host.fileExists = (name) => resolve(name) === file || exists(name);
    const program = ts.createProgram([file], options, host);
    return [...program.getSyntacticDiagnostics(), ...program.getSemanticDiagnostics()].map((d) => {
      const where = d.file?.getLineAndCharacterOfPosition(d.start ?? 0);
      return `${where === undefined ? '' : `line ${where.line + 1}: `}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
  }

  test('no field is misspelled or mistyped (checked against kubernetes-models types)', () => {
    const objects = ALL.map(([, o]) => o);
    expect(fieldErrors(objects)).toEqual([]);
    // The same check flags a misspelled field deep in the pod template.
    const [, d] = ALL.find(([, o]) => o.kind === 'Deployment')!;
    const typo = structuredClone(d) as unknown as {
      spec: { template: { spec: { containers: Record<string, unknown>[] } } };
    };
    typo.spec.template.spec.containers[0]!.imagePullPolicyy = 'Always';
    expect(fieldErrors([typo as unknown as KubeObject]).join('\n')).toMatch(/imagePullPolicyy/);
  }, 60_000);
});

describe('renderWaypoint: what istiod renders for a waypoint, in Ambit names', () => {
  const [sa, deploy, svc] = renderWaypoint(waypoint(), OPTIONS).objects as [
    KubeObject,
    // biome-ignore lint/suspicious/noExplicitAny: reading into the rendered JSON
    any,
    // biome-ignore lint/suspicious/noExplicitAny: reading into the rendered JSON
    any,
  ];

  test('all three are named after the Gateway, in its namespace, with the gateway-name label', () => {
    for (const o of [sa, deploy, svc]) {
      expect(o.metadata).toMatchObject({ name: 'waypoint', namespace: 'shop' });
      expect(o.metadata.labels).toMatchObject({
        'gateway.networking.k8s.io/gateway-name': 'waypoint',
        'app.kubernetes.io/managed-by': 'ambit',
        'app.kubernetes.io/name': 'waypoint',
        'ambit.dev/version': '0.1.0',
      });
    }
  });

  test('the pods run as the ServiceAccount (the identity spiffe://<td>/ns/shop/sa/waypoint) and are never captured', () => {
    const pod = deploy.spec.template;
    expect(pod.spec.serviceAccountName).toBe(sa.metadata.name);
    expect(pod.metadata.labels['ambit.dev/dataplane-mode']).toBe('none');
    expect(deploy.spec.selector.matchLabels).toEqual({
      'gateway.networking.k8s.io/gateway-name': 'waypoint',
    });
    expect(svc.spec.selector).toEqual(deploy.spec.selector.matchLabels);
    for (const [k, v] of Object.entries(deploy.spec.selector.matchLabels))
      expect(pod.metadata.labels[k]).toBe(v);
  });

  test('the Service carries HBONE (appProtocol hbone, as istiod writes it) and the status port', () => {
    expect(svc.spec.ports).toEqual([
      { name: 'mesh', port: 15008, targetPort: 15008, protocol: 'TCP', appProtocol: 'hbone' },
      { name: 'status-port', port: 15021, targetPort: 15021, protocol: 'TCP', appProtocol: 'tcp' },
    ]);
    expect(svc.spec.clusterIP).toBeUndefined();
  });

  test('the token and the CA bundle the env points at are mounted', () => {
    const pod = deploy.spec.template.spec;
    const c = pod.containers[0];
    const env = Object.fromEntries(
      c.env
        .filter((e: { value?: string }) => e.value !== undefined)
        .map((e: { name: string; value: string }) => [e.name, e.value]),
    );
    const mounted = (path: string) =>
      c.volumeMounts.find((m: { mountPath: string }) => path.startsWith(`${m.mountPath}/`));
    expect(mounted(env.AMBIT_TOKEN_FILE)).toMatchObject({ name: 'ambit-token', readOnly: true });
    expect(mounted(env.AMBIT_CA_BUNDLE)).toMatchObject({ name: 'ambit-ca-root-cert', readOnly: true });
    expect(env).toMatchObject({ AMBIT_GATEWAY_NAME: 'waypoint', AMBIT_TRUST_DOMAIN: 'cluster.local' });
    const names = pod.volumes.map((v: { name: string }) => v.name);
    for (const m of c.volumeMounts) expect(names).toContain(m.name);
  });

  test('the ports a probe and Prometheus use are the declared ones', () => {
    const c = deploy.spec.template.spec.containers[0];
    const ports = Object.fromEntries(
      c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]),
    );
    expect(ports).toEqual({ hbone: 15008, metrics: 15020, 'status-port': 15021 });
    expect(c.readinessProbe.httpGet.port).toBe(ports['status-port']);
    expect(Number(deploy.spec.template.metadata.annotations['prometheus.io/port'])).toBe(ports.metrics);
  });

  test('a Gateway UID makes the Gateway the owner of all three', () => {
    const uid = 'c0ffee00-0000-4000-8000-000000000001';
    for (const o of renderWaypoint(waypoint({ uid }), OPTIONS).objects)
      expect(o.metadata.ownerReferences).toEqual([
        {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'Gateway',
          name: 'waypoint',
          uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
  });
});

describe('renderWaypoint: problems are returned, never thrown', () => {
  test.each([
    ['3', 3, undefined],
    ['100', 100, undefined],
    ['0', 1, /is not a whole number from 1 to 100; 1 replica is used/],
    ['101', 1, /"101" is not a whole number/],
    ['abc', 1, /"abc"/],
    [' 2', 1, /" 2"/],
    ['1.5', 1, /"1.5"/],
    ['-1', 1, /"-1"/],
  ])('ambit.dev/replicas=%j -> %i replicas', (value, replicas, problem) => {
    const r = waypointReplicas({ 'ambit.dev/replicas': value });
    expect(r.replicas).toBe(replicas);
    if (problem === undefined) expect(r.problem).toBeUndefined();
    else expect(r.problem).toMatch(problem);
    const rendered = renderWaypoint(waypoint({ annotations: { 'ambit.dev/replicas': value } }), OPTIONS);
    expect((rendered.objects[1] as unknown as { spec: { replicas: number } }).spec.replicas).toBe(replicas);
    expect(rendered.problems).toHaveLength(problem === undefined ? 0 : 1);
  });

  const HBONE = { name: 'mesh', port: 15008, protocol: 'HBONE', allowedRoutes: { from: 'Same' as const } };
  test.each<[string, Partial<RenderableGateway>, WaypointRenderOptions, number, RegExp]>([
    [
      'an unknown waypoint-for label',
      { labels: { 'ambit.dev/waypoint-for': 'pods' } },
      OPTIONS,
      3,
      /waypoint-for=pods/,
    ],
    [
      'a version that is no label value',
      {},
      { ...OPTIONS, version: '0.1.0+git.abc' },
      3,
      /version label is left out/,
    ],
    [
      'a second IPv4 address',
      {
        addresses: [
          { type: 'IPAddress', value: '10.96.0.50' },
          { type: 'IPAddress', value: '10.96.0.51' },
        ],
      },
      OPTIONS,
      3,
      /spec\.addresses\[1\]: 10\.96\.0\.51 is ignored/,
    ],
    [
      'an address of type Hostname',
      { addresses: [{ type: 'Hostname', value: 'wp.example' }] },
      OPTIONS,
      0,
      /spec\.addresses\[0\]: type Hostname: a waypoint takes only addresses of type IPAddress/,
    ],
    [
      'a name that cannot name a Service',
      { name: '1wp' },
      OPTIONS,
      0,
      /"1wp" cannot name the waypoint's Service/,
    ],
    [
      'no HBONE listener on 15008',
      { listeners: [{ ...HBONE, port: 15009 }] },
      OPTIONS,
      0,
      /needs a listener \{name: mesh, port: 15008, protocol: HBONE\}; listener mesh: port 15009/,
    ],
    [
      'another class',
      { gatewayClassName: 'istio-waypoint' },
      OPTIONS,
      0,
      /of class istio-waypoint, not ambit-waypoint/,
    ],
  ])('%s', (_, over, options, count, problem) => {
    const r = renderWaypoint(waypoint(over), options);
    expect(r.objects).toHaveLength(count);
    expect(r.problems.join('\n')).toMatch(problem);
  });

  test('an extra listener does not stop the waypoint (its status reports it)', () => {
    const r = renderWaypoint(
      waypoint({ listeners: [HBONE, { ...HBONE, name: 'http', port: 80, protocol: 'HTTP' }] }),
      OPTIONS,
    );
    expect(r.objects).toHaveLength(3);
    expect(r.problems).toEqual([]);
  });
});

describe('renderWaypoint: deterministic output', () => {
  test('the same Gateway renders to the same bytes, whatever order its fields and labels came in', () => {
    const a: Gateway = waypoint({ labels: { b: '2', 'ambit.dev/waypoint-for': 'all', a: '1' } });
    const b: Gateway = {
      addresses: [],
      listeners: a.listeners,
      gatewayClassName: a.gatewayClassName,
      labels: { a: '1', 'ambit.dev/waypoint-for': 'all', b: '2' },
      name: a.name,
      namespace: a.namespace,
    };
    expect(toYaml(renderWaypoint(b, OPTIONS).objects)).toBe(toYaml(renderWaypoint(a, OPTIONS).objects));
    expect(JSON.stringify(renderWaypoint(a, OPTIONS))).toBe(JSON.stringify(renderWaypoint(a, OPTIONS)));
  });
});
