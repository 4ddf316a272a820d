import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import ts from 'typescript';
import { describe, expect, test, vi } from 'vitest';
import {
  CONTROL_PLANE_CALLS,
  GATEWAY_FINALIZERS_CALL,
  NODE_AGENT_CALLS,
  NODE_AGENT_KINDS,
  NODE_PROXY_CALLS,
} from '../../src/cluster/daemon-calls.js';
import { KubeClusterSource } from '../../src/cluster/source-kube.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { CaRootPublisher } from '../../src/control-plane/ca-root-publisher.js';
import type { MeshStatus } from '../../src/control-plane/status.js';
import { StatusWriter } from '../../src/control-plane/status-writer.js';
import { WaypointApplier } from '../../src/control-plane/waypoint-applier.js';
import { ErrorCode } from '../../src/errors.js';
import type { KubeObject } from '../../src/gateway-api/waypoint-render.js';
import { type PolicyRule, ruleAllows, serviceAccountAllowed } from '../../src/install/rbac.js';
import { CONTROL_PLANE, NODE, renderInstall } from '../../src/install/render.js';
import { parseValues } from '../../src/install/values.js';
import {
  callCovers,
  callRequests,
  type KubeCall,
  KubeCallTable,
  type KubeRequest,
  requestCall,
  showCall,
} from '../../src/kube/api-calls.js';
import { resourceOfKind } from '../../src/kube/api-resources.js';
import { KubeApiError, KubeClient } from '../../src/kube/client.js';
import { KubeTokenReviewer } from '../../src/kube/token-review.js';
import { podLookup } from '../../src/node-agent/redirection/pod-lookup.js';
import { createRootLogger } from '../../src/telemetry/logger.js';

/*
 * Every Kubernetes API call the daemons make is allowed by the RBAC `ambit install` renders for the
 * daemon's ServiceAccount. The calls are recorded from the real code (the watch source, the status
 * writer, the token reviewer) against a scripted client, turned into RBAC attributes as the API
 * server does, and checked with a small RBAC evaluator; each daemon's client refuses a call outside
 * its declared table, so a call added to the code without a line in src/cluster/daemon-calls.ts
 * fails the first test that makes it.
 */

describe('requestCall: RBAC attributes of a request, as the API server derives them', () => {
  test.each([
    [
      'GET',
      '/api/v1/pods?limit=500&fieldSelector=spec.nodeName%3Dn1',
      { verb: 'list', group: '', resource: 'pods' },
    ],
    ['GET', '/api/v1/pods?watch=1&resourceVersion=5', { verb: 'watch', group: '', resource: 'pods' }],
    ['GET', '/api/v1/namespaces?watch=true', { verb: 'watch', group: '', resource: 'namespaces' }],
    ['GET', '/api/v1/namespaces/shop', { verb: 'get', group: '', resource: 'namespaces', name: 'shop' }],
    ['GET', '/api/v1/namespaces/shop/pods', { verb: 'list', group: '', resource: 'pods' }],
    [
      'GET',
      '/api/v1/namespaces/shop/pods/a/log',
      { verb: 'get', group: '', resource: 'pods', subresource: 'log', name: 'a' },
    ],
    [
      'PATCH',
      '/api/v1/namespaces/shop/status',
      { verb: 'patch', group: '', resource: 'namespaces', subresource: 'status', name: 'shop' },
    ],
    [
      'PATCH',
      '/apis/gateway.networking.k8s.io/v1/namespaces/shop/gateways/wp/status',
      {
        verb: 'patch',
        group: 'gateway.networking.k8s.io',
        resource: 'gateways',
        subresource: 'status',
        name: 'wp',
      },
    ],
    [
      'POST',
      '/apis/authentication.k8s.io/v1/tokenreviews',
      { verb: 'create', group: 'authentication.k8s.io', resource: 'tokenreviews' },
    ],
    [
      'PUT',
      '/apis/apps/v1/namespaces/shop/deployments/wp',
      { verb: 'update', group: 'apps', resource: 'deployments', name: 'wp' },
    ],
    [
      'DELETE',
      '/apis/apps/v1/namespaces/shop/deployments/wp',
      { verb: 'delete', group: 'apps', resource: 'deployments', name: 'wp' },
    ],
    [
      'DELETE',
      '/apis/apps/v1/namespaces/shop/deployments',
      { verb: 'deletecollection', group: 'apps', resource: 'deployments' },
    ],
  ])('%s %s', (method, url, call) => {
    expect(requestCall(method, url)).toEqual(call);
  });

  test.each([['/version'], ['/healthz'], ['/apis/apps'], ['/api']])('%s is not a resource request', (url) => {
    expect(requestCall('GET', url)).toBeUndefined();
  });
});

