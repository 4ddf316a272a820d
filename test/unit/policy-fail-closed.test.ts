import { describe, expect, test } from 'vitest';
import { parseKubeObject } from '../../src/cluster/kube-objects.js';
import { authorize } from '../../src/mesh/authz.js';
import { authorizeRequest } from '../../src/mesh/authz-l7.js';
import { failClosedNote, failClosedPolicy } from '../../src/policy/fail-closed.js';

const meta = { namespace: 'shop', name: 'p' };

describe('failClosedPolicy: an invalid policy that may deny denies what it could have denied', () => {
  test.each<{
    what: string;
    spec: unknown;
    closed: boolean;
    selector?: Record<string, string>;
    targetRefs?: { kind: string; name: string }[];
  }>([
    { what: 'an invalid ALLOW is only rejected', spec: { action: 'ALLOW', rules: 'x' }, closed: false },
    { what: 'no action is ALLOW', spec: { rules: 'x' }, closed: false },
    { what: 'AUDIT never denies', spec: { action: 'AUDIT' }, closed: false },
    {
      what: 'an invalid DENY with a readable selector covers that selector',
      spec: { action: 'DENY', selector: { matchLabels: { app: 'db' } }, rules: [{ from: 'x' }] },
      closed: true,
      selector: { app: 'db' },
    },
    {
      what: 'an invalid DENY without a selector covers its namespace',
      spec: { action: 'DENY', rules: 7 },
      closed: true,
    },
    {
      what: 'an unreadable selector covers the namespace',
      spec: { action: 'DENY', selector: { matchLabels: { app: ['db'] } } },
      closed: true,
    },
    {
      what: 'a label value that is not a label covers the namespace',
      spec: { action: 'DENY', selector: { matchLabels: { app: 'not a label!' } } },
      closed: true,
    },
    {
      what: 'a selector without matchLabels covers the namespace',
      spec: { action: 'DENY', selector: { app: 'db' } },
      closed: true,
    },
    { what: 'CUSTOM may deny', spec: { action: 'CUSTOM', provider: { name: 'ext' } }, closed: true },
    {
      what: 'a mistyped action may be a DENY',
      spec: { action: 'DENNY', selector: { matchLabels: { app: 'db' } } },
      closed: true,
      selector: { app: 'db' },
    },
    { what: 'an action that is not a string may be a DENY', spec: { action: 1 }, closed: true },
    { what: 'a spec that is not a mapping has no readable action', spec: 'hello', closed: true },
    {
      what: 'an invalid waypoint ALLOW (targetRefs) is only rejected',
      spec: { action: 'ALLOW', targetRefs: [{ kind: 'Service', name: 'web' }], rules: 'x' },
      closed: false,
    },
    {
      what: 'an invalid waypoint DENY keeps its readable targets',
      spec: { action: 'DENY', targetRefs: [{ kind: 'Service', name: 'web' }], rules: [{ to: 'x' }] },
      closed: true,
      targetRefs: [{ kind: 'Service', name: 'web' }],
    },
    {
      what: 'the older single targetRef too',
      spec: {
        action: 'DENY',
        targetRef: { kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'wp' },
        rules: 1,
      },
      closed: true,
      targetRefs: [{ kind: 'Gateway', name: 'wp' }],
    },
    {
      what: 'unreadable targets cover every Service and waypoint of the namespace',
      spec: { action: 'DENY', targetRefs: [{ kind: 'Servce', name: 'web' }] },
      closed: true,
      targetRefs: [
        { kind: 'Service', name: '*' },
        { kind: 'Gateway', name: '*' },
      ],
    },
    {
      what: 'an empty targetRefs too (and it never falls back to an L4 policy)',
      spec: { action: 'DENY', targetRefs: [] },
      closed: true,
      targetRefs: [
        { kind: 'Service', name: '*' },
        { kind: 'Gateway', name: '*' },
      ],
    },
    {
      what: 'a target name that is not a name too',
      spec: { action: 'CUSTOM', targetRefs: [{ kind: 'Service', name: 'Web!' }] },
      closed: true,
      targetRefs: [
        { kind: 'Service', name: '*' },
        { kind: 'Gateway', name: '*' },
      ],
    },
  ])('$what', ({ spec, closed, selector, targetRefs }) => {
    const p = failClosedPolicy(spec, meta, 'why');
    if (!closed) {
      expect(p).toBeUndefined();
      return;
    }
    expect(p).toEqual({
      kind: 'AuthorizationPolicy',
      ...meta,
      ...(selector === undefined ? {} : { selector }),
      ...(targetRefs === undefined ? {} : { targetRefs }),
      action: 'DENY',
      rules: [{}],
      failClosed: 'why',
    });
  });

  test.each([
    [{ namespace: 'shop', selector: { app: 'db' } }, 'the workloads it selects (app=db, in namespace shop)'],
    [{ namespace: 'shop' }, 'every workload in namespace shop'],
    [
      { namespace: 'ambit-system', selector: { app: 'db' } },
      'the workloads it selects (app=db, in every namespace)',
    ],
    [{ namespace: 'ambit-system' }, 'every workload in the mesh'],
  ])('the note names what is denied: %j', (where, scope) => {
    const p = {
      kind: 'AuthorizationPolicy',
      name: 'p',
      action: 'DENY',
      rules: [{}],
      failClosed: 'x',
      ...where,
    } as const;
    expect(failClosedNote(p)).toContain(`deny every connection to ${scope}`);
    expect(failClosedNote(p)).toMatch(/until (shop|ambit-system)\/p is fixed$/);
  });

  test('the stand-in denies everything it selects, and the decision says why', () => {
    const r = parseKubeObject({
      apiVersion: 'security.ambit.dev/v1alpha1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'deny-db', namespace: 'shop' },
      spec: {
        action: 'DENY',
        selector: { matchLabels: { app: 'db' } },
        rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/33'] } }] }],
      },
    });
    const p =
      'resource' in r && r.resource.kind === 'AuthorizationPolicy' ? r.resource.failClosed : undefined;
    expect(p).toBeDefined();
    const conn = (labels: Record<string, string>) => ({
      srcPrincipal: 'cluster.local/ns/shop/sa/client',
      srcIp: '10.244.0.9',
      dstIp: '10.244.0.5',
      dstPort: 8080,
      dst: { namespace: 'shop', labels },
    });
    const d = authorize([p!], conn({ app: 'db' }));
    expect(d.allowed).toBe(false);
    expect(d.reason).toBe(
      'denied: AuthorizationPolicy shop/deny-db failed validation and may be a DENY, so it denies everything it selects until it is fixed (spec.rules[0].from[0].source.ipBlocks[0]: "10.0.0.0/33" is not an IP address or CIDR (203.0.113.4, 10.0.0.0/8, fd00::/64))',
    );
    expect(authorize([p!], conn({ app: 'web' })).allowed).toBe(true);
  });

  test('a waypoint stand-in: waypoints deny every request to its targets, node proxies skip it', () => {
    const r = parseKubeObject({
      apiVersion: 'security.ambit.dev/v1alpha1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'no-post', namespace: 'shop' },
      spec: {
        action: 'DENY',
        targetRefs: [{ kind: 'Service', name: 'web' }],
        rules: [{ to: [{ operation: { methods: ['POST'], paths: ['/a*b*'] } }] }],
      },
    });
    const p =
      'resource' in r && r.resource.kind === 'AuthorizationPolicy' ? r.resource.failClosed : undefined;
    expect(p?.targetRefs).toEqual([{ kind: 'Service', name: 'web' }]);
    expect(failClosedNote(p!)).toBe(
      'fails closed: it is (or may be) a DENY, so waypoints deny every request to Service shop/web until shop/no-post is fixed',
    );
    const req = (service: string) =>
      authorizeRequest(
        [p!],
        { waypoint: { namespace: 'shop', name: 'waypoint' }, service: { namespace: 'shop', name: service } },
        {
          srcPrincipal: 'cluster.local/ns/shop/sa/client',
          srcIp: '10.244.0.9',
          dstIp: '10.96.0.5',
          dstPort: 80,
          method: 'GET',
          path: '/',
          host: 'web',
          header: () => undefined,
        },
      );
    const d = req('web');
    expect(d.allowed).toBe(false);
    expect(d.reason).toMatch(
      /^denied: AuthorizationPolicy shop\/no-post failed validation and may be a DENY, so the waypoint denies every request to what it targets until it is fixed \(spec\.rules\[0\]/,
    );
    expect(req('other').allowed).toBe(true);
    // Node proxies never evaluate it.
    const l4 = authorize([p!], {
      srcPrincipal: 'cluster.local/ns/shop/sa/client',
      srcIp: '10.244.0.9',
      dstIp: '10.244.0.5',
      dstPort: 8080,
      dst: { namespace: 'shop', labels: {} },
    });
    expect(l4.allowed).toBe(true);
  });

  test('unreadable targets: every Service and waypoint of the namespace, and no other', () => {
    const p = failClosedPolicy({ action: 'DENY', targetRefs: 'web' }, meta, 'why')!;
    expect(failClosedNote(p)).toContain('every Service and waypoint in namespace shop');
    const target = (ns: string) => ({
      waypoint: { namespace: ns, name: 'waypoint' },
      service: { namespace: ns, name: 'any' },
    });
    const attrs = {
      srcIp: '10.244.0.9',
      dstIp: '10.96.0.5',
      dstPort: 80,
      method: 'GET',
      path: '/',
      host: 'any',
      header: () => undefined,
    };
    expect(authorizeRequest([p], target('shop'), attrs).allowed).toBe(false);
    expect(authorizeRequest([p], target('other'), attrs).allowed).toBe(true);
  });

  test('a valid policy has no stand-in', () => {
    const r = parseKubeObject({
      apiVersion: 'security.ambit.dev/v1alpha1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'deny-db', namespace: 'shop' },
      spec: { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/8'] } }] }] },
    });
    expect('resource' in r && r.resource).not.toHaveProperty('failClosed');
  });
});
