import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  AMBIT_CNI_TYPE,
  type ConfEdit,
  insertAmbitPlugin,
  pickConfFile,
  removeAmbitPlugin,
} from '../../src/cni/conflist.js';
import { ErrorCode } from '../../src/errors.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/cni');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const cfg = { socket: '/var/run/ambit/cni.sock' };

/** A conf dir as file name -> text; applies an edit the way the agent does (write, then remove). */
function apply(dir: ReadonlyMap<string, string>, edit: ConfEdit): Map<string, string> {
  const out = new Map(dir);
  if (edit.write !== undefined) out.set(edit.write.file, edit.write.text);
  if (edit.remove !== undefined && edit.remove !== edit.write?.file) out.delete(edit.remove);
  return out;
}
const insertDir = (dir: ReadonlyMap<string, string>): Map<string, string> => {
  const f = pickConfFile([...dir.keys()], (n) => dir.get(n))!;
  return apply(dir, insertAmbitPlugin(f, dir.get(f)!, cfg));
};
const removeDir = (dir: ReadonlyMap<string, string>): Map<string, string> => {
  let out = new Map(dir);
  for (const f of [...dir.keys()]) out = apply(out, removeAmbitPlugin(f, out.get(f)!));
  return out;
};

const FILES = ['10-calico.conflist', '05-cilium.conflist', '20-compact.conflist', '10-bridge.conf'];

