import { describe, expect, test } from 'vitest';
import { authorize } from '../../src/mesh/authz.js';
import {
  authorizeRequest,
  claimPath,
  type RequestAttrs,
  type RequestTarget,
} from '../../src/mesh/authz-l7.js';
import type { AuthorizationPolicy, AuthzRule } from '../../src/policy/types.js';

const TARGET: RequestTarget = {
  waypoint: { namespace: 'shop', name: 'waypoint' },
  service: { namespace: 'shop', name: 'web' },
};

const REQ: RequestAttrs = {
  srcPrincipal: 'cluster.local/ns/shop/sa/client',
  srcIp: '10.0.0.5',
  dstIp: '10.96.0.10',
  dstPort: 8080,
  method: 'GET',
  path: '/api/items',
  host: 'web.shop.svc.cluster.local:8080',
  header: (n) => ({ 'x-user': 'alice', 'x-env': 'prod' })[n],
};

function ap(
  name: string,
  action: AuthorizationPolicy['action'],
  rules: AuthzRule[],
  targetRefs: AuthorizationPolicy['targetRefs'] = [{ kind: 'Service', name: 'web' }],
  namespace = 'shop',
): AuthorizationPolicy {
  return { kind: 'AuthorizationPolicy', namespace, name, targetRefs, action, rules };
}

const allowGet = ap('allow-get', 'ALLOW', [{ to: [{ methods: ['GET'], paths: ['/api/*'] }] }]);

