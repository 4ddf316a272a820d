import { describe, expect, test } from 'vitest';
import { formatIssue } from '../../src/config/issue.js';
import type { Gateway, GrpcRoute, HttpRoute } from '../../src/gateway-api/types.js';
import { parseManifestTexts } from '../../src/manifests/load-manifests.js';

const SHOP = 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n';

/** Strips the indentation of a template literal that starts with a newline. */
function dedent(text: string): string {
  const lines = text.replace(/^\n/, '').split('\n');
  const indent = Math.min(
    ...lines.filter((l) => l.trim() !== '').map((l) => l.length - l.trimStart().length),
  );
  return lines.map((l) => l.slice(indent)).join('\n');
}

/**
 * An object of `kind` in shop whose spec starts on line 7 of r.yaml (spec line n is r.yaml:(6 + n)),
 * loaded as `ambit local up` loads it.
 */
function load(kind: string, spec: string, apiVersion = 'gateway.networking.k8s.io/v1') {
  const body = dedent(spec)
    .split('\n')
    .map((l) => (l === '' ? l : `  ${l}`))
    .join('\n');
  const text = `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata:\n  name: r\n  namespace: shop\nspec:\n${body}\n`;
  const { manifests, issues } = parseManifestTexts(
    [
      { file: 'ns.yaml', text: SHOP },
      { file: 'r.yaml', text },
    ],
    { requireCommand: true, nodeNames: ['node-1'] },
  );
  const kept = manifests.kept.find((k) => k.kind === kind);
  return {
    value: kept?.parsed?.value,
    errors: issues.filter((i) => i.severity === 'error').map(formatIssue),
    warnings: issues.filter((i) => i.severity === 'warning').map(formatIssue),
  };
}

/** The parent of the routes below: the Service web (GAMMA); `rules` then start on r.yaml:8. */
const PARENT = 'parentRefs: [{ group: "", kind: Service, name: web, port: 80 }]\n';
const route = (kind: 'HTTPRoute' | 'GRPCRoute', rules = '') => load(kind, PARENT + dedent(rules));

describe('HTTPRoute: valid routes become domain values with the CRD defaults', () => {
  test('a route with no rules has one that matches everything (PathPrefix /)', () => {
    const { value, errors } = route('HTTPRoute');
    expect(errors).toEqual([]);
    expect(value).toEqual({
      namespace: 'shop',
      name: 'r',
      labels: {},
      parentRefs: [{ group: '', kind: 'Service', name: 'web', port: 80 }],
      hostnames: [],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] }],
          filters: [],
          backendRefs: [],
        },
      ],
    } satisfies HttpRoute);
  });

  test('matches, weighted backends, filters, timeouts and retry, each with its defaults', () => {
    const { value, errors, warnings } = route(
      'HTTPRoute',
      `
      rules:
        - name: canary
          matches:
            - path: { value: /api }
              headers: [{ name: X-User, value: a }]
              queryParams: [{ type: RegularExpression, name: v, value: "^2" }]
              method: GET
          filters:
            - type: RequestHeaderModifier
              requestHeaderModifier: { set: [{ name: X-Route, value: canary }], remove: [X-Debug] }
          backendRefs:
            - { name: web-v1, port: 80, weight: 90 }
            - name: web-v2
              port: 80
              filters: [{ type: ResponseHeaderModifier, responseHeaderModifier: { add: [{ name: x-v, value: "2" }] } }]
          timeouts: { request: 10s, backendRequest: 2s }
          retry: { codes: [503], attempts: 3, backoff: 100ms }
        - matches: [{ path: { type: Exact, value: /old } }]
          filters: [{ type: RequestRedirect, requestRedirect: { path: { type: ReplaceFullPath, replaceFullPath: /new } } }]
      `,
    );
    expect(errors).toEqual([]);
    expect(warnings).toEqual([]);
    const rules = (value as HttpRoute).rules;
    expect(rules[0]).toEqual({
      name: 'canary',
      matches: [
        {
          path: { type: 'PathPrefix', value: '/api' },
          headers: [{ name: 'x-user', match: { type: 'Exact', value: 'a' } }],
          queryParams: [{ name: 'v', match: { type: 'RegularExpression', value: '^2' } }],
          method: 'GET',
        },
      ],
      filters: [
        {
          type: 'RequestHeaderModifier',
          headers: { set: [{ name: 'x-route', value: 'canary' }], add: [], remove: ['x-debug'] },
        },
      ],
      backendRefs: [
        { group: '', kind: 'Service', name: 'web-v1', port: 80, weight: 90, filters: [] },
        {
          group: '',
          kind: 'Service',
          name: 'web-v2',
          port: 80,
          weight: 1,
          filters: [
            {
              type: 'ResponseHeaderModifier',
              headers: { set: [], add: [{ name: 'x-v', value: '2' }], remove: [] },
            },
          ],
        },
      ],
      timeouts: { requestMs: 10_000, backendRequestMs: 2000 },
      retry: { codes: [503], attempts: 3, backoffMs: 100 },
    });
    expect(rules[1]?.filters).toEqual([
      {
        type: 'RequestRedirect',
        redirect: { path: { type: 'ReplaceFullPath', value: '/new' }, statusCode: 302 },
      },
    ]);
  });
});

