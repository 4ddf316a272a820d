import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { resourceOfKind } from '../../src/kube/api-resources.js';
import { ManifestWriter } from '../../src/local/kube-api/manifest-writer.js';
import type { Json } from '../../src/local/kube-api/selectors.js';
import { ApiStatusError } from '../../src/local/kube-api/server.js';
import { ApiStore } from '../../src/local/kube-api/store.js';

/*
 * Writes through local mode's API land in the manifests folder: what they may change, and what they
 * must never lose.
 */

const NS = resourceOfKind('Namespace')!;
let dir = '';
let store: ApiStore;
let reloads = 0;

function writer(): ManifestWriter {
  return new ManifestWriter({
    manifests: dir,
    displayBase: dir,
    parseOptions: () => ({ requireCommand: true, nodeNames: ['node-1'] }),
    store,
    reload: async () => {
      reloads++;
    },
  });
}

const ns = (name: string, labels: Record<string, string> = {}): Json => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels },
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ambit-writer-'));
  store = new ApiStore();
  reloads = 0;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('ManifestWriter', () => {
  test('a new object never replaces a file that happens to have its name', async () => {
    writeFileSync(
      join(dir, 'namespace-shop2.yaml'),
      '# mine\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop-renamed\n',
    );
    await writer().write({
      verb: 'create',
      resource: NS,
      namespace: '',
      name: 'shop2',
      mutate: () => ns('shop2'),
    });
    expect(readFileSync(join(dir, 'namespace-shop2.yaml'), 'utf8')).toContain('name: shop-renamed');
    expect(readFileSync(join(dir, 'namespace-shop2-2.yaml'), 'utf8')).toContain('name: shop2');
    expect(reloads).toBe(1);
  });

  test('a dry run validates and writes nothing', async () => {
    writeFileSync(join(dir, 'a.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n');
    const before = readdirSync(dir);
    const out = await writer().write({
      verb: 'create',
      resource: NS,
      namespace: '',
      name: 'shop',
      dryRun: true,
      mutate: () => ns('shop', { a: 'b' }),
    });
    expect(out).toMatchObject({ metadata: { name: 'shop', labels: { a: 'b' } } });
    expect(readdirSync(dir)).toEqual(before);
    expect(reloads).toBe(0);
  });

  test('deleting the only object of the only file keeps the file (empty), so the folder still loads', async () => {
    writeFileSync(join(dir, 'ns.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n');
    await writer().write({
      verb: 'delete',
      resource: NS,
      namespace: '',
      name: 'shop',
      mutate: () => undefined,
    });
    expect(existsSync(join(dir, 'ns.yaml'))).toBe(true);
    expect(readFileSync(join(dir, 'ns.yaml'), 'utf8').trim()).toBe('');
    // With another file left, the emptied file goes.
    writeFileSync(join(dir, 'a.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n');
    writeFileSync(join(dir, 'b.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n');
    await writer().write({ verb: 'delete', resource: NS, namespace: '', name: 'b', mutate: () => undefined });
    expect(existsSync(join(dir, 'b.yaml'))).toBe(false);
  });

  test('an object local mode keeps itself (no manifest) cannot be deleted: 405 with the reason', async () => {
    writeFileSync(join(dir, 'a.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n');
    store.replaceAll([ns('default')]);
    const err = await writer()
      .write({ verb: 'delete', resource: NS, namespace: '', name: 'default', mutate: () => undefined })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiStatusError);
    expect((err as ApiStatusError).code).toBe(405);
    expect((err as ApiStatusError).message).toContain('is not declared in the manifests');
  });

  test('an invalid object is refused with file:line path, and the file is left as it was', async () => {
    const text = '# keep me\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n';
    writeFileSync(join(dir, 'ns.yaml'), text);
    const err = await writer()
      .write({
        verb: 'patch',
        resource: NS,
        namespace: '',
        name: 'shop',
        mutate: (cur) => ({ ...cur!, metadata: { name: 'shop', labels: { 'bad label!': 'x' } } }),
      })
      .catch((e: unknown) => e);
    expect((err as ApiStatusError).code).toBe(422);
    expect((err as ApiStatusError).message).toMatch(/ns\.yaml:\d+ metadata\.labels/);
    expect(readFileSync(join(dir, 'ns.yaml'), 'utf8')).toBe(text);
  });
});