describe('ruleAllows: the RBAC authorizer for one rule', () => {
  const pods: KubeCall = { verb: 'list', group: '', resource: 'pods' };
  const status: KubeCall = {
    verb: 'patch',
    group: 'gateway.networking.k8s.io',
    resource: 'gateways',
    subresource: 'status',
  };
  const cm = (name?: string): KubeRequest => ({
    verb: 'patch',
    group: '',
    resource: 'configmaps',
    ...(name === undefined ? {} : { name }),
  });
  const cmRule: PolicyRule = {
    apiGroups: [''],
    resources: ['configmaps'],
    verbs: ['patch', 'create'],
    resourceNames: ['ambit-ca-root-cert'],
  };
  test.each<[string, PolicyRule, KubeRequest, boolean]>([
    ['the exact rule', { apiGroups: [''], resources: ['pods'], verbs: ['list'] }, pods, true],
    ['another verb', { apiGroups: [''], resources: ['pods'], verbs: ['get'] }, pods, false],
    ['another group', { apiGroups: ['apps'], resources: ['pods'], verbs: ['list'] }, pods, false],
    ['wildcards', { apiGroups: ['*'], resources: ['*'], verbs: ['*'] }, pods, true],
    [
      'a resource without its subresource',
      { apiGroups: ['gateway.networking.k8s.io'], resources: ['gateways'], verbs: ['patch'] },
      status,
      false,
    ],
    [
      'the subresource',
      { apiGroups: ['gateway.networking.k8s.io'], resources: ['gateways/status'], verbs: ['patch'] },
      status,
      true,
    ],
    [
      '*/status',
      { apiGroups: ['gateway.networking.k8s.io'], resources: ['*/status'], verbs: ['patch'] },
      status,
      true,
    ],
    [
      'the subresource for the resource',
      { apiGroups: [''], resources: ['pods/log'], verbs: ['list'] },
      pods,
      false,
    ],
    [
      'resourceNames for a list',
      { apiGroups: [''], resources: ['pods'], verbs: ['list'], resourceNames: ['a'] },
      pods,
      false,
    ],
    ['resourceNames, the named object', cmRule, cm('ambit-ca-root-cert'), true],
    ['resourceNames, another object', cmRule, cm('aws-auth'), false],
    ['resourceNames, a request naming no object (a create)', cmRule, { ...cm(), verb: 'create' }, false],
    ['empty resourceNames: every object', { ...cmRule, resourceNames: [] }, cm('aws-auth'), true],
  ])('%s', (_what, rule, call, allowed) => {
    expect(ruleAllows(rule, call)).toBe(allowed);
  });
});

