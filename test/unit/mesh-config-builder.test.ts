import { describe, expect, test } from 'vitest';
import { parseKubeObject, SOURCE_ANNOTATION } from '../../src/cluster/kube-objects.js';
import type { ClusterResource } from '../../src/cluster/resources.js';
import type { ClusterEvent } from '../../src/cluster/source.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { MeshConfigBuilder } from '../../src/control-plane/mesh-config.js';
import { NEVER_MATCHING_RULE } from '../../src/policy/types.js';
import { AMBIENT_NS, slicesOf, snapEndpoint, snapPod, snapService } from './cluster-fixtures.js';

const ALLOW_DROP = 'node proxies enforce L4, so this ALLOW rule is dropped (as ztunnel does)';

/** A config object as the API serves it, from policies.yaml line 10. */
function api(kind: string, name: string, spec: unknown, apiVersion = 'security.ambit.dev/v1alpha1'): unknown {
  return {
    apiVersion,
    kind,
    metadata: { name, namespace: 'shop', annotations: { [SOURCE_ANNOTATION]: 'policies.yaml:10' } },
    ...(spec === undefined ? {} : { spec }),
  };
}

function resources(objects: readonly unknown[]): ClusterResource[] {
  return objects.flatMap((o) => {
    const r = parseKubeObject(o);
    return 'resource' in r ? [r.resource] : [];
  });
}

function builder(): { store: ClusterStore; b: MeshConfigBuilder; apply: (events: ClusterEvent[]) => void } {
  const store = new ClusterStore();
  const b = new MeshConfigBuilder(store, 'cluster.local');
  return {
    store,
    b,
    apply: (events) => {
      store.apply(events);
      b.apply(events);
    },
  };
}

const added = (rs: readonly ClusterResource[]): ClusterEvent[] =>
  rs.map((resource) => ({ type: 'added', resource }));

