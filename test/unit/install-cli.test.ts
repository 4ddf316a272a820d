import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  GATEWAY_API_CRDS_URL,
  installCommand,
  namespaceCommand,
  uninstallBlockers,
  uninstallCommand,
} from '../../src/ctl/install-commands.js';
import type { KubectlResult, KubectlRunner, KubectlTarget } from '../../src/ctl/kubectl.js';
import { spawnKubectl, targetArgs } from '../../src/ctl/kubectl.js';
import { readSettings } from '../../src/ctl/settings.js';
import { waypointCommand } from '../../src/ctl/waypoint-commands.js';
import { ErrorCode } from '../../src/errors.js';

/*
 * The cluster commands against a scripted kubectl: what they run, in which order, with which input,
 * and what they refuse. (No Kubernetes runs here; kubectl itself is the boundary.)
 */

interface Call {
  readonly args: readonly string[];
  readonly stdin?: string;
  readonly target: KubectlTarget;
}

let calls: Call[];
let answers: ((args: readonly string[]) => KubectlResult | undefined)[];
const settings = readSettings({});

const fake =
  () =>
  (_s: unknown, target: KubectlTarget): KubectlRunner => ({
    run: async (args, o = {}) => {
      calls.push({ args, ...(o.stdin === undefined ? {} : { stdin: o.stdin }), target });
      for (const a of answers) {
        const r = a(args);
        if (r !== undefined) return r;
      }
      return { code: 0, stdout: '' };
    },
  });

const list = (items: unknown[]): KubectlResult => ({ code: 0, stdout: JSON.stringify({ items }) });
const kinds = (stdin: string | undefined): string[] =>
  parseAllDocuments(stdin ?? '').map((d) => {
    const o = d.toJS() as { kind: string; metadata: { name: string } };
    return `${o.kind}/${o.metadata.name}`;
  });

beforeEach(() => {
  calls = [];
  answers = [];
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
});
afterEach(() => vi.restoreAllMocks());

describe('ambit install', () => {
  test('applies every object server-side through kubectl, then waits for the rollouts', async () => {
    await installCommand(['--context', 'prod', '--set', 'logLevel=debug'], settings, fake());
    expect(calls.map((c) => c.args.join(' '))).toEqual([
      'get crd gateways.gateway.networking.k8s.io -o name',
      'apply --server-side --field-manager=ambit -f -',
      'rollout status -n ambit-system deployment/ambit-control-plane --timeout=5m',
      'rollout status -n ambit-system daemonset/ambit-node --timeout=10m',
    ]);
    expect(calls[1]?.target).toEqual({ context: 'prod' });
    expect(kinds(calls[1]?.stdin)).toContain('DaemonSet/ambit-node');
    expect(calls[1]?.stdin).toContain('--log-level=debug');
  });

  test('refuses without the Gateway API CRDs, naming the step that installs them', async () => {
    answers.push((a) => (a[0] === 'get' ? { code: 1, stdout: '' } : undefined));
    await expect(installCommand([], settings, fake())).rejects.toMatchObject({
      code: ErrorCode.PRECONDITION,
      message: expect.stringContaining('ambit install gateway-api-crds'),
    });
    expect(calls).toHaveLength(1);
  });

  test('gateway-api-crds applies the upstream release manifest', async () => {
    await installCommand(['gateway-api-crds'], settings, fake());
    expect(calls.map((c) => c.args.join(' '))).toEqual([
      `apply --server-side --field-manager=ambit -f ${GATEWAY_API_CRDS_URL}`,
    ]);
    expect(GATEWAY_API_CRDS_URL).toMatch(
      /^https:\/\/github\.com\/kubernetes-sigs\/gateway-api\/releases\/download\/v1\.\d+\.\d+\/standard-install\.yaml$/,
    );
  });

  test('a failing kubectl fails the install', async () => {
    answers.push((a) => (a[0] === 'apply' ? { code: 1, stdout: '' } : undefined));
    await expect(installCommand([], settings, fake())).rejects.toMatchObject({
      code: ErrorCode.COMMAND_FAILED,
    });
  });

  test.each([
    [['--set', 'bogus=1'], 'unknown key bogus'],
    [['-o', 'table', '--dry-run'], '-o table: use yaml or json'],
    [['extra'], 'unexpected argument'],
  ])('%j is a usage error', async (argv, message) => {
    await expect(installCommand(argv, settings, fake())).rejects.toMatchObject({
      code: ErrorCode.USAGE,
      message: expect.stringContaining(message),
    });
    expect(calls).toEqual([]);
  });
});

