import { describe, expect, test } from 'vitest';
import {
  type Applied,
  desiredObjects,
  type LiveObject,
  liveObject,
  objectKeyOf,
  planWaypoints,
  type WaypointOptions,
} from '../../src/control-plane/waypoint-plan.js';
import type { KubeObject, RenderableGateway } from '../../src/gateway-api/waypoint-render.js';

const OPTIONS: WaypointOptions = {
  image: 'ghcr.io/ambit-mesh/ambit:0.1.0',
  version: '0.1.0',
  trustDomain: 'cluster.local',
  controlPlane: 'ambit-control-plane.ambit-system.svc:15012',
};

const gateway = (name = 'waypoint', uid: string | undefined = `uid-${name}`): RenderableGateway => ({
  namespace: 'shop',
  name,
  labels: {},
  gatewayClassName: 'ambit-waypoint',
  listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE', allowedRoutes: { from: 'Same' } }],
  addresses: [],
  ...(uid === undefined ? {} : { uid }),
});

type Json = Record<string, unknown>;

/** The API's copy of an object: what was applied, with a version, maybe changed. */
function live(o: KubeObject, rv: string, change?: (j: Json) => void): LiveObject {
  const j = structuredClone(o) as unknown as Json;
  j.metadata = { ...(j.metadata as Json), uid: `obj-${o.kind}`, resourceVersion: rv };
  change?.(j);
  return liveObject(o.kind, j)!;
}

const liveMap = (...l: LiveObject[]) => new Map(l.map((x) => [x.key, x]));
const appliedAt = (o: KubeObject, rv: string): [string, Applied] => [
  objectKeyOf(o),
  { text: JSON.stringify(o), resourceVersion: rv },
];

describe('desiredObjects', () => {
  test('each waypoint Gateway with a UID makes a ServiceAccount, Deployment and Service it controls', () => {
    const objects = desiredObjects([gateway('a'), gateway('b', '')], OPTIONS);
    expect(objects.map(objectKeyOf)).toEqual([
      'ServiceAccount/shop/a',
      'Deployment/shop/a',
      'Service/shop/a',
    ]);
    for (const o of objects)
      expect(o.metadata.ownerReferences).toEqual([
        {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'Gateway',
          name: 'a',
          uid: 'uid-a',
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
  });

  test('local mode: the container runs the given command and environment instead of the image', () => {
    const [, d] = desiredObjects([gateway()], {
      ...OPTIONS,
      container: {
        command: ['/bin/node', '/opt/ambit/waypoint.js'],
        env: { AMBIT_TOKEN_FILE: '/t', AMBIT_CA_BUNDLE: '/ca' },
      },
    });
    const c = ((((d!.spec as Json).template as Json).spec as Json).containers as Json[])[0]!;
    expect(c.command).toEqual(['/bin/node', '/opt/ambit/waypoint.js']);
    expect(c.args).toEqual([]);
    const env = Object.fromEntries(
      (c.env as { name: string; value?: string }[]).map((e) => [e.name, e.value]),
    );
    expect(env).toMatchObject({
      AMBIT_TOKEN_FILE: '/t',
      AMBIT_CA_BUNDLE: '/ca',
      AMBIT_GATEWAY_NAME: 'waypoint',
    });
    expect((c.env as { name: string }[]).filter((e) => e.name === 'AMBIT_TOKEN_FILE')).toHaveLength(1);
  });
});

describe('planWaypoints', () => {
  const [sa, deploy, svc] = desiredObjects([gateway()], OPTIONS) as [KubeObject, KubeObject, KubeObject];
  const all = [sa, deploy, svc];
  const upToDate = liveMap(live(sa, '5'), live(deploy, '6'), live(svc, '7'));
  const applied = new Map([appliedAt(sa, '5'), appliedAt(deploy, '6'), appliedAt(svc, '7')]);

  test.each<[string, Map<string, LiveObject>, Map<string, Applied>, string[]]>([
    ['nothing exists yet: all three', new Map(), new Map(), ['missing', 'missing', 'missing']],
    [
      'they exist, nothing applied since the control plane started: applied once',
      upToDate,
      new Map(),
      ['first apply', 'first apply', 'first apply'],
    ],
    ['as applied: nothing', upToDate, applied, []],
    [
      'someone deleted the Deployment: it comes back',
      liveMap(live(sa, '5'), live(svc, '7')),
      applied,
      ['missing'],
    ],
    [
      'someone scaled the Deployment (a field the control plane sets): applied again',
      liveMap(
        live(sa, '5'),
        live(deploy, '9', (j) => ((j.spec as Json).replicas = 4)),
        live(svc, '7'),
      ),
      applied,
      ['changed by someone else: .spec.replicas'],
    ],
    [
      'someone added an env var (a field it does not set): nothing',
      liveMap(
        live(sa, '5'),
        live(deploy, '9', (j) => {
          const c = ((((j.spec as Json).template as Json).spec as Json).containers as Json[])[0]!;
          (c.env as Json[]).push({ name: 'DEBUG', value: '1' });
        }),
        live(svc, '7'),
      ),
      applied,
      [],
    ],
    [
      'the version its own apply made is never looked at again (defaulting cannot loop)',
      liveMap(
        live(sa, '5'),
        live(deploy, '6', (j) => ((j.spec as Json).replicas = 4)),
        live(svc, '7'),
      ),
      applied,
      [],
    ],
  ])('%s', (_what, l, a, why) => {
    expect(planWaypoints(all, l, a).apply.map((x) => x.why)).toEqual(why);
  });

  test('a rendering that changed is applied again', () => {
    const old = new Map([
      appliedAt(sa, '5'),
      [objectKeyOf(deploy), { text: '{}', resourceVersion: '6' }],
      appliedAt(svc, '7'),
    ]);
    expect(planWaypoints(all, upToDate, old).apply.map((x) => [objectKeyOf(x.object), x.why])).toEqual([
      ['Deployment/shop/waypoint', 'rendering changed'],
    ]);
  });

  test('objects a Gateway controls that are no longer rendered are deleted; other objects are not', () => {
    const [osa, odeploy] = desiredObjects([gateway('gone')], OPTIONS) as [KubeObject, KubeObject];
    const unowned = live(svc, '3', (j) => {
      (j.metadata as Json).name = 'mine';
      delete (j.metadata as Json).ownerReferences;
    });
    const plan = planWaypoints(
      all,
      liveMap(...upToDate.values(), live(osa, '1'), live(odeploy, '2'), unowned),
      applied,
    );
    expect(plan.delete.map((d) => d.key)).toEqual(['ServiceAccount/shop/gone', 'Deployment/shop/gone']);
    expect(plan.apply).toEqual([]);
  });
});
