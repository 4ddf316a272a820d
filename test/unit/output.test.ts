import { describe, expect, test } from 'vitest';
import { parseDuration, parseOutputFormat, render, table } from '../../src/ctl/output.js';
import { AmbitError, ErrorCode } from '../../src/errors.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('table', () => {
  test.each<{ what: string; headers: string[]; rows: string[][]; text: string }>([
    {
      what: 'columns padded to the widest cell, three spaces apart',
      headers: ['NAME', 'READY', 'STATUS'],
      rows: [
        ['web-7c9f8d5b6d-x2kqz', '1/1', 'Running'],
        ['db', '0/1', 'Pending'],
      ],
      text: [
        'NAME                   READY   STATUS',
        'web-7c9f8d5b6d-x2kqz   1/1     Running',
        'db                     0/1     Pending',
      ].join('\n'),
    },
    { what: 'no rows: only the headers', headers: ['NAME', 'AGE'], rows: [], text: 'NAME   AGE' },
    {
      what: 'the last column is not padded and trailing blanks are trimmed',
      headers: ['NAME', 'NODE', 'IP'],
      rows: [
        ['a', 'node-0', ''],
        ['b', '', ''],
      ],
      text: ['NAME   NODE     IP', 'a      node-0', 'b'].join('\n'),
    },
    {
      what: 'a short row leaves its missing cells empty',
      headers: ['NAME', 'NODE', 'IP'],
      rows: [['a'], ['bb', 'node-1', '10.244.1.2']],
      text: ['NAME   NODE     IP', 'a', 'bb     node-1   10.244.1.2'].join('\n'),
    },
    {
      what: 'a header wider than its cells sets the width',
      headers: ['NAMESPACE', 'NAME'],
      rows: [['shop', 'web']],
      text: ['NAMESPACE   NAME', 'shop        web'].join('\n'),
    },
  ])('$what', ({ headers, rows, text }) => {
    expect(table(headers, rows)).toBe(text);
  });
});

describe('parseDuration', () => {
  test.each([
    ['90s', 90_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['250ms', 250],
    ['45', 45_000],
    ['0', 0],
    ['0s', 0],
    ['1m30s', 90_000],
  ])('%s -> %i ms', (value, ms) => {
    expect(parseDuration(value, '--timeout')).toBe(ms);
  });

  test.each(['1.5s', '-1s', '1d', '', ' 5s', '5 s', 's', '10S', '1h2m3s4ms5s'])(
    '%j is a usage error naming the flag',
    (value) => {
      const err = thrown(() => parseDuration(value, '--timeout'));
      expect(err).toBeInstanceOf(AmbitError);
      expect((err as AmbitError).code).toBe(ErrorCode.USAGE);
      expect((err as AmbitError).message).toBe(`--timeout ${value}: not a duration (use e.g. 90s, 2m)`);
    },
  );
});

describe('parseOutputFormat', () => {
  test.each([
    [undefined, undefined, 'table'],
    [undefined, 'wide', 'wide'],
    ['table', undefined, 'table'],
    ['wide', undefined, 'wide'],
    ['json', 'wide', 'json'],
    ['yaml', undefined, 'yaml'],
  ] as const)('-o %s (fallback %s) -> %s', (value, fallback, format) => {
    expect(parseOutputFormat(value, fallback)).toBe(format);
  });

  test.each(['xml', 'JSON', '', 'jsonpath'])('-o %j is a usage error listing the formats', (value) => {
    const err = thrown(() => parseOutputFormat(value));
    expect(err).toBeInstanceOf(AmbitError);
    expect((err as AmbitError).code).toBe(ErrorCode.USAGE);
    expect((err as AmbitError).message).toBe(
      `-o ${value}: unknown output format; use one of table, wide, json, yaml`,
    );
  });
});

describe('render', () => {
  test.each([
    ['json', '{\n  "name": "web",\n  "ports": [\n    80\n  ]\n}'],
    ['yaml', 'name: web\nports:\n  - 80'],
  ] as const)('%s', (format, text) => {
    expect(render({ name: 'web', ports: [80] }, format)).toBe(text);
  });
});
