import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseControlPlaneConfig } from '../../src/control-plane/config.js';
import { installCommand, uninstallCommand } from '../../src/ctl/install-commands.js';
import { readSettings } from '../../src/ctl/settings.js';
import { ErrorCode } from '../../src/errors.js';
import type { KubeObject } from '../../src/gateway-api/waypoint-render.js';
import { renderInstall, renderNodeCleanup } from '../../src/install/render.js';
import { DEFAULT_VALUES, parseValues } from '../../src/install/values.js';
import { inClusterTarget } from '../../src/kube/kubeconfig.js';
import { DATAPLANE_MODE, isAmbient } from '../../src/mesh/labels.js';
import { parseAgentConfig } from '../../src/node-agent/config.js';
import { resolveNodeCgroups, subdirectories } from '../../src/node-agent/node-cgroups.js';
import { parseNodeProxyConfig } from '../../src/node-proxy/config.js';
import { unknownFields } from './strict-schema.js';

/*
 * `ambit install --dry-run`: golden files (UPDATE_GOLDEN=1 rewrites them; any other difference
 * fails), every object valid for the official schemas (kubernetes-models, @kubernetes-models/gateway-api)
 * and free of unknown fields (a strict walk), CRD schemas structural, and the daemons' flags exactly
 * what their config parsers read.
 */

const GOLDEN_DIR = join(import.meta.dirname, '..', 'fixtures', 'install');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

const FLAG_SETS: readonly (readonly [string, readonly string[]])[] = [
  ['default', []],
  [
    'custom-namespace',
    ['--namespace', 'mesh', '--set', 'logLevel=debug', '--set', 'trustDomain=example.org'],
  ],
  [
    'custom-node',
    [
      '--set',
      'images.node=registry.example/ambit-node:dev',
      '--set',
      'images.controlPlane=registry.example/ambit-control-plane:dev',
      '--set',
      'images.waypoint=registry.example/ambit-waypoint:dev',
      '--set',
      'imagePullPolicy=Always',
      '--set',
      'cni.binDir=/home/kubernetes/bin',
      '--set',
      'cni.confDir=/etc/cni/conf.d',
    ],
  ],
];

afterEach(() => {
  vi.restoreAllMocks();
});

/** Runs the CLI command and returns what it printed. */
async function stdoutOf(run: () => Promise<number>): Promise<string> {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  });
  const code = await run();
  vi.restoreAllMocks();
  expect(code).toBe(0);
  return out;
}

const settings = readSettings({});
const docs = (yaml: string): KubeObject[] => parseAllDocuments(yaml).map((d) => d.toJS() as KubeObject);
const show = (o: KubeObject): string => `${o.kind}/${o.metadata.name}`;

describe('ambit install --dry-run -o yaml: golden files', () => {
  test.each(FLAG_SETS)('%s', async (name, flags) => {
    const yaml = await stdoutOf(() => installCommand(['--dry-run', '-o', 'yaml', ...flags], settings));
    const file = join(GOLDEN_DIR, `${name}.yaml`);
    if (UPDATE) {
      mkdirSync(GOLDEN_DIR, { recursive: true });
      writeFileSync(file, yaml);
    }
    expect(existsSync(file), `${file} is missing: UPDATE_GOLDEN=1 vitest run ... writes it`).toBe(true);
    expect(yaml, `${file} differs: review, then UPDATE_GOLDEN=1 to accept`).toBe(readFileSync(file, 'utf8'));
  });

  test('the same values render the same bytes, and -o json is a v1 List of the same objects', async () => {
    const a = await stdoutOf(() => installCommand(['--dry-run'], settings));
    const b = await stdoutOf(() => installCommand(['--dry-run', '-o', 'yaml'], settings));
    expect(a).toBe(b);
    const list = JSON.parse(await stdoutOf(() => installCommand(['--dry-run', '-o', 'json'], settings)));
    expect(list).toMatchObject({ apiVersion: 'v1', kind: 'List' });
    expect(list.items).toEqual(docs(a));
  });
});