// Each row: the policies, the request (REQ with changes), and what Istio decides.
const rows: {
  what: string;
  policies: AuthorizationPolicy[];
  req?: Partial<RequestAttrs>;
  allowed: boolean;
  reason: string;
}[] = [
  { what: 'no policy: allowed', policies: [], allowed: true, reason: 'allowed: no waypoint policy applies' },
  {
    what: 'ALLOW on method and path prefix: GET allowed',
    policies: [allowGet],
    allowed: true,
    reason: 'allowed by ALLOW policy shop/allow-get (rule 0)',
  },
  {
    what: 'ALLOW exists and none matches: POST denied',
    policies: [allowGet],
    req: { method: 'POST' },
    allowed: false,
    reason: 'denied: ALLOW policy shop/allow-get applies and none of its rules matches',
  },
  {
    what: 'path prefix does not match another path',
    policies: [allowGet],
    req: { path: '/apix' },
    allowed: false,
    reason: 'denied: ALLOW policy shop/allow-get applies and none of its rules matches',
  },
  {
    what: 'exact path',
    policies: [ap('exact', 'ALLOW', [{ to: [{ paths: ['/api/items'] }] }])],
    allowed: true,
    reason: 'allowed by ALLOW policy shop/exact (rule 0)',
  },
  {
    what: 'suffix path',
    policies: [ap('js', 'ALLOW', [{ to: [{ paths: ['*.js'] }] }])],
    req: { path: '/static/app.js' },
    allowed: true,
    reason: 'allowed by ALLOW policy shop/js (rule 0)',
  },
  {
    what: 'notPaths: everything but /admin',
    policies: [ap('not-admin', 'ALLOW', [{ to: [{ notPaths: ['/admin'] }] }])],
    req: { path: '/admin' },
    allowed: false,
    reason: 'denied: ALLOW policy shop/not-admin applies and none of its rules matches',
  },
  {
    what: 'notMethods',
    policies: [ap('no-delete', 'DENY', [{ to: [{ notMethods: ['GET', 'HEAD'] }] }])],
    req: { method: 'DELETE' },
    allowed: false,
    reason: 'denied by DENY policy shop/no-delete (rule 0)',
  },
  {
    what: 'methods match exactly (case matters, as in Istio)',
    policies: [ap('get', 'ALLOW', [{ to: [{ methods: ['get'] }] }])],
    allowed: false,
    reason: 'denied: ALLOW policy shop/get applies and none of its rules matches',
  },
  {
    what: 'hosts: case-insensitive, port ignored',
    policies: [ap('host', 'ALLOW', [{ to: [{ hosts: ['WEB.shop.svc.cluster.local'] }] }])],
    allowed: true,
    reason: 'allowed by ALLOW policy shop/host (rule 0)',
  },
  {
    what: 'notHosts with a prefix',
    policies: [ap('host', 'DENY', [{ to: [{ notHosts: ['web.*'] }] }])],
    req: { host: 'other.example' },
    allowed: false,
    reason: 'denied by DENY policy shop/host (rule 0)',
  },
  {
    what: 'DENY on a header beats a matching ALLOW',
    policies: [
      allowGet,
      ap('deny-bob', 'DENY', [{ when: [{ key: 'request.headers[x-user]', values: ['alice'] }] }]),
    ],
    allowed: false,
    reason: 'denied by DENY policy shop/deny-bob (rule 0)',
  },
  {
    what: 'a header DENY with another value does not match',
    policies: [ap('deny-bob', 'DENY', [{ when: [{ key: 'request.headers[x-user]', values: ['bob'] }] }])],
    allowed: true,
    reason: 'allowed: no DENY policy matches (shop/deny-bob) and no ALLOW policy applies',
  },
  {
    what: 'header names are case-insensitive',
    policies: [ap('deny', 'DENY', [{ when: [{ key: 'request.headers[X-Env]', values: ['pro*'] }] }])],
    allowed: false,
    reason: 'denied by DENY policy shop/deny (rule 0)',
  },
  {
    what: 'an absent header matches notValues',
    policies: [ap('need', 'DENY', [{ when: [{ key: 'request.headers[x-token]', notValues: ['*'] }] }])],
    allowed: false,
    reason: 'denied by DENY policy shop/need (rule 0)',
  },
  {
    what: 'a claim without a token matches nothing',
    policies: [
      ap('admins', 'ALLOW', [{ when: [{ key: 'request.auth.claims[groups]', values: ['admin'] }] }]),
    ],
    allowed: false,
    reason: 'denied: ALLOW policy shop/admins applies and none of its rules matches',
  },
  {
    what: 'a list claim matches when one element does',
    policies: [
      ap('admins', 'ALLOW', [{ when: [{ key: 'request.auth.claims[groups]', values: ['admin'] }] }]),
    ],
    req: { auth: { principal: 'https://issuer/alice', claims: { groups: ['dev', 'admin'] } } },
    allowed: true,
    reason: 'allowed by ALLOW policy shop/admins (rule 0)',
  },
  {
    what: 'a nested claim',
    policies: [
      ap('nested', 'ALLOW', [{ when: [{ key: 'request.auth.claims[realm][role]', values: ['ops'] }] }]),
    ],
    req: { auth: { principal: 'i/s', claims: { realm: { role: 'ops' } } } },
    allowed: true,
    reason: 'allowed by ALLOW policy shop/nested (rule 0)',
  },
  {
    what: 'requestPrincipals * needs a token',
    policies: [ap('jwt', 'ALLOW', [{ from: [{ requestPrincipals: ['*'] }] }])],
    allowed: false,
    reason: 'denied: ALLOW policy shop/jwt applies and none of its rules matches',
  },
  {
    what: 'request.auth.principal',
    policies: [
      ap('p', 'ALLOW', [{ when: [{ key: 'request.auth.principal', values: ['https://issuer/*'] }] }]),
    ],
    req: { auth: { principal: 'https://issuer/alice', claims: {} } },
    allowed: true,
    reason: 'allowed by ALLOW policy shop/p (rule 0)',
  },
  {
    what: 'L4 fields at the waypoint: the client identity and the Service port',
    policies: [ap('l4', 'ALLOW', [{ from: [{ principals: ['*/sa/client'] }], to: [{ ports: [8080] }] }])],
    allowed: true,
    reason: 'allowed by ALLOW policy shop/l4 (rule 0)',
  },
  {
    what: 'AUDIT decides nothing',
    policies: [ap('audit', 'AUDIT', [{}])],
    allowed: true,
    reason: 'allowed: no DENY policy matches (shop/audit) and no ALLOW policy applies',
  },
  {
    what: 'an ALLOW policy without rules is deny-all',
    policies: [ap('none', 'ALLOW', [])],
    allowed: false,
    reason: 'denied: ALLOW policy shop/none applies and none of its rules matches',
  },
  {
    what: 'a policy targeting another Service does not apply',
    policies: [ap('other', 'ALLOW', [], [{ kind: 'Service', name: 'api' }])],
    allowed: true,
    reason: 'allowed: no waypoint policy applies',
  },
  {
    what: 'a policy in another namespace naming a Service of the same name does not apply',
    policies: [ap('other-ns', 'ALLOW', [], [{ kind: 'Service', name: 'web' }], 'other')],
    allowed: true,
    reason: 'allowed: no waypoint policy applies',
  },
  {
    what: 'a policy targeting the waypoint Gateway applies to every Service it serves',
    policies: [ap('gw', 'DENY', [{ to: [{ methods: ['GET'] }] }], [{ kind: 'Gateway', name: 'waypoint' }])],
    allowed: false,
    reason: 'denied by DENY policy shop/gw (rule 0)',
  },
  {
    what: 'two ALLOW policies, none matching',
    policies: [allowGet, ap('allow-put', 'ALLOW', [{ to: [{ methods: ['PUT'] }] }])],
    req: { method: 'POST' },
    allowed: false,
    reason: 'denied: ALLOW policies shop/allow-get, shop/allow-put apply and none matches',
  },
  {
    what: "a selector policy (no targetRefs) is a node proxy policy, never the waypoint's",
    policies: [{ kind: 'AuthorizationPolicy', namespace: 'shop', name: 'l4', action: 'ALLOW', rules: [] }],
    allowed: true,
    reason: 'allowed: no waypoint policy applies',
  },
];