describe('serviceAccountAllowed: bindings and roles of an install', () => {
  const sa = { namespace: 'ambit-system', name: 'cp' };
  const call: KubeCall = { verb: 'create', group: 'authentication.k8s.io', resource: 'tokenreviews' };
  const binding = (
    kind: string,
    role: string,
    subject = sa,
    roleKind = 'ClusterRole',
    namespace?: string,
  ) => ({
    kind,
    metadata: { name: `b-${role}`, ...(namespace === undefined ? {} : { namespace }) },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: role },
    subjects: [{ kind: 'ServiceAccount', ...subject }],
  });
  const role = (kind: string, name: string, namespace?: string) => ({
    kind,
    metadata: { name, ...(namespace === undefined ? {} : { namespace }) },
    rules: [{ apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] }],
  });
  test.each<[string, Parameters<typeof serviceAccountAllowed>[0], string | undefined, boolean]>([
    [
      'a built-in ClusterRole (system:auth-delegator)',
      [binding('ClusterRoleBinding', 'system:auth-delegator')],
      undefined,
      true,
    ],
    [
      'a rendered ClusterRole',
      [role('ClusterRole', 'r'), binding('ClusterRoleBinding', 'r')],
      undefined,
      true,
    ],
    [
      'a binding of another ServiceAccount',
      [binding('ClusterRoleBinding', 'system:auth-delegator', { namespace: 'ambit-system', name: 'node' })],
      undefined,
      false,
    ],
    [
      'the same name in another namespace',
      [binding('ClusterRoleBinding', 'system:auth-delegator', { namespace: 'other', name: 'cp' })],
      undefined,
      false,
    ],
    ['an unbound role', [role('ClusterRole', 'r')], undefined, false],
    [
      'a RoleBinding, asked cluster-wide',
      [role('Role', 'r', 'x'), binding('RoleBinding', 'r', sa, 'Role', 'x')],
      undefined,
      false,
    ],
    [
      'a RoleBinding, in its namespace',
      [role('Role', 'r', 'x'), binding('RoleBinding', 'r', sa, 'Role', 'x')],
      'x',
      true,
    ],
    [
      'a RoleBinding to a Role of another namespace',
      [role('Role', 'r', 'y'), binding('RoleBinding', 'r', sa, 'Role', 'x')],
      'x',
      false,
    ],
  ])('%s', (_what, objects, namespace, allowed) => {
    expect(serviceAccountAllowed(objects, sa, call, namespace)).toBe(allowed);
  });
});

/** A client that answers as an empty API server and records every request it is asked to make. */
function recordingClient(
  table: KubeCallTable,
  /** What a list of this collection path answers (an empty list otherwise). */
  lists: Readonly<Record<string, readonly unknown[]>> = {},
) {
  const seen: { method: string; url: string; body?: unknown }[] = [];
  const check = (method: string, url: string, body?: unknown) => {
    table.check(method, url);
    seen.push({ method, url, ...(body === undefined ? {} : { body }) });
  };
  return {
    seen,
    client: {
      target: { server: 'https://api.test' },
      json: async (method: string, url: string, body?: unknown): Promise<unknown> => {
        check(method, url, body);
        // A GET of one object: none exists (the API server's 404).
        if (method === 'GET' && requestCall(method, url)?.name !== undefined)
          throw new KubeApiError(404, 'NotFound', `${url} not found`);
        if (method === 'GET')
          return {
            kind: 'List',
            metadata: { resourceVersion: '1' },
            items: lists[url.split('?')[0] ?? ''] ?? [],
          };
        if (method === 'PATCH') return body;
        if (url.endsWith('/tokenreviews')) return { ...(body as object), status: { authenticated: false } };
        return {};
      },
      stream: async (url: string, signal: AbortSignal) => {
        check('GET', url);
        const res = new PassThrough();
        signal.addEventListener('abort', () => res.end(), { once: true });
        return res as never;
      },
    },
  };
}

const unique = (calls: readonly KubeCall[]): string[] => [...new Set(calls.map(showCall))].sort();

