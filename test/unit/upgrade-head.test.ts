import { describe, expect, test } from 'vitest';
import type { HeaderModifier } from '../../src/gateway-api/types.js';
import { rewriteHead } from '../../src/l7-waypoint/upgrade-relay.js';

const head = (s: string) => Buffer.from(s, 'latin1');

describe("rewriteHead: an Upgrade's answer head as the client gets it", () => {
  test.each<{
    what: string;
    in: string;
    modifiers: HeaderModifier[];
    added: Record<string, string>;
    out: string;
  }>([
    {
      what: 'nothing to do: the same bytes',
      in: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n',
      modifiers: [],
      added: {},
      out: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n',
    },
    {
      what: "the waypoint's headers after the endpoint's, a set-cookie kept beside the endpoint's",
      in: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSet-Cookie: a=1\r\n\r\nframe',
      modifiers: [],
      added: { 'set-cookie': 'ep=9f; Max-Age=3600', 'x-ratelimit-limit': '10' },
      out: 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nset-cookie: a=1\r\nset-cookie: ep=9f; Max-Age=3600\r\nx-ratelimit-limit: 10\r\n\r\nframe',
    },
    {
      what: "the route's response header modifier: set, add, remove",
      in: 'HTTP/1.1 403 Forbidden\r\nServer: app\r\nX-Debug: 1\r\n\r\n',
      modifiers: [
        {
          set: [{ name: 'server', value: 'mesh' }],
          add: [{ name: 'x-route', value: 'ws' }],
          remove: ['x-debug'],
        },
      ],
      added: {},
      out: 'HTTP/1.1 403 Forbidden\r\nserver: mesh\r\nx-route: ws\r\n\r\n',
    },
    {
      what: 'a head without its end (cut at the bound): unchanged',
      in: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n',
      modifiers: [],
      added: { 'x-ratelimit-limit': '10' },
      out: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n',
    },
  ])('$what', ({ in: input, modifiers, added, out }) => {
    expect(rewriteHead(head(input), modifiers, added).toString('latin1')).toBe(out);
  });
});
