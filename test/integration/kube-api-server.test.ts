import { createServer, type Server } from 'node:https';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { KubeClusterSource } from '../../src/cluster/source-kube.js';
import { createServingCredentials } from '../../src/identity/x509.js';
import { KubeApiError, KubeClient } from '../../src/kube/client.js';
import type { Json } from '../../src/local/kube-api/selectors.js';
import { createApiHandler } from '../../src/local/kube-api/server.js';
import { ApiStore } from '../../src/local/kube-api/store.js';
import { createRootLogger } from '../../src/telemetry/logger.js';

/*
 * Local mode's Kubernetes API server (the handler, over real HTTPS) read by the same client the daemons
 * use on a real cluster: lists in pages, watches that resume from a resourceVersion, 410 for one older
 * than the history, Status errors, and tokens.
 */

const store = new ApiStore(64);
let server: Server;
let caPem = '';
let port = 0;

const pod = (name: string, node: string, ready = true): Json => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'shop', uid: `uid-${name}` },
  spec: { nodeName: node, serviceAccountName: 'default' },
  status: {
    phase: 'Running',
    podIPs: [{ ip: '10.244.1.2' }],
    conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
  },
});

beforeAll(async () => {
  const creds = await createServingCredentials({
    org: 'api-test',
    dns: ['localhost'],
    ips: ['127.0.0.1'],
    days: 1,
  });
  caPem = creds.caPem;
  server = createServer(
    { key: creds.keyPem, cert: creds.certPem },
    createApiHandler({
      store,
      authenticate: (t) =>
        t === 'good'
          ? { user: 'test', groups: [], canWrite: false }
          : t === 'controller'
            ? { user: 'control-plane', groups: [], canWrite: false, canWriteStatus: true }
            : undefined,
      log: createRootLogger({ name: 'api-test', level: 'fatal' }),
      bookmarkMs: 50,
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const client = (token = 'good'): KubeClient =>
  new KubeClient({
    server: `https://127.0.0.1:${port}`,
    origin: 'test',
    caData: Buffer.from(caPem),
    token,
    insecureSkipTlsVerify: false,
  });

describe("local mode's API server, read by the daemons' client", () => {
  test('lists come in pages that add up to the whole; a bad token is 401 as a Status', async () => {
    store.replaceAll(Array.from({ length: 7 }, (_, i) => pod(`p${i}`, 'node-1')));
    const c = client();
    const names: string[] = [];
    let cont: string | undefined;
    let pages = 0;
    do {
      const page = (await c.json(
        'GET',
        `/api/v1/namespaces/shop/pods?limit=3${cont === undefined ? '' : `&continue=${cont}`}`,
      )) as {
        items: Json[];
        metadata: { continue?: string; remainingItemCount?: number };
      };
      names.push(...page.items.map((p) => String((p.metadata as Json).name)));
      cont = page.metadata.continue;
      pages++;
    } while (cont !== undefined);
    expect(pages).toBe(3);
    expect(names).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
    const refused = await client('bad')
      .json('GET', '/api/v1/pods')
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(KubeApiError);
    expect((refused as KubeApiError).status).toBe(401);
    const missing = await c.json('GET', '/api/v1/namespaces/shop/pods/nope').catch((e: unknown) => e);
    expect((missing as KubeApiError).message).toContain('404 NotFound: pods "nope" not found');
  });

  test('a node agent’s source: its pods only, then every change, including one made while it was away', async () => {
    store.replaceAll([pod('a', 'node-1'), pod('b', 'node-2')]);
    const events: string[] = [];
    const ac = new AbortController();
    new KubeClusterSource(
      client(),
      { kinds: ['Pod'], node: 'node-1' },
      { reflector: { sleep: async () => undefined } },
    ).watch(
      {
        onEvents: (es) =>
          events.push(...es.map((e) => `${e.type} ${'name' in e.resource ? e.resource.name : ''}`)),
        onSynced: () => undefined,
      },
      ac.signal,
    );
    try {
      await vi.waitFor(() => expect(events).toEqual(['added a']));
      store.replaceAll([pod('a', 'node-1', false), pod('b', 'node-2'), pod('c', 'node-1')]);
      await vi.waitFor(() => expect(events).toEqual(['added a', 'updated a', 'added c']));
      // Every open watch is cut (a restarted API server); changes made meanwhile arrive on the resumed watch.
      server.closeAllConnections();
      store.replaceAll([pod('c', 'node-1'), pod('b', 'node-1')]);
      await vi.waitFor(() => expect(events.slice(3).sort()).toEqual(['added b', 'deleted a']));
    } finally {
      ac.abort();
    }
  });

  test('a watch from before the history kept gets 410 in the stream; without a resourceVersion it starts with ADDED for what exists', async () => {
    store.replaceAll([pod('x', 'node-1')]);
    for (let i = 0; i < 100; i++) store.replaceAll([pod('x', `node-${i % 3}`)]);
    const c = client();
    const res = await c.stream(
      '/api/v1/namespaces/shop/pods?watch=1&resourceVersion=2',
      new AbortController().signal,
    );
    let body = '';
    for await (const chunk of res) body += String(chunk);
    const gone = JSON.parse(body.trim()) as { type: string; object: { code: number; reason: string } };
    expect(gone).toMatchObject({ type: 'ERROR', object: { code: 410, reason: 'Expired' } });
    const ac = new AbortController();
    const live = await c.stream('/api/v1/namespaces/shop/pods?watch=1&allowWatchBookmarks=true', ac.signal);
    let text = '';
    live.on('data', (d: Buffer) => {
      text += d.toString();
    });
    await vi.waitFor(() => expect(text).toContain('"type":"BOOKMARK"'));
    ac.abort();
    expect(JSON.parse(text.split('\n')[0]!)).toMatchObject({
      type: 'ADDED',
      object: { metadata: { name: 'x' } },
    });
  });

  test('a list that changes between its pages answers 410, so the client lists again instead of mixing two states', async () => {
    store.replaceAll(Array.from({ length: 4 }, (_, i) => pod(`q${i}`, 'node-1')));
    const c = client();
    const first = (await c.json('GET', '/api/v1/namespaces/shop/pods?limit=2')) as {
      metadata: { continue: string };
    };
    store.replaceAll([pod('q0', 'node-1'), pod('q1', 'node-1'), pod('q2', 'node-2'), pod('q3', 'node-1')]);
    const second = await c
      .json('GET', `/api/v1/namespaces/shop/pods?limit=2&continue=${first.metadata.continue}`)
      .catch((e: unknown) => e);
    expect((second as KubeApiError).status).toBe(410);
  });

  test('a watcher that stops reading: the watch ends at its timeout, later changes write nothing to it, and the server keeps serving', async () => {
    store.replaceAll([pod('slow', 'node-1')]);
    const c = client();
    const ac = new AbortController();
    const res = await c.stream('/api/v1/namespaces/shop/pods?watch=1&timeoutSeconds=1', ac.signal);
    res.pause();
    await new Promise((r) => setTimeout(r, 1300));
    for (let i = 0; i < 5; i++) store.replaceAll([pod('slow', `node-${i}`)]);
    const list = (await c.json('GET', '/api/v1/namespaces/shop/pods')) as { items: unknown[] };
    expect(list.items).toHaveLength(1);
    ac.abort();
  });

  test('the status subresource: the controller writes it, a reader may not, and watchers see it', async () => {
    store.replaceAll([
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { name: 'waypoint', namespace: 'shop' },
        spec: {
          gatewayClassName: 'ambit-waypoint',
          listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
        },
      },
    ]);
    const path = '/apis/gateway.networking.k8s.io/v1/namespaces/shop/gateways/waypoint';
    const patch = {
      status: { conditions: [{ type: 'Programmed', status: 'True', reason: 'Programmed', message: '' }] },
    };
    const refused = await client()
      .json('PATCH', `${path}/status`, patch, undefined, 'application/merge-patch+json')
      .catch((e: unknown) => e);
    expect((refused as KubeApiError).status).toBe(403);
    const ac = new AbortController();
    const w = await client().stream(`${path.replace('/waypoint', '')}?watch=1`, ac.signal);
    let events = '';
    w.on('data', (d: Buffer) => {
      events += d.toString();
    });
    await client('controller').json(
      'PATCH',
      `${path}/status`,
      patch,
      undefined,
      'application/merge-patch+json',
    );
    const got = (await client().json('GET', path)) as {
      status?: { conditions?: { type: string; status: string }[] };
    };
    expect(got.status?.conditions?.[0]).toMatchObject({ type: 'Programmed', status: 'True' });
    await vi.waitFor(() => expect(events).toContain('"type":"MODIFIED"'));
    ac.abort();
    // The spec side changes (a manifest edit): the status stays over it.
    store.replaceAll([
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { name: 'waypoint', namespace: 'shop', labels: { edited: 'yes' } },
        spec: {
          gatewayClassName: 'ambit-waypoint',
          listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
        },
      },
    ]);
    const after = (await client().json('GET', path)) as { status?: unknown; metadata: { labels?: unknown } };
    expect(after.metadata.labels).toEqual({ edited: 'yes' });
    expect(after.status).toMatchObject({ conditions: [{ type: 'Programmed' }] });
  });
});