describe('conflist insert and remove', () => {
  test.each(FILES)('%s: remove(insert(x)) gives back x byte for byte, under its own name', (name) => {
    const dir = new Map([[name, fixture(name)]]);
    const inserted = insertDir(dir);
    expect(inserted).not.toEqual(dir);
    expect(removeDir(inserted)).toEqual(dir);
  });

  test.each(FILES)('%s: inserting twice is inserting once', (name) => {
    const once = insertDir(new Map([[name, fixture(name)]]));
    expect(insertDir(once)).toEqual(once);
    const file = pickConfFile([...once.keys()], (n) => once.get(n))!;
    expect(insertAmbitPlugin(file, once.get(file)!, cfg)).toEqual({});
  });

  test.each(FILES)(
    '%s: the result is a conflist whose last plugin is Ambit, after the original ones',
    (name) => {
      const original = JSON.parse(fixture(name)) as { plugins?: unknown[] };
      const inserted = insertDir(new Map([[name, fixture(name)]]));
      const [file, text] = [...inserted][0]!;
      expect(file.endsWith('.conflist')).toBe(true);
      const list = JSON.parse(text) as { plugins: Record<string, unknown>[] };
      expect(list.plugins.at(-1)).toMatchObject({ type: AMBIT_CNI_TYPE, socket: cfg.socket });
      expect(list.plugins.slice(0, -1)).toEqual(original.plugins ?? [original]);
    },
  );

  test('the entry takes the indentation of its neighbours (Cilium indents plugin members by three)', () => {
    const text = insertDir(new Map([['05-cilium.conflist', fixture('05-cilium.conflist')]])).get(
      '05-cilium.conflist',
    )!;
    expect(text).toContain(
      '    },\n    {\n      "type": "ambit-cni",\n      "socket": "/var/run/ambit/cni.sock"\n    }\n  ]\n}\n',
    );
    // Every byte of the original before the end of its last plugin is untouched.
    const original = fixture('05-cilium.conflist');
    const lastEnd = original.lastIndexOf('}', original.lastIndexOf(']'));
    expect(text.startsWith(original.slice(0, lastEnd + 1))).toBe(true);
  });

  test('a one-line conflist gets a one-line entry', () => {
    const text = insertDir(new Map([['20-compact.conflist', fixture('20-compact.conflist')]])).get(
      '20-compact.conflist',
    )!;
    expect(text.endsWith(`,{"type":"ambit-cni","socket":"/var/run/ambit/cni.sock"}]}`)).toBe(true);
  });

  test('a .conf becomes a .conflist of the same name with the original object verbatim, and comes back', () => {
    const conf = fixture('10-bridge.conf');
    const edit = insertAmbitPlugin('10-bridge.conf', conf, cfg);
    expect(edit.write?.file).toBe('10-bridge.conflist');
    expect(edit.remove).toBe('10-bridge.conf');
    expect(edit.write?.text).toContain(conf.trimEnd());
    expect(JSON.parse(edit.write!.text)).toMatchObject({ cniVersion: '1.0.0', name: 'mynet' });
    const back = removeAmbitPlugin('10-bridge.conflist', edit.write!.text);
    expect(back).toEqual({ write: { file: '10-bridge.conf', text: conf }, remove: '10-bridge.conflist' });
  });

  test('a changed socket rewrites only the entry', () => {
    const once = insertDir(new Map([['10-calico.conflist', fixture('10-calico.conflist')]]));
    const text = once.get('10-calico.conflist')!;
    const edit = insertAmbitPlugin('10-calico.conflist', text, { socket: '/run/other.sock' });
    expect(edit.write?.text).toBe(text.replace('/var/run/ambit/cni.sock', '/run/other.sock'));
  });

  test.each(FILES)('%s: removing from a file without the entry changes nothing', (name) => {
    expect(removeAmbitPlugin(name, fixture(name))).toEqual({});
  });

  test.each([
    [
      '99-malformed.conflist',
      fixture('99-malformed.conflist'),
      /99-malformed\.conflist: not valid JSON \(.*position \d+/,
    ],
    ['cut.conflist', '{"cniVersion":"1.0.0","plugins":[{"type":"calico"}', /cut\.conflist: not valid JSON/],
    ['list.conflist', '[1,2]', /list\.conflist: the top-level JSON value is not an object/],
    ['plugins.conflist', '{"name":"x","plugins":{}}', /plugins\.conflist: "plugins" is not an array/],
    ['empty.conflist', '{"name":"x","plugins":[]}', /empty\.conflist: "plugins" is empty/],
    ['notype.conf', '{"name":"x"}', /notype\.conf: neither a conflist .* nor a plugin config/],
  ])('%s: an error naming the file and the problem, and no edit', (file, text, message) => {
    let err: unknown;
    try {
      insertAmbitPlugin(file, text, cfg);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: ErrorCode.CNI_CONFIG, message: expect.stringMatching(message) });
  });

  const LIST = '{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"ptp"}]}';
  const CONF = '{"cniVersion":"1.0.0","name":"n","type":"bridge"}';
  test.each([
    [
      { '10-calico.conflist': LIST, '05-cilium.conflist': LIST, 'calico-kubeconfig': LIST },
      '05-cilium.conflist',
    ],
    [{ '99-z.conflist': LIST, '10-a.conf': CONF, '.10-a.conflist.ambit-tmp': LIST }, '10-a.conf'],
    [{ '10-a.conf': CONF, '10-a.conflist': LIST }, '10-a.conf'],
    [{ '00-x.json': CONF, '10-y.conflist': LIST }, '00-x.json'],
    [{ 'calico-kubeconfig': LIST, README: 'x' }, undefined],
    // The first that parses, as the runtime loads it: a broken or unusable file is skipped.
    [{ '00-broken.conflist': '{"plugins": [', '10-kindnet.conflist': LIST }, '10-kindnet.conflist'],
    [{ '00-empty.conflist': '{"name":"e","plugins":[]}', '10-a.conf': CONF }, '10-a.conf'],
    [{ '00-notype.conf': '{"name":"x"}', '05-array.json': '[]', '10-a.conf': CONF }, '10-a.conf'],
    [{ '00-unreadable.conflist': undefined, '10-a.conf': CONF }, '10-a.conf'],
  ] as [Record<string, string | undefined>, string | undefined][])(
    'the runtime picks the first usable config file by name: %j -> %s',
    (files, picked) => {
      expect(pickConfFile(Object.keys(files), (n) => files[n])).toBe(picked);
    },
  );
});
