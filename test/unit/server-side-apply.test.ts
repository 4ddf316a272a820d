import { describe, expect, test } from 'vitest';
import { driftedFields, fieldSet } from '../../src/kube/field-paths.js';
import {
  ApplyConflictError,
  defaultManager,
  fromFieldsV1,
  type ManagedFieldsEntry,
  mergeApplied,
  recordUpdate,
  serverSideApply,
  toFieldsV1,
} from '../../src/local/kube-api/server-side-apply.js';

type Json = Record<string, unknown>;

const NOW = '2026-01-01T00:00:00Z';

const deployment = (over: { replicas?: number; env?: Json[]; image?: string; labels?: Json } = {}): Json => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'waypoint', namespace: 'shop', labels: over.labels ?? { app: 'waypoint' } },
  spec: {
    replicas: over.replicas ?? 1,
    selector: { matchLabels: { app: 'waypoint' } },
    template: {
      metadata: { labels: { app: 'waypoint' } },
      spec: {
        containers: [
          {
            name: 'waypoint',
            image: over.image ?? 'ambit:1',
            env: over.env ?? [{ name: 'A', value: '1' }],
            ports: [{ containerPort: 15008, protocol: 'TCP' }],
          },
        ],
      },
    },
  },
});

const apply = (
  live: Json | undefined,
  managed: readonly ManagedFieldsEntry[],
  manager: string,
  config: Json,
  force = false,
) => serverSideApply({ live, managed, manager, config, force, apiVersion: 'apps/v1', now: NOW });

const containerOf = (o: Json) =>
  ((((o.spec as Json).template as Json).spec as Json).containers as Json[])[0] as Json;

describe('field paths', () => {
  test('leaves, and items of associative lists by their keys; identity and status are never owned', () => {
    const set = fieldSet({ ...deployment(), status: { replicas: 1 } });
    const paths = [...set].map((p) => (JSON.parse(p) as string[]).join(' '));
    expect(paths).toContain('f:spec f:replicas');
    expect(paths).toContain('f:spec f:template f:spec f:containers k:{"name":"waypoint"}');
    expect(paths).toContain(
      'f:spec f:template f:spec f:containers k:{"name":"waypoint"} f:env k:{"name":"A"} f:value',
    );
    // A container port is keyed by containerPort and protocol.
    expect(paths).toContain(
      'f:spec f:template f:spec f:containers k:{"name":"waypoint"} f:ports k:{"containerPort":15008,"protocol":"TCP"}',
    );
    expect(
      paths.filter(
        (p) =>
          /f:status|f:apiVersion|f:kind|f:name$|f:namespace$/.test(p) &&
          !p.includes('containers') &&
          !p.includes('env'),
      ),
    ).toEqual([]);
  });

  test('FieldsV1 round-trips, with "." on owned list items', () => {
    const set = fieldSet(deployment());
    const f = toFieldsV1(set);
    expect(fromFieldsV1(f)).toEqual(set);
    const containers = (
      (((f['f:spec'] as Json)['f:template'] as Json)['f:spec'] as Json)['f:containers'] as Json
    )['k:{"name":"waypoint"}'] as Json;
    expect(containers['.']).toEqual({});
  });

  test.each([
    ['nothing changed', deployment(), []],
    ['replicas changed', deployment({ replicas: 3 }), ['.spec.replicas']],
    [
      'an env added by someone else',
      deployment({
        env: [
          { name: 'A', value: '1' },
          { name: 'B', value: '2' },
        ],
      }),
      [],
    ],
    [
      'an applied env changed',
      deployment({ env: [{ name: 'A', value: '9' }] }),
      ['.spec.template.spec.containers[name="waypoint"].env[name="A"].value'],
    ],
    [
      'an applied env removed',
      deployment({ env: [] }),
      [
        '.spec.template.spec.containers[name="waypoint"].env[name="A"]',
        '.spec.template.spec.containers[name="waypoint"].env[name="A"].name',
        '.spec.template.spec.containers[name="waypoint"].env[name="A"].value',
      ],
    ],
    ['a label added', deployment({ labels: { app: 'waypoint', x: 'y' } }), []],
  ])('drift of the applied fields: %s', (_what, live, drift) => {
    expect(driftedFields(deployment(), live)).toEqual(drift);
  });
});