async function watchAll(table: KubeCallTable, kinds: typeof NODE_AGENT_KINDS | undefined, node?: string) {
  const r = recordingClient(table);
  const ac = new AbortController();
  const source = new KubeClusterSource(r.client, {
    ...(kinds === undefined ? {} : { kinds }),
    ...(node === undefined ? {} : { node }),
  });
  const errors: string[] = [];
  source.watch(
    { onEvents: () => undefined, onSynced: () => undefined, onError: (m) => errors.push(m) },
    ac.signal,
  );
  const expected = kinds?.length ?? 13;
  // Every kind lists, then watches: done when each has opened its watch.
  await vi.waitFor(() => expect(r.seen.filter((s) => s.url.includes('watch=')).length).toBe(expected));
  ac.abort();
  expect(errors).toEqual([]);
  return r.seen;
}

async function controlPlaneRecorded(): Promise<{ method: string; url: string }[]> {
  const seen = await watchAll(CONTROL_PLANE_CALLS, undefined);
  const r = recordingClient(CONTROL_PLANE_CALLS);
  await new KubeTokenReviewer(r.client).review('token', ['ambit-ca']);
  const writer = new StatusWriter(
    r.client,
    createRootLogger({ name: 'test', level: 'fatal' }),
    () => 'now',
    0,
  );
  const status = {
    gateways: [{ namespace: 'shop', name: 'wp', status: { conditions: [], addresses: [], listeners: [] } }],
    routes: [
      { kind: 'HTTPRoute', namespace: 'shop', name: 'r1', status: { parents: [] } },
      { kind: 'GRPCRoute', namespace: 'shop', name: 'r2', status: { parents: [] } },
    ],
  } as unknown as MeshStatus;
  writer.offer(status);
  await vi.waitFor(() => expect(r.seen.filter((s) => s.method === 'PATCH').length).toBe(3));
  writer.close();
  return [...seen, ...r.seen, ...(await waypointsRecorded()), ...(await caRootsRecorded())];
}

const quiet = createRootLogger({ name: 'test', level: 'fatal' });

/** An object of a waypoint whose Gateway is gone. */
const orphan = (apiVersion: string, kind: string) => ({
  apiVersion,
  kind,
  metadata: {
    name: 'old',
    namespace: 'shop',
    uid: `${kind}-uid`,
    resourceVersion: '1',
    ownerReferences: [
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        name: 'old',
        uid: 'gone',
        controller: true,
      },
    ],
  },
});

/**
 * The waypoint controller against an API with one waypoint Gateway (its objects are applied) and
 * objects of each kind owned by a Gateway that is gone (they are deleted).
 */
async function waypointsRecorded(): Promise<{ method: string; url: string; body?: unknown }[]> {
  const r = recordingClient(CONTROL_PLANE_CALLS, {
    '/apis/gateway.networking.k8s.io/v1/gateways': [
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { name: 'wp', namespace: 'shop', uid: 'gw-uid', resourceVersion: '1' },
        spec: {
          gatewayClassName: 'ambit-waypoint',
          listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
        },
      },
    ],
    '/apis/apps/v1/deployments': [orphan('apps/v1', 'Deployment')],
    '/api/v1/serviceaccounts': [orphan('v1', 'ServiceAccount')],
    '/api/v1/services': [orphan('v1', 'Service')],
  });
  const ac = new AbortController();
  new WaypointApplier(
    r.client,
    { image: 'ambit:test', version: 'test', trustDomain: 'cluster.local', controlPlane: 'cp:15012' },
    quiet,
    0,
  ).run(ac.signal);
  // Its ServiceAccount, Deployment and Service applied; the orphans deleted.
  await vi.waitFor(() => {
    expect(r.seen.filter((s) => s.method === 'PATCH').length).toBe(3);
    expect(r.seen.filter((s) => s.method === 'DELETE').length).toBe(3);
  });
  ac.abort();
  return r.seen;
}