describe('config objects, each accepted or rejected on its own', () => {
  test('valid policies apply, invalid ones are rejected with file, line, path and reason; others are not Ambit’s', () => {
    const objects = [
      api('AuthorizationPolicy', 'deny-all', {}),
      api('AuthorizationPolicy', 'no-spec', undefined),
      api('AuthorizationPolicy', 'bad', {
        rules: [{ from: [{ source: { ipBlocks: ['10.0.0.1', 'nope'] } }] }],
        action: 'CUSTOM',
      }),
      api('AuthorizationPolicy', 'http', { rules: [{ to: [{ operation: { paths: ['/x'] } }] }] }),
      api('PeerAuthentication', 'strict', { mtls: { mode: 'STRICT' } }),
      api('PeerAuthentication', 'bad-pa', { portLevelMtls: { 80: { mode: 'STRICT' } } }),
      api('AuthorizationPolicy', 'istio', { action: 'AUDIT' }, 'security.istio.io/v1'),
      api('AuthorizationPolicy', 'not-a-mapping', 'hello'),
    ];
    expect(parseKubeObject(objects[6])).toHaveProperty('ignored');
    const { b, apply } = builder();
    apply(added(resources(objects)));
    const config = b.config([], '1');
    const names = [...config.policies.values()].map((p) => `${p.kind}/${p.name}`);
    // The CUSTOM policy and the one whose spec cannot be read may deny: they fail closed (a DENY of
    // everything in their namespace), while the invalid PeerAuthentication is only left out.
    expect(names.sort()).toEqual([
      'AuthorizationPolicy/bad',
      'AuthorizationPolicy/deny-all',
      'AuthorizationPolicy/http',
      'AuthorizationPolicy/no-spec',
      'AuthorizationPolicy/not-a-mapping',
      'PeerAuthentication/strict',
    ]);
    expect(config.policies.get('AuthorizationPolicy/shop/bad')).toEqual({
      kind: 'AuthorizationPolicy',
      namespace: 'shop',
      name: 'bad',
      action: 'DENY',
      rules: [{}],
      failClosed:
        'spec.action: "CUSTOM" is not supported by Ambit (use ALLOW, DENY, or AUDIT with targetRefs); spec.rules[0].from[0].source.ipBlocks[1]: "nope" is not an IP address or CIDR (203.0.113.4, 10.0.0.0/8, fd00::/64)',
    });
    const closed =
      'fails closed: it is (or may be) a DENY, so node proxies deny every connection to every workload in namespace shop until';
    const http = config.policies.get('AuthorizationPolicy/shop/http');
    expect(http?.kind === 'AuthorizationPolicy' && http.rules).toEqual([NEVER_MATCHING_RULE]);
    const where = { namespace: 'shop', file: 'policies.yaml', line: 10 };
    expect(config.rejections).toEqual([
      {
        ...where,
        kind: 'AuthorizationPolicy',
        name: 'bad',
        path: 'spec.action',
        message: '"CUSTOM" is not supported by Ambit (use ALLOW, DENY, or AUDIT with targetRefs)',
      },
      {
        ...where,
        kind: 'AuthorizationPolicy',
        name: 'bad',
        path: 'spec.rules[0].from[0].source.ipBlocks[1]',
        message: '"nope" is not an IP address or CIDR (203.0.113.4, 10.0.0.0/8, fd00::/64)',
      },
      {
        ...where,
        kind: 'AuthorizationPolicy',
        name: 'bad',
        path: '',
        message: `${closed} shop/bad is fixed`,
      },
      {
        ...where,
        kind: 'AuthorizationPolicy',
        name: 'not-a-mapping',
        path: 'spec',
        message: 'expected a mapping, got "hello"',
      },
      {
        ...where,
        kind: 'AuthorizationPolicy',
        name: 'not-a-mapping',
        path: '',
        message: `${closed} shop/not-a-mapping is fixed`,
      },
      {
        ...where,
        kind: 'PeerAuthentication',
        name: 'bad-pa',
        path: 'spec.portLevelMtls',
        message: 'needs a selector: Istio applies port-level mTLS only to selected workloads',
      },
    ]);
    expect(b.warnings()).toEqual([
      {
        object: 'AuthorizationPolicy/shop/http',
        file: 'policies.yaml',
        line: 10,
        path: 'spec.rules[0].to[0].operation.paths',
        message: `is HTTP-only; ${ALLOW_DROP}`,
      },
    ]);
  });

  test('fixing a rejected policy applies it and clears its rejection; deleting it removes it', () => {
    const { b, apply } = builder();
    const [bad] = resources([api('AuthorizationPolicy', 'p', { action: 'CUSTOM' })]);
    const [good] = resources([api('AuthorizationPolicy', 'p', { action: 'DENY' })]);
    apply(added([bad!]));
    // The rejection, and the note that it fails closed.
    expect(b.config([], '1').rejections.map((r) => r.path)).toEqual(['spec.action', '']);
    expect(b.config([], '1').policies.get('AuthorizationPolicy/shop/p')).toMatchObject({
      action: 'DENY',
      rules: [{}],
    });
    apply([{ type: 'updated', resource: good!, previous: bad! }]);
    expect(b.config([], '2').rejections).toEqual([]);
    expect([...b.config([], '2').policies.keys()]).toEqual(['AuthorizationPolicy/shop/p']);
    expect(b.config([], '2').policies.get('AuthorizationPolicy/shop/p')).not.toHaveProperty('failClosed');
    apply([{ type: 'deleted', resource: good! }]);
    expect(b.config([], '3').policies.size).toBe(0);
  });
});