describe('HTTPRoute: what the API server (schema and CEL) would refuse is refused with file:line path', () => {
  test.each<{ what: string; spec: string; errors: string[] }>([
    {
      what: 'a path that is not absolute',
      spec: `rules: [{ matches: [{ path: { type: PathPrefix, value: api } }] }]`,
      errors: [
        'r.yaml:8 spec.rules[0].matches[0].path.value: "api" must be an absolute path starting with "/"',
      ],
    },
    {
      what: 'a path with //',
      spec: `rules: [{ matches: [{ path: { value: "/a//b" } }] }]`,
      errors: ['r.yaml:8 spec.rules[0].matches[0].path.value: "/a//b" must not contain "//"'],
    },
    {
      what: 'a regular expression that does not compile',
      spec: `rules: [{ matches: [{ path: { type: RegularExpression, value: "(" } }] }]`,
      errors: [
        'r.yaml:8 spec.rules[0].matches[0].path.value: "(" is not a valid regular expression (Invalid regular expression: /(/u: Unterminated group)',
      ],
    },
    {
      what: 'a method that is not one',
      spec: `rules: [{ matches: [{ method: FETCH }] }]`,
      errors: [
        'r.yaml:8 spec.rules[0].matches[0].method: "FETCH" is not one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH',
      ],
    },
    {
      what: 'a header matched twice (names are case-insensitive)',
      spec: `rules: [{ matches: [{ headers: [{ name: x-a, value: "1" }, { name: X-A, value: "2" }] }] }]`,
      errors: [
        'r.yaml:8 spec.rules[0].matches[0].headers[1].name: "x-a" is matched by an earlier entry (names are case-insensitive)',
      ],
    },
    {
      what: 'a Service backend without a port',
      spec: `rules: [{ backendRefs: [{ name: web }] }]`,
      errors: ['r.yaml:8 spec.rules[0].backendRefs[0].port: is required for a Service backend'],
    },
    {
      what: 'a negative weight',
      spec: `rules: [{ backendRefs: [{ name: web, port: 80, weight: -1 }] }]`,
      errors: ['r.yaml:8 spec.rules[0].backendRefs[0].weight: -1 is negative'],
    },
    {
      what: 'a weight over a million',
      spec: `rules: [{ backendRefs: [{ name: web, port: 80, weight: 1000001 }] }]`,
      errors: ['r.yaml:8 spec.rules[0].backendRefs[0].weight: 1000001 is above the maximum 1000000'],
    },
    {
      what: 'a redirect together with backends',
      spec: `rules: [{ filters: [{ type: RequestRedirect, requestRedirect: { port: 8080 } }], backendRefs: [{ name: web, port: 80 }] }]`,
      errors: [
        'r.yaml:8 spec.rules[0].filters: has a RequestRedirect filter, which cannot be used together with backendRefs',
      ],
    },
    {
      what: 'a redirect and a rewrite in one rule',
      spec: `rules: [{ filters: [{ type: RequestRedirect, requestRedirect: {} }, { type: URLRewrite, urlRewrite: {} }] }]`,
      errors: ['r.yaml:8 spec.rules[0].filters: cannot have both a RequestRedirect and a URLRewrite filter'],
    },
    {
      what: 'the filter field of another type',
      spec: `rules: [{ filters: [{ type: RequestHeaderModifier, urlRewrite: {} }] }]`,
      errors: [
        'r.yaml:8 spec.rules[0].filters[0].urlRewrite: must not be set when the filter type is RequestHeaderModifier',
        'r.yaml:8 spec.rules[0].filters[0].requestHeaderModifier: is required',
      ],
    },
    {
      what: 'a header modifier filter twice',
      spec: `rules: [{ filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { remove: [a] } }, { type: RequestHeaderModifier, requestHeaderModifier: { remove: [b] } }] }]`,
      errors: [
        'r.yaml:8 spec.rules[0].filters: has more than one RequestHeaderModifier filter; at most one is allowed',
      ],
    },
    {
      what: 'ReplacePrefixMatch without exactly one PathPrefix match',
      spec: `rules: [{ matches: [{ path: { type: Exact, value: /a } }], filters: [{ type: URLRewrite, urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /b } } }] }]`,
      errors: [
        'r.yaml:8 spec.rules[0].matches: must be exactly one PathPrefix match when a filter uses ReplacePrefixMatch',
      ],
    },
    {
      what: 'a path modifier with the other type’s field',
      spec: `rules: [{ filters: [{ type: URLRewrite, urlRewrite: { path: { type: ReplaceFullPath, replacePrefixMatch: /b } } }] }]`,
      errors: [
        'r.yaml:8 spec.rules[0].filters[0].urlRewrite.path.replacePrefixMatch: must not be set when type is ReplaceFullPath',
        'r.yaml:8 spec.rules[0].filters[0].urlRewrite.path.replaceFullPath: is required',
      ],
    },
    {
      what: 'a redirect status code the spec does not allow',
      spec: `rules: [{ filters: [{ type: RequestRedirect, requestRedirect: { statusCode: 304 } }] }]`,
      errors: [
        'r.yaml:8 spec.rules[0].filters[0].requestRedirect.statusCode: 304 is not one of 301, 302, 303, 307, 308',
      ],
    },
    {
      what: 'a backend request timeout longer than the request timeout',
      spec: `rules: [{ timeouts: { request: 1s, backendRequest: 2s } }]`,
      errors: ['r.yaml:8 spec.rules[0].timeouts.backendRequest: is longer than the request timeout ("1s")'],
    },
    {
      what: 'a duration Gateway API does not accept (bare seconds)',
      spec: `rules: [{ timeouts: { request: "10" } }]`,
      errors: [
        'r.yaml:8 spec.rules[0].timeouts.request: "10" is not a duration (e.g. 10s, 1m30s, 500ms; at most 4 parts)',
      ],
    },
    {
      what: 'a retry code outside 400-599',
      spec: `rules: [{ retry: { codes: [200] } }]`,
      errors: ['r.yaml:8 spec.rules[0].retry.codes[0]: 200 is not an HTTP status code from 400 to 599'],
    },
    {
      what: 'an unknown field (a mistyped matcher would match more than meant)',
      spec: `rules: [{ matches: [{ header: [{ name: a, value: b }] }] }]`,
      errors: [
        'r.yaml:8 spec.rules[0].matches[0].header: unknown field (known fields: path, headers, queryParams, method); a route with a field Ambit does not read is rejected',
      ],
    },
    {
      what: 'a filter kind Ambit does not run',
      spec: `rules: [{ filters: [{ type: ExtensionRef, extensionRef: { group: x, kind: y, name: z } }] }]`,
      errors: [
        'r.yaml:8 spec.rules[0].filters[0].type: ExtensionRef filters are not supported by Ambit (supported: RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, RequestRedirect, URLRewrite)',
      ],
    },
    {
      what: 'an empty rules list',
      spec: `rules: []`,
      errors: [
        'r.yaml:8 spec.rules: must not be empty; leave it out for one rule that matches every request',
      ],
    },
    {
      what: 'two rules of one name',
      spec: `rules: [{ name: a }, { name: a }]`,
      errors: ['r.yaml:8 spec.rules: name two rules alike; rule names must be unique'],
    },
  ])('$what', ({ spec, errors }) => {
    const r = route('HTTPRoute', spec);
    expect(r.errors).toEqual(errors);
    expect(r.value).toBeUndefined();
  });

  test('a route attached to nothing is kept with a warning', () => {
    const r = load('HTTPRoute', 'rules: [{ backendRefs: [{ name: web, port: 80 }] }]');
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([
      'r.yaml:6 warning: spec.parentRefs: is empty: the route attaches to nothing and has no effect',
    ]);
  });
});