/** The CA root publisher against an API with two namespaces: one ConfigMap applied in each. */
async function caRootsRecorded(): Promise<{ method: string; url: string }[]> {
  const r = recordingClient(CONTROL_PLANE_CALLS, {
    '/api/v1/namespaces': [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ambit-system' } },
    ],
  });
  const ac = new AbortController();
  const p = new CaRootPublisher(r.client, quiet, 0);
  p.offer(['-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n']);
  p.run(ac.signal);
  await vi.waitFor(() => expect(r.seen.filter((s) => s.method === 'PATCH').length).toBe(2));
  ac.abort();
  expect(
    r.seen
      .filter((s) => s.url.startsWith('/api/v1/configmaps'))
      .every((s) => s.url.includes('fieldSelector=metadata.name%3Dambit-ca-root-cert')),
  ).toBe(true);
  return r.seen;
}

/**
 * The node agent's CNI path (src/node-agent/redirection/pod-lookup.ts), wired as its main.ts wires it,
 * for a pod and a namespace its watch has not delivered: one GET of each, answered 404.
 */
async function podLookupRecorded(): Promise<{ method: string; url: string }[]> {
  const r = recordingClient(NODE_AGENT_CALLS);
  const get = (path: string): Promise<unknown> =>
    r.client
      .json('GET', path)
      .catch((err: unknown) =>
        err instanceof KubeApiError && err.status === 404 ? undefined : Promise.reject(err),
      );
  const lookup = podLookup(new ClusterStore(), get, quiet, 0);
  expect(await lookup.pod('shop', 'a-1', 'uid-1')).toBeUndefined();
  expect(await lookup.namespaceLabels('shop')).toBeUndefined();
  return r.seen;
}

async function nodeAgentRecorded(): Promise<{ method: string; url: string }[]> {
  return [...(await watchAll(NODE_AGENT_CALLS, NODE_AGENT_KINDS, 'node-a')), ...(await podLookupRecorded())];
}

/** The declared calls that no recorded request is covered by. */
const unmade = (table: KubeCallTable, recorded: readonly { method: string; url: string }[]): string[] => {
  const requests = recorded.map((s) => requestCall(s.method, s.url) as KubeRequest);
  return table.calls
    .filter((d) => !requests.some((r) => callCovers(d, r)))
    .map(showCall)
    .sort();
};

