import { describe, expect, test } from 'vitest';
import { desiredObjects } from '../../src/control-plane/waypoint-plan.js';
import {
  controllerObjectProblems,
  pendingWaypoints,
  withControllerObjects,
} from '../../src/local/controller-manifests.js';
import { unavailableDeployments } from '../../src/local/desired-pods.js';
import { servedControllerObject } from '../../src/local/kube-api/local-api.js';
import { parseManifestTexts } from '../../src/manifests/load-manifests.js';
import { type Manifests, objectKey } from '../../src/manifests/model.js';

type Json = Record<string, unknown>;

const OPTS = { requireCommand: true } as const;

/** What the control plane applies in local mode for a waypoint Gateway shop/waypoint. */
const rendered = (): Json[] =>
  desiredObjects(
    [
      {
        namespace: 'shop',
        name: 'waypoint',
        labels: {},
        gatewayClassName: 'ambit-waypoint',
        listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE', allowedRoutes: { from: 'Same' } }],
        addresses: [],
        uid: 'gw-uid',
      },
    ],
    {
      image: 'ghcr.io/ambit-mesh/ambit:0.1.0',
      version: '0.1.0',
      trustDomain: 'cluster.local',
      controlPlane: '10.0.0.1:15012',
      container: {
        command: ['/usr/bin/node', '/opt/ambit/dist/l7-waypoint/main.js'],
        env: { AMBIT_TOKEN_FILE: '/t' },
      },
    },
  ).map((o) => ({ ...(o as unknown as Json), metadata: { ...(o.metadata as Json), uid: `uid-${o.kind}` } }));

function load(text: string): Manifests {
  const r = parseManifestTexts([{ file: 'mesh.yaml', text }], OPTS);
  expect(r.issues).toEqual([]);
  return r.manifests;
}

const NS = 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n';

describe('withControllerObjects: a local cluster runs what controllers made through its API', () => {
  test("the control plane's waypoint objects run beside the declared ones", () => {
    const r = withControllerObjects(load(NS), rendered(), OPTS);
    expect(r.issues).toEqual([]);
    expect([...r.inEffect].sort()).toEqual([
      'Deployment/shop/waypoint',
      'Service/shop/waypoint',
      'ServiceAccount/shop/waypoint',
    ]);
    const d = r.manifests.deployments[0]!;
    expect(d.template.spec.containers[0]!.command).toEqual([
      '/usr/bin/node',
      '/opt/ambit/dist/l7-waypoint/main.js',
    ]);
    expect(d.template.labels).toMatchObject({ 'ambit.dev/dataplane-mode': 'none' });
    expect(r.manifests.namespaces.map((n) => n.meta.name)).toEqual(['shop']);
  });

  test('an object the manifests declare under the same name wins, with a warning', () => {
    const svc = `---\napiVersion: v1\nkind: Service\nmetadata:\n  name: waypoint\n  namespace: shop\nspec:\n  selector: {app: mine}\n  ports:\n    - port: 80\n`;
    const r = withControllerObjects(load(NS + svc), rendered(), OPTS);
    expect(r.inEffect.has('Service/shop/waypoint')).toBe(false);
    expect(r.manifests.services.map((s) => s.selector)).toEqual([{ app: 'mine' }]);
    expect(r.issues.map((i) => [i.severity, i.message])).toEqual([
      ['warning', 'Service/shop/waypoint is declared in the manifests: the one a controller made is not run'],
    ]);
  });

  test("a kept object that local mode cannot run is refused with the parser's reasons", () => {
    const [, d] = rendered();
    const broken = structuredClone(d!) as Json;
    const c = ((((broken.spec as Json).template as Json).spec as Json).containers as Json[])[0]!;
    delete c.command;
    expect(controllerObjectProblems(broken, OPTS).join('\n')).toMatch(/command/);
    expect(controllerObjectProblems(d!, OPTS)).toEqual([]);
  });
});

describe('servedControllerObject', () => {
  test('a kept Service is served as applied, with the cluster IPs the cluster gave it', () => {
    const [, , svc] = rendered();
    const published = {
      kind: 'Service',
      metadata: { name: 'waypoint' },
      spec: { clusterIP: '10.96.0.9', clusterIPs: ['10.96.0.9'] },
    };
    const served = servedControllerObject(svc!, published);
    expect(served.metadata).toEqual(svc!.metadata);
    expect((served.spec as Json).clusterIP).toBe('10.96.0.9');
    expect((served.spec as Json).ipFamilyPolicy).toBe('PreferDualStack');
  });

  test('a kept Deployment keeps its spec and gets the status its pods give', () => {
    const [, d] = rendered();
    const served = servedControllerObject(d!, { status: { readyReplicas: 1 } });
    expect(served.spec).toEqual(d!.spec);
    expect(served.status).toEqual({ readyReplicas: 1 });
    expect(
      objectKey({
        kind: 'Deployment',
        meta: { name: 'waypoint', namespace: 'shop', labels: {}, annotations: {} },
      }),
    ).toBe('Deployment/shop/waypoint');
  });
});

describe('pendingWaypoints: local mode is ready once the control plane made every waypoint', () => {
  const gw = (name: string, extra = '') =>
    `---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: ${name}\n  namespace: shop\nspec:\n  gatewayClassName: ambit-waypoint\n  listeners:\n    - {name: mesh, port: 15008, protocol: HBONE}\n${extra}`;
  test.each([
    ['no Gateway', NS, false, []],
    ['a waypoint Gateway, nothing made yet', NS + gw('waypoint'), false, ['shop/waypoint']],
    ['a waypoint Gateway with its Deployment made', NS + gw('waypoint'), true, []],
    [
      'a Gateway the control plane rejects (an address it cannot take) is not waited for',
      NS + gw('waypoint', '  addresses:\n    - {type: Hostname, value: x.example}\n'),
      false,
      [],
    ],
  ])('%s', (_what, text, made, pending) => {
    const m = load(text);
    const withMade = made ? withControllerObjects(m, rendered(), OPTS).manifests : m;
    expect(pendingWaypoints(withMade)).toEqual(pending);
  });
});

describe('unavailableDeployments: local mode is ready once every Deployment has its pods ready', () => {
  const m = () => withControllerObjects(load(NS + gwText), rendered(), OPTS).manifests;
  const gwText = `---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: waypoint\n  namespace: shop\nspec:\n  gatewayClassName: ambit-waypoint\n  listeners:\n    - {name: mesh, port: 15008, protocol: HBONE}\n`;
  const pod = (extra: { ready: boolean; deletedAt?: string; namespace?: string; owner?: string }) => ({
    namespace: 'shop',
    owner: 'Deployment/waypoint',
    ...extra,
  });
  test.each([
    ['the waypoint Deployment made, its pod not started yet', [], ['shop/waypoint']],
    ['its pod started, not ready', [pod({ ready: false })], ['shop/waypoint']],
    ['its pod ready', [pod({ ready: true })], []],
    [
      'only a terminating pod ready',
      [pod({ ready: true, deletedAt: '2026-12-02T00:00:00Z' })],
      ['shop/waypoint'],
    ],
    ['a ready pod of another namespace', [pod({ ready: true, namespace: 'other' })], ['shop/waypoint']],
  ])('%s', (_what, pods, unavailable) => {
    expect(pendingWaypoints(m())).toEqual([]);
    expect(unavailableDeployments(m(), pods)).toEqual(unavailable);
  });
});