async function validateWithModels(o: KubeObject): Promise<void> {
  const pkg = o.apiVersion.startsWith('gateway.networking.k8s.io/')
    ? '@kubernetes-models/gateway-api'
    : 'kubernetes-models';
  const mod = (await import(`${pkg}/${o.apiVersion}/${o.kind}`)) as Record<
    string,
    new (
      d: unknown,
    ) => { validate(): void }
  >;
  const Model = mod[o.kind];
  if (Model === undefined) throw new Error(`no model for ${o.apiVersion} ${o.kind}`);
  new Model(o).validate();
}

describe.each(FLAG_SETS)('every object of %s', (_name, flags) => {
  const sets: string[] = [];
  for (let i = 0; i < flags.length; i += 2)
    sets.push(flags[i] === '--namespace' ? `namespace=${flags[i + 1]}` : (flags[i + 1] ?? ''));
  const objects = [...renderInstall(parseValues(sets)), renderNodeCleanup(parseValues(sets))];

  test.each(objects.map((o) => [show(o), o] as const))(
    '%s validates with kubernetes-models',
    async (_s, o) => {
      await expect(validateWithModels(o)).resolves.toBeUndefined();
    },
  );

  test('no object has a field its schema does not know', () => {
    expect(objects.flatMap(unknownFields)).toEqual([]);
  });
});

describe('the strict walk', () => {
  const ds = renderInstall(DEFAULT_VALUES).find((o) => o.kind === 'DaemonSet') as KubeObject;

  test('catches a typo that kubernetes-models accepts', async () => {
    const typo = structuredClone(ds) as unknown as {
      spec: { template: { spec: { containers: Record<string, unknown>[] } } };
    };
    const c = typo.spec.template.spec.containers[0] ?? {};
    c.imagePullPolcy = c.imagePullPolicy;
    delete c.imagePullPolicy;
    await expect(validateWithModels(typo as unknown as KubeObject)).resolves.toBeUndefined();
    expect(unknownFields(typo as unknown as KubeObject)).toEqual([
      'DaemonSet/ambit-node: spec.template.spec.containers[0].imagePullPolcy: unknown field',
    ]);
  });

  test.each([
    [
      'a map value',
      {
        metadata: { name: 'x', labels: { a: 'b' } },
        spec: { selector: { matchLabels: { a: 'b' }, matchLabel: {} } },
      },
      'spec.selector.matchLabel',
    ],
    [
      'a field of an array item',
      { metadata: { name: 'x' }, spec: { template: { spec: { volumes: [{ name: 'v', hostpath: {} }] } } } },
      'spec.template.spec.volumes[0].hostpath',
    ],
    ['a top-level field', { metadata: { name: 'x' }, specs: {} }, 'specs'],
  ])('catches %s', (_what, body, path) => {
    expect(unknownFields({ apiVersion: 'apps/v1', kind: 'DaemonSet', ...body })).toEqual([
      `DaemonSet/x: ${path}: unknown field`,
    ]);
  });
});

/** Keywords a structural schema may use (apiextensions' JSONSchemaProps, without $ref and friends). */
const STRUCTURAL_KEYWORDS = new Set([
  'type',
  'description',
  'properties',
  'items',
  'additionalProperties',
  'required',
  'enum',
  'format',
  'pattern',
  'minimum',
  'maximum',
  'minItems',
  'maxItems',
  'minLength',
  'maxLength',
  'nullable',
  'default',
  'x-kubernetes-int-or-string',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-list-type',
  'x-kubernetes-map-type',
]);