describe('the API calls the daemons make', () => {
  test("the node agent's, recorded from its watch source and its CNI pod lookup: its node's pods and the namespaces, nothing else", async () => {
    const seen = await nodeAgentRecorded();
    const calls = seen.map((s) => requestCall(s.method, s.url) as KubeCall);
    expect(unique(calls)).toEqual([
      'get core/namespaces',
      'get core/pods',
      'list core/namespaces',
      'list core/pods',
      'watch core/namespaces',
      'watch core/pods',
    ]);
    expect(
      seen
        .filter((s) => s.url.startsWith('/api/v1/pods'))
        .every((s) => s.url.includes('fieldSelector=spec.nodeName%3Dnode-a')),
    ).toBe(true);
    expect(seen.filter((s) => s.method === 'GET' && !s.url.includes('?')).map((s) => s.url)).toEqual([
      '/api/v1/namespaces/shop/pods/a-1',
      '/api/v1/namespaces/shop',
    ]);
  });

  test('every declared node-agent call is made by the code', async () => {
    expect(unmade(NODE_AGENT_CALLS, await nodeAgentRecorded())).toEqual([]);
  });

  test("the control plane's, recorded from its watch source, status writer, token reviewer, waypoint controller and CA root publisher", async () => {
    const calls = (await controlPlaneRecorded()).map((s) => requestCall(s.method, s.url) as KubeCall);
    expect(unique(calls)).toEqual(
      [
        'create authentication.k8s.io/tokenreviews',
        'delete apps/deployments',
        'delete core/serviceaccounts',
        'delete core/services',
        'list apps/deployments',
        'list core/configmaps',
        'patch apps/deployments',
        'patch core/configmaps',
        'patch core/serviceaccounts',
        'patch core/services',
        'watch apps/deployments',
        'watch core/configmaps',
        'list discovery.k8s.io/endpointslices',
        'list core/namespaces',
        'list core/nodes',
        'list core/pods',
        'list core/serviceaccounts',
        'list core/services',
        'list gateway.networking.k8s.io/gateways',
        'list gateway.networking.k8s.io/grpcroutes',
        'list gateway.networking.k8s.io/httproutes',
        'list security.ambit.dev/authorizationpolicies',
        'list security.ambit.dev/peerauthentications',
        'list security.ambit.dev/requestauthentications',
        'list traffic.ambit.dev/backendtrafficpolicies',
        'patch gateway.networking.k8s.io/gateways/status',
        'patch gateway.networking.k8s.io/grpcroutes/status',
        'patch gateway.networking.k8s.io/httproutes/status',
        'watch discovery.k8s.io/endpointslices',
        'watch core/namespaces',
        'watch core/nodes',
        'watch core/pods',
        'watch core/serviceaccounts',
        'watch core/services',
        'watch gateway.networking.k8s.io/gateways',
        'watch gateway.networking.k8s.io/grpcroutes',
        'watch gateway.networking.k8s.io/httproutes',
        'watch security.ambit.dev/authorizationpolicies',
        'watch security.ambit.dev/peerauthentications',
        'watch security.ambit.dev/requestauthentications',
        'watch traffic.ambit.dev/backendtrafficpolicies',
      ].sort(),
    );
  });

  test('every declared control-plane call is made by the code, but the ones the API server asks for another reason', async () => {
    // A server-side apply is a PATCH; where the object is missing the API server also asks for
    // `create`. The OwnerReferencesPermissionEnforcement admission plugin asks for `update` of the
    // Gateway's finalizers when a waypoint object sets blockOwnerDeletion.
    expect(unmade(CONTROL_PLANE_CALLS, await controlPlaneRecorded())).toEqual([
      'create apps/deployments',
      'create core/configmaps',
      'create core/serviceaccounts',
      'create core/services',
      'update gateway.networking.k8s.io/gateways/finalizers',
    ]);
  });

  test('the CA root ConfigMaps are patched by name, so the guard refuses a patch of any other ConfigMap', async () => {
    const patched = (await caRootsRecorded()).filter((s) => s.method === 'PATCH').map((s) => s.url);
    expect(patched.map((u) => requestCall('PATCH', u)?.name)).toEqual([
      'ambit-ca-root-cert',
      'ambit-ca-root-cert',
    ]);
    expect(() =>
      CONTROL_PLANE_CALLS.check('PATCH', '/api/v1/namespaces/kube-system/configmaps/aws-auth'),
    ).toThrow(
      /patch core\/configmaps is not among the control plane's declared API calls for the object aws-auth/,
    );
    expect(() =>
      CONTROL_PLANE_CALLS.check('PATCH', '/api/v1/namespaces/shop/configmaps/ambit-ca-root-cert'),
    ).not.toThrow();
  });

  test('the node proxy and the waypoint make none: no module they import, directly or through shared code, is the Kubernetes client', () => {
    expect(NODE_PROXY_CALLS.calls).toEqual([]);
    const client = 'src/kube/client.ts';
    // The walk finds the client where it is used (the node agent builds one), so it can fail.
    expect(importPath(tsFiles('src/node-agent'), client)).not.toBeUndefined();
    for (const dir of ['src/node-proxy', 'src/l7-waypoint'])
      expect(importPath(tsFiles(dir), client), dir).toBeUndefined();
  });

  test("a daemon's client refuses a call that is not in its table, before sending it", async () => {
    const client = new KubeClient(
      { server: 'https://127.0.0.1:1', origin: 'test', insecureSkipTlsVerify: false },
      NODE_AGENT_CALLS,
    );
    await expect(client.json('GET', '/api/v1/services?limit=500')).rejects.toMatchObject({
      code: ErrorCode.KUBE_API,
      message: expect.stringContaining("list core/services is not among the node agent's declared API calls"),
    });
  });
});

