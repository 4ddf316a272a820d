import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import type { ClusterEvent } from '../../src/cluster/source.js';
import { KubeClusterSource } from '../../src/cluster/source-kube.js';
import { createServingCredentials } from '../../src/identity/x509.js';
import { resourceOfKind } from '../../src/kube/api-resources.js';
import { KubeClient } from '../../src/kube/client.js';
import { type KubeObject, Reflector, WATCH_BACKOFF, type WatchEventType } from '../../src/kube/reflector.js';

/*
 * The watch client against a loopback HTTPS server that answers as a Kubernetes API server does
 * (real-shaped lists, watch streams, Status errors), one scripted answer per request, so that every
 * failure a real API server or network produces can be played: split lines, clean closes, 410 Gone in
 * the stream, resets, 500s, rotated tokens, missing RBAC.
 */

type Responder = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let port = 0;
let caPem = '';
const dir = mkdtempSync(join(tmpdir(), 'ambit-kube-watch-'));
const tokenFile = join(dir, 'token');
let script: Responder[] = [];
/** When set, answers every request instead of the script. */
let router: Responder | undefined;
const seen: { url: string; auth: string }[] = [];

beforeAll(async () => {
  const creds = await createServingCredentials({
    org: 'kube-watch-test',
    dns: ['localhost'],
    ips: ['127.0.0.1'],
    days: 1,
  });
  caPem = creds.caPem;
  server = createServer({ key: creds.keyPem, cert: creds.certPem }, (req, res) => {
    seen.push({ url: req.url ?? '', auth: req.headers.authorization ?? '' });
    if (router !== undefined) {
      router(req, res);
      return;
    }
    const next = script.shift();
    if (next === undefined) {
      // Out of script: a watch that stays open and quiet until the test ends.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      return;
    }
    next(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

function client(): KubeClient {
  return new KubeClient({
    server: `https://127.0.0.1:${port}`,
    origin: 'test',
    caData: Buffer.from(caPem),
    tokenFile,
    insecureSkipTlsVerify: false,
  });
}

function pod(name: string, rv: string, uid = `uid-${name}`, node = 'node-1'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', uid, resourceVersion: rv },
    spec: { nodeName: node, serviceAccountName: 'default' },
    status: {
      phase: 'Running',
      podIPs: [{ ip: '10.244.1.2' }],
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

const list =
  (items: KubeObject[], rv: string): Responder =>
  (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: rv }, items }));
  };
const line = (type: string, object: unknown): string => `${JSON.stringify({ type, object })}\n`;
const watch =
  (chunks: string[], end: boolean): Responder =>
  (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
    let i = 0;
    const step = (): void => {
      if (i < chunks.length) {
        res.write(chunks[i++]);
        setTimeout(step, 10);
      } else if (end) res.end();
    };
    step();
  };
const status =
  (code: number, reason: string, message: string): Responder =>
  (_req, res) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code }));
  };
const gone = (rv: string) =>
  line('ERROR', {
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    reason: 'Expired',
    code: 410,
    message: `too old resource version: ${rv}`,
  });

function start(opts: { sleep?: (ms: number) => Promise<void> } = {}) {
  const got: string[] = [];
  const errors: string[] = [];
  const delays: number[] = [];
  const ac = new AbortController();
  const r = new Reflector(
    {
      client: client(),
      resource: resourceOfKind('Pod')!,
      fieldSelector: 'spec.nodeName=node-1',
      watchTimeoutSeconds: 60,
      sleep: async (ms) => {
        delays.push(ms);
        await (opts.sleep ?? (() => Promise.resolve()))(ms);
      },
      random: () => 0.5,
    },
    {
      replace: (items) => got.push(`replace ${items.map((i) => i.metadata?.name).join(',')}`),
      apply: (type: WatchEventType, o) =>
        got.push(`${type} ${o.metadata?.name}@${o.metadata?.resourceVersion}`),
      error: (m) => errors.push(m),
    },
  );
  void r.run(ac.signal);
  return { r, got, errors, delays, stop: () => ac.abort() };
}

function reset(): void {
  router = undefined;
  script = [];
  seen.length = 0;
  writeFileSync(tokenFile, 'token-one\n');
}