/** Why a schema is not structural (apiextensions' rules: a type everywhere, known keywords only). */
function structuralProblems(s: Record<string, unknown>, path: string): string[] {
  const problems: string[] = [];
  for (const k of Object.keys(s)) if (!STRUCTURAL_KEYWORDS.has(k)) problems.push(`${path}: keyword ${k}`);
  const intOrString = s['x-kubernetes-int-or-string'] === true;
  if (s.type === undefined && !intOrString && s['x-kubernetes-preserve-unknown-fields'] !== true)
    problems.push(`${path}: no type`);
  if (s.type === 'array' && s.items === undefined) problems.push(`${path}: an array without items`);
  if (s.type === 'object' && s.properties === undefined && s.additionalProperties === undefined)
    if (path !== 'openAPIV3Schema.properties.metadata')
      problems.push(`${path}: an object without properties`);
  if (s.properties !== undefined && s.additionalProperties !== undefined)
    problems.push(`${path}: both properties and additionalProperties`);
  for (const [k, v] of Object.entries((s.properties as Record<string, Record<string, unknown>>) ?? {}))
    problems.push(...structuralProblems(v, `${path}.properties.${k}`));
  if (typeof s.items === 'object' && s.items !== null)
    problems.push(...structuralProblems(s.items as Record<string, unknown>, `${path}.items`));
  if (typeof s.additionalProperties === 'object' && s.additionalProperties !== null)
    problems.push(
      ...structuralProblems(
        s.additionalProperties as Record<string, unknown>,
        `${path}.additionalProperties`,
      ),
    );
  return problems;
}

describe("the CRDs of Ambit's kinds", () => {
  const crds = renderInstall(DEFAULT_VALUES).filter((o) => o.kind === 'CustomResourceDefinition');

  test('are the policy kinds the control plane reads', () => {
    expect(crds.map((c) => c.metadata.name)).toEqual([
      'authorizationpolicies.security.ambit.dev',
      'peerauthentications.security.ambit.dev',
      'requestauthentications.security.ambit.dev',
      'backendtrafficpolicies.traffic.ambit.dev',
    ]);
  });

  test.each(crds.map((c) => [c.metadata.name, c] as const))('%s has a structural schema', (_n, crd) => {
    const v = (crd.spec as { versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[] })
      .versions[0];
    expect(structuralProblems(v?.schema.openAPIV3Schema ?? {}, 'openAPIV3Schema')).toEqual([]);
  });

  /** What an API server would prune from `v` under schema `s`: the paths the schema does not hold. */
  function pruned(s: Record<string, unknown>, v: unknown, path: string): string[] {
    // metadata is the API server's own (ObjectMeta), whatever the CRD says.
    if (s['x-kubernetes-preserve-unknown-fields'] === true || path === '.metadata') return [];
    if (Array.isArray(v))
      return v.flatMap((x, i) => pruned((s.items as Record<string, unknown>) ?? {}, x, `${path}[${i}]`));
    if (typeof v !== 'object' || v === null) return [];
    const props = s.properties as Record<string, Record<string, unknown>> | undefined;
    const extra = s.additionalProperties as Record<string, unknown> | undefined;
    return Object.entries(v).flatMap(([k, x]) => {
      const sub = props?.[k] ?? extra;
      return sub === undefined ? [`${path}.${k}`] : pruned(sub, x, `${path}.${k}`);
    });
  }
  const schemaOf = (kind: string): Record<string, unknown> => {
    const crd = crds.find((c) => (c.spec as { names: { kind: string } }).names.kind === kind);
    const spec = crd?.spec as { versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[] };
    return spec.versions[0]!.schema.openAPIV3Schema;
  };

  // Every field Ambit's parser reads, once: a field missing from the schema would be pruned by the
  // API server, and the policy would silently lose it.
  test('a BackendTrafficPolicy with every field Ambit reads loses nothing to pruning', () => {
    const btp = {
      apiVersion: 'traffic.ambit.dev/v1alpha1',
      kind: 'BackendTrafficPolicy',
      metadata: { name: 'p', namespace: 'shop' },
      spec: {
        targetRefs: [{ group: '', kind: 'Service', name: 'web' }],
        circuitBreaker: {
          maxConnections: 1,
          maxPendingRequests: 1,
          maxParallelRequests: 1,
          maxParallelRetries: 1,
        },
        faultInjection: {
          delay: { fixedDelay: '1s', percentage: 10 },
          abort: { httpStatus: 503, percentage: 5 },
          headers: [{ type: 'Exact', name: 'x-fault', value: 'on' }],
        },
        retryConstraint: {
          budget: { percent: 20, interval: '10s' },
          minRetryRate: { count: 10, interval: '1s' },
        },
      },
    };
    expect(pruned(schemaOf('BackendTrafficPolicy'), btp, '')).toEqual([]);
    expect(pruned(schemaOf('BackendTrafficPolicy'), { spec: { retryConstraints: {} } }, '')).toEqual([
      '.spec.retryConstraints',
    ]);
  });

  test.each([
    [{ type: 'object', properties: { a: { description: 'x' } } }, ['s.properties.a: no type']],
    [{ type: 'array' }, ['s: an array without items']],
    [{ type: 'string', oneOf: [] }, ['s: keyword oneOf']],
  ])('the structural check refuses %j', (schema, problems) => {
    expect(structuralProblems(schema, 's')).toEqual(problems);
  });
});