describe('authorization of one request at the waypoint', () => {
  test.each(rows)('$what', ({ policies, req, allowed, reason }) => {
    const d = authorizeRequest(policies, TARGET, { ...REQ, ...req });
    expect({ allowed: d.allowed, reason: d.reason }).toEqual({ allowed, reason });
  });

  test('the access log names the matching policy, or the ALLOW policies none of which matched', () => {
    const audit = ap('audit', 'AUDIT', [{}]);
    const put = ap('allow-put', 'ALLOW', [{ to: [{ methods: ['PUT'] }] }]);
    expect(authorizeRequest([allowGet, audit], TARGET, REQ).decidedBy).toEqual(['shop/allow-get']);
    expect(authorizeRequest([allowGet, put, audit], TARGET, { ...REQ, method: 'POST' }).decidedBy).toEqual([
      'shop/allow-get',
      'shop/allow-put',
    ]);
    expect(authorizeRequest([audit], TARGET, REQ).decidedBy).toEqual([]);
  });

  test('a matching AUDIT policy is reported with the decision', () => {
    const d = authorizeRequest(
      [
        ap('audit-get', 'AUDIT', [{ to: [{ methods: ['GET'] }] }]),
        ap('audit-put', 'AUDIT', [{ to: [{ methods: ['PUT'] }] }]),
      ],
      TARGET,
      REQ,
    );
    expect(d.audited).toEqual(['shop/audit-get']);
  });

  test('a request addressed to a pod is not a Service target; a Gateway policy still applies', () => {
    const pod = { waypoint: TARGET.waypoint };
    expect(authorizeRequest([allowGet], pod, { ...REQ, method: 'POST' }).allowed).toBe(true);
    const gw = ap('gw', 'ALLOW', [], [{ kind: 'Gateway', name: 'waypoint' }]);
    expect(authorizeRequest([gw], pod, REQ).allowed).toBe(false);
  });

  test('node proxies never evaluate a waypoint policy', () => {
    const d = authorize([ap('deny-all', 'DENY', [{}])], {
      srcIp: '10.0.0.5',
      dstIp: '10.0.0.9',
      dstPort: 8080,
      dst: { namespace: 'shop', labels: {} },
    });
    expect(d).toMatchObject({ allowed: true, applicable: [] });
  });

  test.each([
    ['request.auth.claims[iss]', ['iss']],
    ['request.auth.claims[a][b]', ['a', 'b']],
    ['request.auth.claims[]', undefined],
    ['request.headers[x]', undefined],
  ])('claim path of %s', (key, want) => {
    expect(claimPath(key)).toEqual(want);
  });
});