describe('GRPCRoute', () => {
  test('method and header matches, weighted backends', () => {
    const { value, errors } = route(
      'GRPCRoute',
      `
      rules:
        - matches: [{ method: { service: echo.Echo, method: Say }, headers: [{ name: x-user, value: a }] }]
          backendRefs: [{ name: echo-v2, port: 50051, weight: 10 }]
        - matches: [{ method: { type: RegularExpression, service: "echo\\\\..*" } }]
      `,
    );
    expect(errors).toEqual([]);
    const rules = (value as GrpcRoute).rules;
    expect(rules[0]?.matches).toEqual([
      {
        method: { type: 'Exact', service: 'echo.Echo', method: 'Say' },
        headers: [{ name: 'x-user', match: { type: 'Exact', value: 'a' } }],
      },
    ]);
    expect(rules[0]?.backendRefs).toEqual([
      { group: '', kind: 'Service', name: 'echo-v2', port: 50051, weight: 10, filters: [] },
    ]);
    expect(rules[1]?.matches[0]?.method).toEqual({ type: 'RegularExpression', service: 'echo\\..*' });
  });

  test.each<{ what: string; spec: string; errors: string[] }>([
    {
      what: 'a method match with neither service nor method',
      spec: `rules: [{ matches: [{ method: { type: Exact } }] }]`,
      errors: ['r.yaml:8 spec.rules[0].matches[0].method: must set service, method or both'],
    },
    {
      what: 'an exact method that is not a method name',
      spec: `rules: [{ matches: [{ method: { method: "Say/Hi" } }] }]`,
      errors: ['r.yaml:8 spec.rules[0].matches[0].method.method: "Say/Hi" is not a gRPC method name'],
    },
    {
      what: 'an HTTP-only filter',
      spec: `rules: [{ filters: [{ type: URLRewrite, urlRewrite: {} }] }]`,
      errors: [
        'r.yaml:8 spec.rules[0].filters[0].urlRewrite: unknown field (known fields: type, requestHeaderModifier, responseHeaderModifier, requestMirror, extensionRef); a route with a field Ambit does not read is rejected',
        'r.yaml:8 spec.rules[0].filters[0].type: "URLRewrite" is not one of RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, ExtensionRef',
      ],
    },
  ])('$what', ({ spec, errors }) => {
    const r = route('GRPCRoute', spec);
    expect(r.errors).toEqual(errors);
  });
});