const AGENT_UID = '7c0e4f52-3a9b-4d1e-8f6a-2b5c9d0e1f3a';

/** `$(VAR)` expanded as the kubelet does, from the downward API values a node would give. */
function expand(args: readonly string[], env: Record<string, string>): string[] {
  return args.map((a) => a.replace(/\$\(([A-Z_]+)\)/g, (_m, n: string) => env[n] ?? `$(${n})`));
}

describe("the daemons' flags are exactly what their config parsers read", () => {
  const objects = renderInstall(DEFAULT_VALUES);
  const ds = objects.find((o) => o.kind === 'DaemonSet') as unknown as {
    spec: { template: { spec: { containers: { name: string; args: string[]; env: { name: string }[] }[] } } };
  };
  const downward = {
    NODE_NAME: 'node-a',
    HOST_IPS: '10.0.0.7',
    POD_UID: AGENT_UID,
    POD_NAME: 'p',
    POD_NAMESPACE: 'ambit-system',
  };
  const container = (name: string) => ds.spec.template.spec.containers.find((c) => c.name === name);

  test('node agent', () => {
    const c = container('node-agent');
    expect(c?.args[0]).toBe('node-agent');
    // The env as the kubelet gives it (POD_UID from the downward API), not only the args.
    const cfg = parseAgentConfig(expand(c?.args.slice(1) ?? [], downward), downward);
    expect(cfg).toMatchObject({
      node: 'node-a',
      cgroupRoot: '/sys/fs/cgroup',
      bpfDir: '/sys/fs/bpf/ambit',
      proxyIp4: '10.0.0.7',
      cniSocket: '/var/run/ambit/cni.sock',
      uninstall: false,
    });
    // No attach point is assumed: the agent discovers the kubelet's pod root from its own pod.
    expect(cfg.podsCgroup).toBeUndefined();
    // An IPv4-only node: no IPv6 redirect target (never an IPv4-mapped stand-in).
    expect(cfg.proxyIp6).toBeUndefined();
  });

  test("node agent and proxy on a dual-stack node: the node's IPv6 address is a redirect target, and listened on", () => {
    const dual = { ...downward, HOST_IPS: '10.0.0.7,fd00:10::7' };
    const agent = parseAgentConfig(expand(container('node-agent')?.args.slice(1) ?? [], dual), dual);
    expect([agent.proxyIp4, agent.proxyIp6]).toEqual(['10.0.0.7', 'fd00:10::7']);
    const proxy = parseNodeProxyConfig(expand(container('node-proxy')?.args.slice(1) ?? [], dual), {});
    expect(proxy.outboundIps).toEqual(['10.0.0.7', 'fd00:10::7']);
  });

  test('node proxy', () => {
    const c = container('node-proxy');
    expect(c?.args[0]).toBe('node-proxy');
    expect(parseNodeProxyConfig(expand(c?.args.slice(1) ?? [], downward), {})).toMatchObject({
      node: 'node-a',
      outboundIps: ['10.0.0.7'],
      bpfDir: '/sys/fs/bpf/ambit',
      controlPlane: 'ambit-control-plane.ambit-system.svc:15012',
      caBundle: '/var/run/secrets/ambit/root-cert.pem',
      tokenFile: '/var/run/secrets/tokens/ambit-token',
      readinessPort: 15021,
    });
  });

  test('control plane', () => {
    const dep = objects.find((o) => o.kind === 'Deployment') as unknown as {
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    };
    const args = dep.spec.template.spec.containers[0]?.args ?? [];
    expect(args[0]).toBe('control-plane');
    expect(parseControlPlaneConfig(args.slice(1), {})).toMatchObject({
      grpcPort: 15012,
      monitoringPort: 15014,
      nodeServiceAccount: { namespace: 'ambit-system', name: 'ambit-node' },
      waypoints: {
        image: DEFAULT_VALUES.images.waypoint,
        controlPlane: 'ambit-control-plane.ambit-system.svc:15012',
      },
    });
  });

  test("node cleanup runs the agent's --uninstall", () => {
    const cleanup = renderNodeCleanup(DEFAULT_VALUES) as unknown as {
      spec: { template: { spec: { initContainers: { args: string[] }[] } } };
    };
    const args = cleanup.spec.template.spec.initContainers[0]?.args ?? [];
    expect(args[0]).toBe('node-agent');
    expect(parseAgentConfig(args.slice(1), {})).toMatchObject({
      uninstall: true,
      bpfDir: '/sys/fs/bpf/ambit',
    });
  });
});