describe('the watch client against a scripted API server', () => {
  test('a line split across chunks is read whole; a clean close resumes from the last resourceVersion, with no duplicates', async () => {
    reset();
    const b = line('ADDED', pod('b', '11'));
    script = [
      list([pod('a', '5')], '10'),
      watch(
        [
          b.slice(0, 17),
          b.slice(17),
          line('BOOKMARK', { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: '15' } }),
        ],
        true,
      ),
      watch([line('MODIFIED', pod('b', '16'))], false),
    ];
    const w = start();
    try {
      await vi.waitFor(() => expect(w.got).toEqual(['replace a', 'ADDED b@11', 'MODIFIED b@16']));
      const urls = seen.map((s) => new URL(s.url, 'https://x').searchParams);
      expect(urls[0]!.get('fieldSelector')).toBe('spec.nodeName=node-1');
      expect(urls[0]!.get('limit')).toBe('500');
      expect(urls[1]!.get('resourceVersion')).toBe('10');
      expect(urls[1]!.get('allowWatchBookmarks')).toBe('true');
      expect(urls[2]!.get('resourceVersion')).toBe('15'); // From the bookmark, not from the last event.
      expect(w.errors).toEqual([]);
    } finally {
      w.stop();
    }
  });

  test('a list in pages is put together before anything is delivered', async () => {
    reset();
    script = [
      (_req, res) => {
        res.writeHead(200);
        res.end(
          JSON.stringify({
            kind: 'PodList',
            metadata: { resourceVersion: '30', continue: 'page-2' },
            items: [pod('a', '1')],
          }),
        );
      },
      list([pod('b', '2')], '30'),
    ];
    const w = start();
    try {
      await vi.waitFor(() => expect(w.got).toEqual(['replace a,b']));
      expect(new URL(seen[1]!.url, 'https://x').searchParams.get('continue')).toBe('page-2');
    } finally {
      w.stop();
    }
  });

  test('a TCP reset and HTTP 500s reconnect with bounded, growing back-off, and the reason is reported', async () => {
    reset();
    script = [
      list([pod('a', '5')], '10'),
      (_req, res) => {
        res.writeHead(200);
        res.write(line('ADDED', pod('b', '11')));
        setTimeout(() => res.socket?.destroy(), 20);
      },
      status(500, 'InternalError', 'etcd is unhappy'),
      status(500, 'InternalError', 'etcd is unhappy'),
      status(500, 'InternalError', 'etcd is unhappy'),
      watch([line('ADDED', pod('c', '12'))], false),
    ];
    const w = start();
    try {
      await vi.waitFor(() => expect(w.got).toEqual(['replace a', 'ADDED b@11', 'ADDED c@12']));
      expect(w.errors[0]).toMatch(/connection was cut|socket hang up|aborted|ECONNRESET/);
      expect(w.errors.slice(1)).toEqual(
        Array(3).fill(expect.stringContaining('500 InternalError: etcd is unhappy')),
      );
      // The back-off (800 ms doubling, equal jitter at 0.5) starts over after the event before the reset,
      // then each failure waits twice as long, never past the cap.
      expect(w.delays).toEqual([600, 1200, 2400, 4800]);
      expect(Math.max(...w.delays)).toBeLessThanOrEqual(WATCH_BACKOFF.maxMs);
      // It resumed from what it had seen: no re-list, the watch went on from b's version.
      expect(new URL(seen.at(-1)!.url, 'https://x').searchParams.get('resourceVersion')).toBe('11');
    } finally {
      w.stop();
    }
  });

  test('a 401 after the token rotated: the token file is read again and the next try carries the new token', async () => {
    reset();
    const needNew: Responder = (req, res) =>
      req.headers.authorization === 'Bearer token-two-rotated'
        ? watch([line('ADDED', pod('b', '11'))], false)(req, res)
        : status(401, 'Unauthorized', 'Unauthorized')(req, res);
    script = [list([pod('a', '5')], '10'), needNew, needNew];
    const w = start({
      sleep: async () => {
        writeFileSync(tokenFile, 'token-two-rotated\n'); // The kubelet replaced the projected token.
      },
    });
    try {
      await vi.waitFor(() => expect(w.got).toEqual(['replace a', 'ADDED b@11']));
      expect(seen.map((s) => s.auth)).toEqual([
        'Bearer token-one',
        'Bearer token-one',
        'Bearer token-two-rotated',
      ]);
      expect(w.errors).toEqual([
        expect.stringContaining('the token was refused; it is read again before the next try'),
      ]);
    } finally {
      w.stop();
    }
  });

  test('a kind the API does not serve (404: its CRD is missing) counts as read and empty, and is asked again', async () => {
    reset();
    script = [
      status(404, 'NotFound', 'the server could not find the requested resource'),
      list([pod('a', '5')], '10'),
      watch([], false),
    ];
    const w = start();
    try {
      await vi.waitFor(() => expect(w.got).toEqual(['replace ', 'replace a']));
      expect(w.errors[0]).toContain('is the CRD for pods installed?');
      expect(w.delays).toEqual([600]);
    } finally {
      w.stop();
    }
  });

  test('a 403 names the RBAC rule that is missing', async () => {
    reset();
    script = [
      status(
        403,
        'Forbidden',
        'pods is forbidden: User "system:serviceaccount:ambit-system:agent" cannot list resource "pods"',
      ),
    ];
    const w = start();
    try {
      await vi.waitFor(() => expect(w.errors.length).toBeGreaterThan(0));
      expect(w.errors[0]).toContain('403 Forbidden: pods is forbidden');
      expect(w.errors[0]).toContain(
        'needs the RBAC rule {apiGroups: [""], resources: ["pods"], verbs: ["list"]} cluster-wide',
      );
    } finally {
      w.stop();
    }
  });
});

