import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { listManifestFiles, parseManifestTexts } from '../../src/manifests/load-manifests.js';

const EXAMPLES = resolve(import.meta.dirname, '../../examples');
const folders = readdirSync(EXAMPLES, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name);

describe('examples/ as a user applies them', () => {
  test('there are examples to check', () => {
    expect(folders).toEqual(expect.arrayContaining(['hello', 'policies']));
  });

  // The policies are written for the hello app: they are applied into its folder.
  const appliedWith: Readonly<Record<string, readonly string[]>> = { policies: ['hello', 'policies'] };

  test.each(folders)(
    'examples/%s loads without one issue, and its mesh config objects all parse',
    (folder) => {
      const texts = (appliedWith[folder] ?? [folder])
        .flatMap((f) => listManifestFiles(join(EXAMPLES, f)))
        .map((file) => ({ file: relative(EXAMPLES, file), text: readFileSync(file, 'utf8') }));
      const { manifests, issues } = parseManifestTexts(texts, {
        requireCommand: true,
        nodeNames: ['node-1', 'node-2'],
      });
      expect(issues).toEqual([]);
      // Every mesh config object of an example parsed into its typed value.
      expect(manifests.kept.filter((k) => k.parsed === undefined).map((k) => k.kind)).toEqual([]);
    },
  );
});