describe('the rendered node agent on a node: the env the kubelet gives it, its cgroup found as it runs', () => {
  const ds = renderInstall(DEFAULT_VALUES).find((o) => o.kind === 'DaemonSet') as unknown as {
    spec: {
      template: {
        spec: {
          containers: {
            name: string;
            args: string[];
            env: { name: string; valueFrom: { fieldRef: { fieldPath: string } } }[];
            securityContext: Record<string, unknown>;
          }[];
        };
      };
    };
  };
  const agent = ds.spec.template.spec.containers.find((c) => c.name === 'node-agent');
  // What the downward API fills in on a node, by field.
  const fields: Record<string, string> = {
    'spec.nodeName': 'node-a',
    'metadata.name': 'ambit-node-x7k2p',
    'metadata.namespace': 'ambit-system',
    'metadata.uid': AGENT_UID,
    'status.hostIPs': '10.0.0.7',
  };
  const env = Object.fromEntries(
    (agent?.env ?? []).map((e) => [e.name, fields[e.valueFrom.fieldRef.fieldPath] ?? '']),
  );
  const cfg = parseAgentConfig(expand(agent?.args.slice(1) ?? [], env), env);
  const U = AGENT_UID;
  const U_ = AGENT_UID.replaceAll('-', '_');
  const CID = 'e'.repeat(64);
  const host = mkdtempSync(join(tmpdir(), 'ambit-node-cgroup-'));
  afterAll(() => rmSync(host, { recursive: true, force: true }));
  const unified = [{ mountPoint: '/sys/fs/cgroup', fstype: 'cgroup2' }];

  test('the pod UID reaches the agent from the env, and the container is not privileged', () => {
    expect(cfg.podUid).toBe(AGENT_UID);
    // Not privileged: the runtime gives it a private cgroup namespace, /proc/self/cgroup reads "0::/".
    expect(agent?.securityContext.privileged).not.toBe(true);
  });

  test.each([
    {
      node: 'systemd driver, containerd (kubeadm, GKE, EKS)',
      pod: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${U_}.slice`,
      container: `cri-containerd-${CID}.scope`,
      root: 'kubepods.slice',
    },
    {
      node: 'cgroupfs driver, containerd',
      pod: `kubepods/burstable/pod${U}`,
      container: CID,
      root: 'kubepods',
    },
    {
      node: 'systemd driver, CRI-O',
      pod: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${U_}.slice`,
      container: `crio-${CID}.scope`,
      root: 'kubepods.slice',
    },
    {
      node: "kind (the kubelet's cgroupRoot /kubelet)",
      pod: `kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod${U_}.slice`,
      container: `cri-containerd-${CID}.scope`,
      root: 'kubelet.slice/kubelet-kubepods.slice',
    },
  ])('$node: from a private cgroup namespace and from the host one', ({ node, pod, container, root }) => {
    // The host's tree as the hostPath /sys/fs/cgroup shows it (a folder per node shape).
    const tree = join(host, node.replace(/[^a-z]+/gi, '-'));
    mkdirSync(join(tree, 'system.slice', 'kubelet.service'), { recursive: true });
    mkdirSync(join(tree, pod, container), { recursive: true });
    const subdirs = (dir: string): string[] => subdirectories(join(tree, relative('/sys/fs/cgroup', dir)));
    const expected = {
      cgroupRoot: '/sys/fs/cgroup',
      podsCgroup: `/sys/fs/cgroup/${root}`,
      layout: { podRoot: `/sys/fs/cgroup/${root}` },
    };
    expect(resolveNodeCgroups(cfg, { mounts: unified, procSelfCgroup: '0::/\n', subdirs })).toMatchObject({
      ...expected,
      ownCgroup: `/sys/fs/cgroup/${pod}`,
      discoveredFrom: 'own pod (search)',
    });
    const proc = `0::/${pod}/${container}\n`;
    expect(resolveNodeCgroups(cfg, { mounts: unified, procSelfCgroup: proc, subdirs })).toMatchObject({
      ...expected,
      ownCgroup: `/sys/fs/cgroup/${pod}/${container}`,
      discoveredFrom: 'own pod (/proc/self/cgroup)',
    });
  });

  test('a hybrid node is refused with the reason', () => {
    const hybrid = [
      { mountPoint: '/sys/fs/cgroup', fstype: 'tmpfs' },
      { mountPoint: '/sys/fs/cgroup/unified', fstype: 'cgroup2' },
      { mountPoint: '/sys/fs/cgroup/memory', fstype: 'cgroup' },
    ];
    expect(() =>
      resolveNodeCgroups(cfg, { mounts: hybrid, procSelfCgroup: '0::/\n', subdirs: () => [] }),
    ).toThrow(
      /cluster mode \(the node agent runs as a pod\) needs the unified cgroup v2 hierarchy.*a hybrid host/,
    );
  });
});