describe('BackendTrafficPolicy: carried by the Services it targets', () => {
  const ns = { kind: 'Namespace', name: 'shop', labels: {} } as const;
  const svc = snapService('web', { endpoints: [] });
  const { endpoints: _e, ...service } = svc;
  const btp = (name: string, spec: unknown) =>
    api('BackendTrafficPolicy', name, spec, 'traffic.ambit.dev/v1alpha1');

  test('a policy reaches its Service; a bad one is rejected alone; editing and deleting it follow', () => {
    const { b, apply } = builder();
    const [limits] = resources([
      btp('limits', {
        targetRefs: [{ group: '', kind: 'Service', name: 'web' }],
        circuitBreaker: { maxParallelRequests: 10 },
      }),
    ]);
    const [bad] = resources([
      btp('bad', {
        targetRefs: [{ group: '', kind: 'Service', name: 'web' }],
        faultInjection: { abort: { httpStatus: 700 } },
      }),
    ]);
    apply(added([ns, service, limits!, bad!]));
    const first = b.config([], '1');
    expect(first.view.services[0]?.trafficPolicy).toEqual({
      policy: 'shop/limits',
      circuitBreaker: {
        maxConnections: 1024,
        maxPendingRequests: 1024,
        maxParallelRequests: 10,
        maxParallelRetries: 1024,
      },
    });
    expect(first.rejections.map((r) => `${r.kind}/${r.name} ${r.path}`)).toEqual([
      'BackendTrafficPolicy/bad spec.faultInjection.abort.httpStatus',
    ]);
    // Retargeted: the Service it left loses it.
    const [moved] = resources([
      btp('limits', { targetRefs: [{ group: '', kind: 'Service', name: 'other' }], circuitBreaker: {} }),
    ]);
    apply([{ type: 'updated', resource: moved!, previous: limits! }]);
    expect(b.config([], '2').view.services[0]?.trafficPolicy).toBeUndefined();
    apply([{ type: 'updated', resource: limits!, previous: moved! }]);
    expect(b.config([], '3').view.services[0]?.trafficPolicy?.policy).toBe('shop/limits');
    apply([{ type: 'deleted', resource: limits! }]);
    expect(b.config([], '4').view.services[0]?.trafficPolicy).toBeUndefined();
  });
});

describe('the view, entry by entry', () => {
  const ns = { kind: 'Namespace', name: 'shop', labels: {} } as const;
  const web = snapPod('web-0', { ips: ['10.244.1.2'] });
  const svc = snapService('web', { endpoints: [snapEndpoint('web-0', { ports: { '80': 8080 } })] });
  const { endpoints: _e, ...service } = svc;

  test('a pod becomes a workload and its Service endpoint; unchanged entries keep their identity', () => {
    const { b, apply } = builder();
    apply(added([ns, web, service, ...slicesOf(svc)]));
    const first = b.config([], '1');
    expect(first.view.workloads.map((w) => w.name)).toEqual(['web-0']);
    expect(first.view.services[0]?.endpoints).toEqual([
      { workloadUid: 'uid-web-0', ready: true, ports: { '80': 8080 } },
    ]);
    // A namespace label that changes nothing for the Service recomputes the workload, not the Service.
    apply([{ type: 'updated', resource: { ...ns, labels: AMBIENT_NS }, previous: ns }]);
    const second = b.config([], '2');
    expect(second.view.workloads[0]?.captured).toBe(true);
    expect(second.view.workloads[0]).not.toBe(first.view.workloads[0]);
    expect(second.view.services[0]).toBe(first.view.services[0]);
  });

  test('a pod that stops running leaves its Service’s endpoints; one recreated under its name is a new workload', () => {
    const { b, apply } = builder();
    apply(added([ns, web, service, ...slicesOf(svc)]));
    const pending = { ...web, phase: 'Pending' as const };
    apply([{ type: 'updated', resource: pending, previous: web }]);
    expect(b.config([], '2').view.workloads).toEqual([]);
    expect(b.config([], '2').view.services[0]?.endpoints).toEqual([]);
    const again = { ...web, uid: 'uid-new' };
    apply([
      { type: 'deleted', resource: pending },
      { type: 'added', resource: again },
    ]);
    expect(b.config([], '3').view.workloads.map((w) => w.uid)).toEqual(['uid-new']);
    // The slice still names the old uid: the endpoint is not the new pod until the slice says so.
    expect(b.config([], '3').view.services[0]?.endpoints).toEqual([]);
  });

  test('a Service that goes away takes its entry with it; its slices are left for their own deletion', () => {
    const { b, apply } = builder();
    apply(added([ns, web, service, ...slicesOf(svc)]));
    apply([{ type: 'deleted', resource: service }]);
    expect(b.config([], '2').view.services).toEqual([]);
  });
});