describe('KubeClusterSource: what daemons receive', () => {
  function source() {
    const events: string[] = [];
    let synced = 0;
    const ac = new AbortController();
    new KubeClusterSource(
      client(),
      { kinds: ['Pod'], node: 'node-1' },
      { reflector: { sleep: async () => undefined } },
    ).watch(
      {
        onEvents: (es: readonly ClusterEvent[]) =>
          events.push(
            ...es.map(
              (e) =>
                `${e.type} ${'name' in e.resource ? e.resource.name : ''} ${e.resource.kind === 'Pod' ? e.resource.uid : ''}`,
            ),
          ),
        onSynced: () => synced++,
      },
      ac.signal,
    );
    return { events, synced: () => synced, stop: () => ac.abort() };
  }

  test('an in-stream 410 re-lists, and what the new list lacks is deleted', async () => {
    reset();
    script = [
      list([pod('a', '5'), pod('b', '6')], '10'),
      watch([gone('10')], false),
      list([pod('b', '6'), pod('c', '19')], '20'),
      watch([], false),
    ];
    const s = source();
    try {
      await vi.waitFor(() =>
        expect(s.events).toEqual(['added a uid-a', 'added b uid-b', 'added c uid-c', 'deleted a uid-a']),
      );
      expect(s.synced()).toBe(1);
      expect(new URL(seen.at(-1)!.url, 'https://x').searchParams.get('resourceVersion')).toBe('20');
    } finally {
      s.stop();
    }
  });

  test('a pod recreated under its name (a new UID) is a delete and an add; a deletion is delivered', async () => {
    reset();
    script = [
      list([pod('a', '5')], '10'),
      watch([line('MODIFIED', pod('a', '11', 'uid-a-2')), line('DELETED', pod('a', '12', 'uid-a-2'))], false),
    ];
    const s = source();
    try {
      await vi.waitFor(() =>
        expect(s.events).toEqual([
          'added a uid-a',
          'deleted a uid-a',
          'added a uid-a-2',
          'deleted a uid-a-2',
        ]),
      );
    } finally {
      s.stop();
    }
  });

  test('every kind is watched at once: each watch holds its own connection, and every kind gets its events', async () => {
    reset();
    router = (req, res) => {
      const u = new URL(req.url ?? '', 'https://x');
      if (u.searchParams.get('watch') !== '1') {
        res.writeHead(200);
        res.end(JSON.stringify({ kind: 'List', metadata: { resourceVersion: '1' }, items: [] }));
        return;
      }
      // An object without a name: the source reports it under its collection, which shows the watch ran.
      const plural = u.pathname.split('/').at(-1);
      watch([line('ADDED', { kind: plural, metadata: { resourceVersion: '2' } })], false)(req, res);
    };
    const errors = new Set<string>();
    const ac = new AbortController();
    new KubeClusterSource(client()).watch(
      { onEvents: () => undefined, onSynced: () => undefined, onError: (m) => errors.add(m.split(':')[0]!) },
      ac.signal,
    );
    try {
      await vi.waitFor(() => expect(errors.size).toBe(13));
      expect([...errors].sort()).toEqual(
        [
          'authorizationpolicies',
          'backendtrafficpolicies',
          'endpointslices',
          'grpcroutes',
          'httproutes',
          'gateways',
          'namespaces',
          'nodes',
          'peerauthentications',
          'pods',
          'requestauthentications',
          'serviceaccounts',
          'services',
        ].sort(),
      );
    } finally {
      ac.abort();
    }
  });
});