describe('the node DaemonSet', () => {
  const ds = renderInstall(DEFAULT_VALUES).find((o) => o.kind === 'DaemonSet') as unknown as {
    spec: {
      updateStrategy: unknown;
      template: {
        metadata: { labels: Record<string, string> };
        spec: Record<string, unknown> & {
          containers: {
            name: string;
            securityContext: { capabilities: { add: string[] } };
            readinessProbe?: unknown;
            env: { name: string; valueFrom?: unknown }[];
          }[];
          volumes: { name: string; hostPath?: { path: string }; projected?: unknown }[];
        };
      };
    };
  };
  const pod = ds.spec.template.spec;

  test('runs as the anchors run theirs: host network, node-critical, every taint tolerated, one node at a time', () => {
    expect(pod).toMatchObject({
      hostNetwork: true,
      dnsPolicy: 'ClusterFirstWithHostNet',
      priorityClassName: 'system-node-critical',
      tolerations: [{ operator: 'Exists' }],
    });
    expect(ds.spec.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
  });

  test('mounts the host folders it works on', () => {
    expect(pod.volumes.flatMap((v) => (v.hostPath === undefined ? [] : [v.hostPath.path]))).toEqual([
      '/sys/fs/bpf',
      '/sys/fs/cgroup',
      '/opt/cni/bin',
      '/etc/cni/net.d',
      '/var/run/ambit',
    ]);
  });

  test('the agent has BPF, NET_ADMIN, SYS_ADMIN and NET_RAW; the proxy is ready on 15021', () => {
    expect(pod.containers[0]?.securityContext.capabilities.add).toEqual([
      'BPF',
      'NET_ADMIN',
      'SYS_ADMIN',
      'NET_RAW',
    ]);
    expect(pod.containers[1]?.readinessProbe).toMatchObject({
      httpGet: { path: '/healthz/ready', port: 15021 },
    });
  });

  test('the downward API gives the pod its node, namespace and UID; the token is for the CA', () => {
    for (const c of pod.containers)
      expect(c.env.map((e) => e.name)).toEqual(
        expect.arrayContaining(['NODE_NAME', 'POD_NAMESPACE', 'POD_UID']),
      );
    expect(JSON.stringify(pod.volumes)).toContain('"audience":"ambit-ca"');
  });

  test('only the node agent holds a Kubernetes API token, where its in-cluster config reads it; the proxy holds the ambit-ca one only', () => {
    interface Source {
      serviceAccountToken?: { audience?: string; path: string };
      configMap?: { items?: { path: string }[] };
      downwardAPI?: { items: { path: string }[] };
    }
    type PodSpec = {
      automountServiceAccountToken?: boolean;
      initContainers?: { name: string; volumeMounts?: { name: string; mountPath: string }[] }[];
      containers: { name: string; volumeMounts?: { name: string; mountPath: string }[] }[];
      volumes: { name: string; projected?: { sources: Source[] } }[];
    };
    const podOf = (o: KubeObject) => (o.spec as unknown as { template: { spec: PodSpec } }).template.spec;
    /** Each container's mount of a token volume of the given audience (undefined: the API server's). */
    const holders = (p: PodSpec, audience: string | undefined): string[] => {
      const vols = p.volumes
        .filter((v) =>
          v.projected?.sources.some(
            (x) => x.serviceAccountToken !== undefined && x.serviceAccountToken.audience === audience,
          ),
        )
        .map((v) => v.name);
      return [...(p.initContainers ?? []), ...p.containers].flatMap((c) =>
        (c.volumeMounts ?? []).filter((m) => vols.includes(m.name)).map((m) => `${c.name} ${m.mountPath}`),
      );
    };
    const node = podOf(renderInstall(DEFAULT_VALUES).find((o) => o.kind === 'DaemonSet') as KubeObject);
    const cleanup = podOf(renderNodeCleanup(DEFAULT_VALUES));
    // No token of the kubelet's own (it would be mounted in every container).
    expect(node.automountServiceAccountToken).toBe(false);
    expect(cleanup.automountServiceAccountToken).toBe(false);
    const target = inClusterTarget({ host: '10.96.0.1' });
    expect(dirname(target.tokenFile ?? '')).toBe(dirname(target.caFile ?? ''));
    expect(holders(node, undefined)).toEqual([`node-agent ${dirname(target.tokenFile ?? '')}`]);
    expect(holders(node, 'ambit-ca')).toEqual(['node-proxy /var/run/secrets/tokens']);
    expect(holders(cleanup, undefined)).toEqual([]);
    // The volume has the token, the CA and the namespace under the names the in-cluster config reads.
    const api = node.volumes.find((v) =>
      v.projected?.sources.some(
        (x) => x.serviceAccountToken?.audience === undefined && x.serviceAccountToken !== undefined,
      ),
    );
    const files = (api?.projected?.sources ?? []).flatMap((x) => [
      ...(x.serviceAccountToken === undefined ? [] : [x.serviceAccountToken.path]),
      ...(x.configMap?.items ?? []).map((i) => i.path),
      ...(x.downwardAPI?.items ?? []).map((i) => i.path),
    ]);
    expect(files).toEqual(
      expect.arrayContaining([basename(target.tokenFile ?? ''), basename(target.caFile ?? ''), 'namespace']),
    );
  });

  test("every pod template of Ambit's is out of the mesh, even in an enrolled namespace", () => {
    const templates = [...renderInstall(DEFAULT_VALUES), renderNodeCleanup(DEFAULT_VALUES)].flatMap((o) => {
      const t = (o.spec as { template?: { metadata: { labels: Record<string, string> } } } | undefined)
        ?.template;
      return t === undefined ? [] : [[show(o), t.metadata.labels] as const];
    });
    expect(templates.map(([n]) => n)).toEqual([
      'Deployment/ambit-control-plane',
      'DaemonSet/ambit-node',
      'DaemonSet/ambit-node-cleanup',
    ]);
    for (const [, labels] of templates) {
      expect(labels[DATAPLANE_MODE]).toBe('none');
      expect(isAmbient({ [DATAPLANE_MODE]: 'ambient' }, labels)).toBe(false);
    }
  });
});

describe('values', () => {
  test.each([
    [['nope=1'], 'unknown key nope'],
    [['images.nodes=x'], 'unknown key images.nodes'],
    [['logLevel'], '--set logLevel: use key=value'],
    [['logLevel=loud'], 'logLevel "loud" is not one of fatal, error, warn, info, debug, trace'],
    [['controlPlane.replicas=two'], 'controlPlane.replicas "two" is not a whole number'],
    [['controlPlane.replicas=2'], 'each control-plane replica would generate its own CA root'],
    [['cni.binDir=opt/cni/bin'], 'cni.binDir "opt/cni/bin" is not an absolute path'],
    [['namespace=Ambit'], 'namespace "Ambit"'],
    [['podsCgroup=kubepods.slice'], 'unknown key podsCgroup'],
  ])('--set %j is a usage error: %s', (sets, message) => {
    expect(() => parseValues(sets)).toThrow(
      expect.objectContaining({ code: ErrorCode.USAGE, message: expect.stringContaining(message) }),
    );
  });

  test('every problem is reported at once', () => {
    expect(() => parseValues(['a=1', 'logLevel=x'])).toThrow(/unknown key a[\s\S]*logLevel "x"/);
  });

  test('dotted keys set nested values and leave the defaults alone', () => {
    const v = parseValues(['images.node=n:1', 'cni.confDir=/etc/cni/conf.d']);
    expect(v.images).toEqual({ ...DEFAULT_VALUES.images, node: 'n:1' });
    expect(v.cni).toEqual({ binDir: '/opt/cni/bin', confDir: '/etc/cni/conf.d' });
    expect(DEFAULT_VALUES.images.node).not.toBe('n:1');
  });
});

describe('ambit uninstall -o yaml', () => {
  // That it lists exactly what uninstall touches is checked against its kubectl calls (install-cli.test.ts).
  test.each(FLAG_SETS)('%s: covers every object install makes, each once', async (_name, flags) => {
    const installed = docs(await stdoutOf(() => installCommand(['--dry-run', ...flags], settings)));
    const printed = parseAllDocuments(
      await stdoutOf(() => uninstallCommand(['-o', 'yaml', ...flags], settings)),
    )
      .map((d) => d.toJS() as KubeObject | null)
      .filter((o): o is KubeObject => o !== null);
    const ids = (l: KubeObject[]) =>
      l.map((o) => `${o.apiVersion} ${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    expect(ids(printed)).toEqual(expect.arrayContaining(ids(installed)));
    expect(new Set(ids(printed)).size).toBe(printed.length);
  });
});