describe('uninstallBlockers', () => {
  test.each([
    [[], [], []],
    [
      [{ metadata: { name: 'shop' } }, { metadata: { name: 'bank' } }],
      [],
      [
        'namespaces still enrolled (ambit.dev/dataplane-mode=ambient): bank, shop (ambit namespace unenroll <ns>)',
      ],
    ],
    [
      [],
      [
        { metadata: { name: 'wp', namespace: 'shop' }, spec: { gatewayClassName: 'ambit-waypoint' } },
        { metadata: { name: 'edge', namespace: 'infra' }, spec: { gatewayClassName: 'istio' } },
      ],
      ['waypoints still exist: shop/wp (ambit waypoint delete <name> -n <ns>)'],
    ],
  ])('%j %j', (ns, gws, blockers) => {
    expect(uninstallBlockers(ns, gws)).toEqual(blockers);
  });
});

describe('ambit uninstall', () => {
  test('refuses while a namespace is enrolled or a waypoint exists, naming them, and deletes nothing', async () => {
    answers.push((a) => (a[1] === 'namespaces' ? list([{ metadata: { name: 'shop' } }]) : undefined));
    answers.push((a) =>
      a[1]?.startsWith('gateways')
        ? list([
            { metadata: { name: 'wp', namespace: 'shop' }, spec: { gatewayClassName: 'ambit-waypoint' } },
          ])
        : undefined,
    );
    await expect(uninstallCommand([], settings, fake())).rejects.toMatchObject({
      code: ErrorCode.PRECONDITION,
      message: expect.stringMatching(/enrolled.*shop.*waypoints still exist: shop\/wp/),
    });
    expect(calls.map((c) => c.args[0])).toEqual(['get', 'get']);
  });

  test('removes the node DaemonSet, cleans every node, then deletes the rest (--force past the blockers)', async () => {
    answers.push((a) => (a[1] === 'namespaces' ? list([{ metadata: { name: 'shop' } }]) : undefined));
    answers.push((a) => (a[1]?.startsWith('gateways') ? { code: 1, stdout: '' } : undefined));
    await uninstallCommand(['--force'], settings, fake());
    expect(calls.map((c) => c.args.join(' '))).toEqual([
      'get namespaces -l ambit.dev/dataplane-mode=ambient -o json',
      'get gateways.gateway.networking.k8s.io -A -o json',
      'delete --ignore-not-found --wait=true -n ambit-system daemonset/ambit-node',
      'apply --server-side --field-manager=ambit -f -',
      'rollout status -n ambit-system daemonset/ambit-node-cleanup --timeout=10m',
      'delete --ignore-not-found --wait=true -f -',
      'delete --ignore-not-found --wait=true -f -',
      // What the control plane published (not an installed object): after it is gone.
      'delete configmap --all-namespaces -l app.kubernetes.io/managed-by=ambit-control-plane --ignore-not-found --wait=true',
    ]);
    expect(kinds(calls[3]?.stdin)).toEqual(['DaemonSet/ambit-node-cleanup']);
    expect(kinds(calls[5]?.stdin)).toEqual(['DaemonSet/ambit-node-cleanup']);
    const deleted = kinds(calls[6]?.stdin);
    expect(deleted[0]).toBe('GatewayClass/ambit-waypoint');
    expect(deleted.at(-1)).toBe('Namespace/ambit-system');
  });

  test.each([
    ['default', []],
    ['another namespace and node image', ['--namespace', 'mesh', '--set', 'images.node=n:1']],
  ])(
    '-o yaml (%s) prints exactly what uninstall deletes or applies, as its kubectl calls show, in their order',
    async (_n, flags) => {
      answers.push((a) => (a[1] === 'namespaces' || a[1]?.startsWith('gateways') ? list([]) : undefined));
      await uninstallCommand(flags, settings, fake());
      const made = calls;
      // What the calls touch, each once, in the order they first touch it: objects by stdin or by
      // `-n ns kind/name`; anything else that changes the cluster (a delete by label) is expected
      // verbatim as a `# kubectl ...` comment. Reads (get, rollout status) touch nothing.
      const id = (kind: string, ns: string | undefined, name: string) =>
        `${kind.toLowerCase()} ${ns ?? ''}/${name}`;
      const touched: string[] = [];
      const objects = new Map<string, unknown>();
      const byCommand: string[] = [];
      for (const c of made) {
        if (c.args[0] === 'get' || c.args[0] === 'rollout') continue;
        if (c.stdin !== undefined)
          for (const d of parseAllDocuments(c.stdin)) {
            const o = d.toJS() as { kind: string; metadata: { name: string; namespace?: string } } | null;
            if (o === null) continue;
            const k = id(o.kind, o.metadata.namespace, o.metadata.name);
            touched.push(k);
            objects.set(k, o);
          }
        else {
          const ref = c.args.find((a) => /^[a-z.]+\/[a-z0-9.-]+$/.test(a));
          const ns = c.args[c.args.indexOf('-n') + 1];
          if (c.args[0] === 'delete' && ref !== undefined && c.args.includes('-n')) {
            const [kind = '', name = ''] = ref.split('/');
            touched.push(id(kind, ns, name));
          } else byCommand.push(`# kubectl ${c.args.join(' ')}`);
        }
      }
      expect(byCommand).toHaveLength(1);
      calls = [];
      let out = '';
      vi.mocked(process.stdout.write).mockImplementation((chunk: string | Uint8Array) => {
        out += String(chunk);
        return true;
      });
      await uninstallCommand(['-o', 'yaml', ...flags], settings, fake());
      expect(calls).toEqual([]);
      const printed = parseAllDocuments(out)
        .map((d) => d.toJS() as { kind: string; metadata: { name: string; namespace?: string } } | null)
        .filter((o) => o !== null);
      expect(printed.map((o) => id(o.kind, o.metadata.namespace, o.metadata.name))).toEqual([
        ...new Set(touched),
      ]);
      // The objects it applies or deletes from a manifest are printed as they are sent.
      for (const o of printed) {
        const sent = objects.get(id(o.kind, o.metadata.namespace, o.metadata.name));
        if (sent !== undefined) expect(o).toEqual(sent);
      }
      for (const line of byCommand) expect(out.split('\n')).toContain(line);
    },
  );

  test('a cleanup that does not finish on every node stops the uninstall before anything else is deleted', async () => {
    answers.push((a) => (a[1] === 'namespaces' || a[1]?.startsWith('gateways') ? list([]) : undefined));
    answers.push((a) => (a[0] === 'rollout' ? { code: 1, stdout: '' } : undefined));
    await expect(uninstallCommand([], settings, fake())).rejects.toMatchObject({
      code: ErrorCode.COMMAND_FAILED,
    });
    expect(calls.at(-1)?.args[0]).toBe('rollout');
  });
});