describe('Gateway', () => {
  const waypoint = `
    gatewayClassName: ambit-waypoint
    listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
  `;

  test('a waypoint: listeners with their defaults', () => {
    const { value, errors } = load('Gateway', waypoint);
    expect(errors).toEqual([]);
    expect(value).toEqual({
      namespace: 'shop',
      name: 'r',
      labels: {},
      annotations: {},
      gatewayClassName: 'ambit-waypoint',
      listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE', allowedRoutes: { from: 'Same' } }],
      addresses: [],
    } satisfies Gateway);
  });

  test.each<{ what: string; spec: string; errors: string[] }>([
    {
      what: 'a waypoint without its HBONE listener',
      spec: 'gatewayClassName: ambit-waypoint\nlisteners: [{ name: http, port: 80, protocol: HTTP }]',
      errors: [
        'r.yaml:8 spec.listeners: a waypoint (class ambit-waypoint) needs a listener {name: mesh, port: 15008, protocol: HBONE}',
      ],
    },
    {
      what: 'no listeners',
      spec: 'gatewayClassName: x\nlisteners: []',
      errors: ['r.yaml:8 spec.listeners: must not be empty'],
    },
    {
      what: 'two listeners of one name',
      spec: 'gatewayClassName: x\nlisteners: [{ name: a, port: 80, protocol: HTTP }, { name: a, port: 81, protocol: HTTP }]',
      errors: ['r.yaml:8 spec.listeners[1].name: "a" is used by another listener'],
    },
    {
      what: 'tls on an HBONE listener',
      spec: 'gatewayClassName: ambit-waypoint\nlisteners: [{ name: mesh, port: 15008, protocol: HBONE, tls: {} }]',
      errors: ['r.yaml:8 spec.listeners[0].tls: must not be set for protocol HBONE'],
    },
  ])('$what', ({ spec, errors }) => {
    expect(load('Gateway', spec).errors).toEqual(errors);
  });
});