describe('serverSideApply', () => {
  test('an apply to nothing creates the object and makes the applier own every field it set', () => {
    const r = apply(undefined, [], 'ambit-control-plane', deployment());
    expect(r.object).toEqual(deployment());
    expect(r.managed).toHaveLength(1);
    expect(r.managed[0]).toMatchObject({
      manager: 'ambit-control-plane',
      operation: 'Apply',
      apiVersion: 'apps/v1',
    });
    expect(fromFieldsV1(r.managed[0]!.fieldsV1)).toEqual(fieldSet(deployment()));
  });

  test("a field the applier set before and leaves out now is removed; another manager's stays", () => {
    const first = apply(undefined, [], 'cp', deployment());
    // Someone else adds env B (an Update of theirs).
    const edited = deployment({
      env: [
        { name: 'A', value: '1' },
        { name: 'B', value: '2' },
      ],
    });
    const managed = recordUpdate({
      before: first.object,
      after: edited,
      managed: first.managed,
      manager: 'kubectl-edit',
      apiVersion: 'apps/v1',
      now: NOW,
    });
    // The applier now sets no env at all.
    const config = deployment({ env: [] });
    delete (containerOf(config) as Json).env;
    const r = apply(edited, managed, 'cp', config);
    expect(containerOf(r.object).env).toEqual([{ name: 'B', value: '2' }]);
  });

  test('a list item another manager added stays when the applier applies its own list again', () => {
    const first = apply(undefined, [], 'cp', deployment());
    const edited = deployment({
      env: [
        { name: 'A', value: '1' },
        { name: 'B', value: '2' },
      ],
    });
    const managed = recordUpdate({
      before: first.object,
      after: edited,
      managed: first.managed,
      manager: 'kubectl-edit',
      apiVersion: 'apps/v1',
      now: NOW,
    });
    const r = apply(edited, managed, 'cp', deployment());
    expect(containerOf(r.object).env).toEqual([
      { name: 'A', value: '1' },
      { name: 'B', value: '2' },
    ]);
    expect(r.managed.map((m) => m.manager).sort()).toEqual(['cp', 'kubectl-edit']);
  });

  test.each([
    ['a different value, without force: 409 naming the field and its manager', 5, false, 'conflict'],
    ['a different value, with force: taken over', 5, true, 'cp'],
    ['the same value: shared, no conflict', 3, false, 'shared'],
  ])('applying to a field another manager changed: %s', (_what, replicas, force, outcome) => {
    const first = apply(undefined, [], 'cp', deployment());
    const scaled = deployment({ replicas: 3 });
    const managed = recordUpdate({
      before: first.object,
      after: scaled,
      managed: first.managed,
      manager: 'kubectl-scale',
      apiVersion: 'apps/v1',
      now: NOW,
    });
    const run = () => apply(scaled, managed, 'cp', deployment({ replicas }), force);
    if (outcome === 'conflict') {
      expect(run).toThrow(ApplyConflictError);
      try {
        run();
      } catch (err) {
        expect((err as ApplyConflictError).conflicts).toEqual([
          { manager: 'kubectl-scale', field: '.spec.replicas' },
        ]);
        expect((err as Error).message).toBe(
          'Apply failed with 1 conflict: conflict with "kubectl-scale": .spec.replicas',
        );
      }
      return;
    }
    const r = run();
    expect((r.object.spec as Json).replicas).toBe(replicas);
    const owners = r.managed
      .filter((m) => fromFieldsV1(m.fieldsV1).has(JSON.stringify(['f:spec', 'f:replicas'])))
      .map((m) => m.manager)
      .sort();
    expect(owners).toEqual(outcome === 'shared' ? ['cp', 'kubectl-scale'] : ['cp']);
  });

  test('maps merge key by key: a label someone else set stays', () => {
    const live = deployment({ labels: { app: 'waypoint', team: 'x' } });
    const r = apply(live, [], 'cp', deployment());
    expect((r.object.metadata as Json).labels).toEqual({ app: 'waypoint', team: 'x' });
  });

  test('atomic lists are replaced whole', () => {
    expect(mergeApplied({ args: ['a', 'b'] }, { args: ['c'] })).toEqual({ args: ['c'] });
  });
});

describe('recordUpdate', () => {
  test("the fields an update changed become its manager's and no one else's", () => {
    const first = apply(undefined, [], 'cp', deployment());
    const managed = recordUpdate({
      before: first.object,
      after: deployment({ image: 'ambit:2' }),
      managed: first.managed,
      manager: 'kubectl-edit',
      apiVersion: 'apps/v1',
      now: NOW,
    });
    const image = JSON.stringify([
      'f:spec',
      'f:template',
      'f:spec',
      'f:containers',
      'k:{"name":"waypoint"}',
      'f:image',
    ]);
    const byManager = Object.fromEntries(
      managed.map((m) => [`${m.manager}/${m.operation}`, fromFieldsV1(m.fieldsV1)]),
    );
    expect(byManager['kubectl-edit/Update']?.has(image)).toBe(true);
    expect(byManager['cp/Apply']?.has(image)).toBe(false);
    expect(byManager['cp/Apply']?.has(JSON.stringify(['f:spec', 'f:replicas']))).toBe(true);
  });

  test('an update that changes nothing adds no manager', () => {
    const first = apply(undefined, [], 'cp', deployment());
    expect(
      recordUpdate({
        before: first.object,
        after: first.object,
        managed: first.managed,
        manager: 'x',
        apiVersion: 'apps/v1',
        now: NOW,
      }),
    ).toEqual(first.managed);
  });

  test.each([
    ['kubectl/v1.32.4 (linux/amd64) kubernetes/abc', 'kubectl'],
    ['ambit', 'ambit'],
    [undefined, 'unknown'],
  ])("a write without fieldManager is by the user agent's first word: %j -> %s", (ua, manager) => {
    expect(defaultManager(ua)).toBe(manager);
  });
});