describe.each([
  ['default', []],
  ['another namespace', ['namespace=mesh']],
])('the rendered RBAC (%s) allows every call of each daemon, and no more', (_n, sets) => {
  const values = parseValues(sets);
  const objects = renderInstall(values) as unknown as (KubeObject & { metadata: { name: string } })[];
  const daemons = [
    ['control plane', CONTROL_PLANE, CONTROL_PLANE_CALLS],
    ['node agent (the node pod)', NODE, NODE_AGENT_CALLS],
  ] as const;

  test.each(daemons)('%s: every declared call', (_d, sa, table) => {
    const refused = table.calls
      .flatMap(callRequests)
      .filter((c) => !serviceAccountAllowed(objects, { namespace: values.namespace, name: sa }, c));
    expect(refused.map(showCall)).toEqual([]);
  });

  test('every call recorded from the node agent code', async () => {
    const refused = (await nodeAgentRecorded())
      .map((s) => requestCall(s.method, s.url) as KubeRequest)
      .filter((c) => !serviceAccountAllowed(objects, { namespace: values.namespace, name: NODE }, c));
    expect(refused.map(showCall)).toEqual([]);
  });

  test('the control plane may patch the CA root ConfigMaps only, not another ConfigMap (kube-system/aws-auth)', () => {
    const cp = { namespace: values.namespace, name: CONTROL_PLANE };
    const patch = (ns: string, name: string) =>
      requestCall('PATCH', `/api/v1/namespaces/${ns}/configmaps/${name}`) as KubeRequest;
    expect(serviceAccountAllowed(objects, cp, patch('shop', 'ambit-ca-root-cert'))).toBe(true);
    expect(serviceAccountAllowed(objects, cp, patch('kube-system', 'aws-auth'))).toBe(false);
  });

  test("every ownerReference with blockOwnerDeletion the waypoint controller applies: the control plane may update its owner's finalizers (OwnerReferencesPermissionEnforcement)", async () => {
    const applied = (await waypointsRecorded()).filter((s) => s.method === 'PATCH');
    const asked = applied.flatMap((s) => {
      const refs = ((s.body as KubeObject).metadata.ownerReferences ?? []) as {
        apiVersion: string;
        kind: string;
        name: string;
        blockOwnerDeletion?: boolean;
      }[];
      return refs
        .filter((o) => o.blockOwnerDeletion === true)
        .map((o): KubeRequest => {
          const r = resourceOfKind(o.kind as 'Gateway');
          expect(r?.group, o.apiVersion).toBe(o.apiVersion.split('/')[0]);
          return {
            verb: 'update',
            group: r?.group ?? '?',
            resource: r?.plural ?? '?',
            subresource: 'finalizers',
            name: o.name,
          };
        });
    });
    expect(asked).toHaveLength(3);
    expect(asked.every((c) => callCovers(GATEWAY_FINALIZERS_CALL, c))).toBe(true);
    const refused = asked.filter(
      (c) => !serviceAccountAllowed(objects, { namespace: values.namespace, name: CONTROL_PLANE }, c),
    );
    expect(refused.map(showCall)).toEqual([]);
  });

  test('every call recorded from the control plane code', async () => {
    const refused = (await controlPlaneRecorded())
      .map((s) => requestCall(s.method, s.url) as KubeCall)
      .filter(
        (c) => !serviceAccountAllowed(objects, { namespace: values.namespace, name: CONTROL_PLANE }, c),
      );
    expect(refused.map(showCall)).toEqual([]);
  });

  test("each ClusterRole grants only calls of its daemon's table", () => {
    const grantedButUndeclared: string[] = [];
    for (const [, sa, table] of daemons) {
      const role = objects.find((o) => o.kind === 'ClusterRole' && o.metadata.name === sa) as unknown as {
        rules: PolicyRule[];
      };
      for (const r of role.rules)
        for (const g of r.apiGroups)
          for (const res of r.resources)
            for (const verb of r.verbs) {
              const [resource = '', subresource] = res.split('/');
              const call: KubeCall = {
                verb,
                group: g,
                resource,
                ...(subresource === undefined ? {} : { subresource }),
                ...(r.resourceNames === undefined || r.resourceNames.length === 0
                  ? {}
                  : { resourceNames: r.resourceNames }),
              };
              if (!table.declares(call)) grantedButUndeclared.push(`${sa}: ${showCall(call)}`);
            }
    }
    expect(grantedButUndeclared).toEqual([]);
  });

  test('the node ServiceAccount cannot review tokens or write anything', () => {
    const node = { namespace: values.namespace, name: NODE };
    expect(
      serviceAccountAllowed(objects, node, {
        verb: 'create',
        group: 'authentication.k8s.io',
        resource: 'tokenreviews',
      }),
    ).toBe(false);
    expect(serviceAccountAllowed(objects, node, { verb: 'patch', group: '', resource: 'pods' })).toBe(false);
  });
});