describe('ambit namespace', () => {
  test.each([
    ['enroll', 'ambit.dev/dataplane-mode=ambient'],
    ['unenroll', 'ambit.dev/dataplane-mode-'],
  ])('%s labels through kubectl', async (action, label) => {
    await namespaceCommand([action, 'shop', '--kubeconfig', '/k'], settings, fake());
    expect(calls).toEqual([
      { args: ['label', 'namespace', 'shop', label, '--overwrite'], target: { kubeconfig: '/k' } },
    ]);
  });

  test.each([[['enroll']], [['join', 'shop']], [['enroll', 'a', 'b']]])(
    '%j is a usage error',
    async (argv) => {
      await expect(namespaceCommand(argv, settings, fake())).rejects.toMatchObject({ code: ErrorCode.USAGE });
    },
  );
});

describe('ambit waypoint against a cluster', () => {
  test('apply --kubectl applies the Gateway server-side and labels the namespace', async () => {
    await waypointCommand(['apply', 'wp', '-n', 'shop', '--kubectl', '--enroll-namespace'], settings, fake());
    expect(calls.map((c) => c.args.join(' '))).toEqual([
      'apply --server-side --field-manager=ambit -f -',
      'label namespace shop ambit.dev/use-waypoint=wp --overwrite',
    ]);
    expect(calls[0]?.stdin).toContain('gatewayClassName: ambit-waypoint');
  });

  test('delete removes the Gateway and the namespace label that names it', async () => {
    answers.push((a) =>
      a[0] === 'get'
        ? { code: 0, stdout: JSON.stringify({ metadata: { labels: { 'ambit.dev/use-waypoint': 'wp' } } }) }
        : undefined,
    );
    await waypointCommand(['delete', 'wp', '-n', 'shop', '--context', 'c'], settings, fake());
    expect(calls.map((c) => c.args.join(' '))).toEqual([
      'delete -n shop gateways.gateway.networking.k8s.io/wp',
      'get namespace shop -o json',
      'label namespace shop ambit.dev/use-waypoint-',
    ]);
  });

  test('list shows the waypoints of the cluster from their status', async () => {
    let out = '';
    vi.mocked(process.stdout.write).mockImplementation((c: string | Uint8Array) => {
      out += String(c);
      return true;
    });
    answers.push(() =>
      list([
        {
          metadata: { name: 'wp', namespace: 'shop' },
          spec: { gatewayClassName: 'ambit-waypoint' },
          status: {
            addresses: [{ value: '10.96.0.9' }],
            conditions: [
              { type: 'Accepted', status: 'True' },
              { type: 'Programmed', status: 'True' },
            ],
          },
        },
        { metadata: { name: 'edge', namespace: 'shop' }, spec: { gatewayClassName: 'other' } },
      ]),
    );
    await waypointCommand(['list', '-A', '--kubectl'], settings, fake());
    expect(calls[0]?.args).toEqual(['get', 'gateways.gateway.networking.k8s.io', '-A', '-o', 'json']);
    expect(out.split('\n')[1]).toMatch(/^shop\s+wp\s+10\.96\.0\.9\s+True\s+True$/);
    expect(out).not.toContain('edge');
  });

  test('--name (a local cluster) with --kubectl is a usage error', async () => {
    await expect(
      waypointCommand(['apply', '--name', 'x', '--kubectl'], settings, fake()),
    ).rejects.toMatchObject({
      code: ErrorCode.USAGE,
    });
  });
});

describe('kubectl', () => {
  test('the target flags come before the command', () => {
    expect(targetArgs({ kubeconfig: '/k', context: 'c' })).toEqual(['--kubeconfig=/k', '--context=c']);
    expect(targetArgs({})).toEqual([]);
  });

  test('a missing kubectl is said so, with what to do', async () => {
    await expect(spawnKubectl('/nonexistent/kubectl', {}).run(['version'])).rejects.toMatchObject({
      code: ErrorCode.PRECONDITION,
      message: expect.stringContaining('not found'),
    });
  });

  test('stdin reaches kubectl and a query returns its output', async () => {
    // `cat` stands in for kubectl: it echoes its input, which shows the pipe works end to end.
    const r = await spawnKubectl('cat', {}).run([], { stdin: 'hello\n', capture: true });
    expect(r).toEqual({ code: 0, stdout: 'hello\n' });
  });
});