/** Every .ts file under a folder, its subfolders included. */
const tsFiles = (dir: string): string[] =>
  readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));

/**
 * Whether `target` is reached from `roots` through relative imports (static, dynamic, re-exports and
 * type-only, as TypeScript's own pre-processor lists them), and by which chain; undefined when not.
 */
function importPath(roots: readonly string[], target: string): string[] | undefined {
  const from = new Map<string, string | undefined>(roots.map((r) => [r, undefined]));
  const todo = [...roots];
  for (let f = todo.pop(); f !== undefined; f = todo.pop()) {
    if (f === target) {
      const chain: string[] = [];
      for (let c: string | undefined = f; c !== undefined; c = from.get(c)) chain.unshift(c);
      return chain;
    }
    for (const i of ts.preProcessFile(readFileSync(f, 'utf8'), true, true).importedFiles) {
      if (!i.fileName.startsWith('.')) continue;
      const next = join(dirname(f), i.fileName.replace(/\.js$/, '.ts'));
      expect(existsSync(next), `${f} imports ${i.fileName}`).toBe(true);
      if (!from.has(next)) {
        from.set(next, f);
        todo.push(next);
      }
    }
  }
  return undefined;
}

test('KubeCallTable.check lets a declared call through and names an undeclared one', () => {
  const t = new KubeCallTable('test daemon', [{ verb: 'list', group: '', resource: 'pods' }]);
  expect(() => t.check('GET', '/api/v1/pods?limit=1')).not.toThrow();
  expect(() => t.check('GET', '/version')).not.toThrow();
  expect(() => t.check('DELETE', '/api/v1/namespaces/a/pods/b')).toThrow(
    /delete core\/pods is not among the test daemon's declared API calls/,
  );
});

test('KubeCallTable: a call narrowed to names allows requests for those objects only', () => {
  const t = new KubeCallTable('test daemon', [
    { verb: 'patch', group: '', resource: 'configmaps', resourceNames: ['a'] },
    { verb: 'create', group: '', resource: 'configmaps' },
  ]);
  expect(() => t.check('PATCH', '/api/v1/namespaces/x/configmaps/a?fieldManager=m')).not.toThrow();
  expect(() => t.check('PATCH', '/api/v1/namespaces/x/configmaps/b')).toThrow(/for the object b/);
  expect(() => t.check('POST', '/api/v1/namespaces/x/configmaps')).not.toThrow();
  expect(t.declares({ verb: 'patch', group: '', resource: 'configmaps', resourceNames: ['a'] })).toBe(true);
  expect(t.declares({ verb: 'patch', group: '', resource: 'configmaps' })).toBe(false);
  expect(t.declares({ verb: 'patch', group: '', resource: 'configmaps', resourceNames: ['a', 'b'] })).toBe(
    false,
  );
  expect(callRequests(t.calls[0] as KubeCall)).toEqual([
    { verb: 'patch', group: '', resource: 'configmaps', name: 'a' },
  ]);
});
