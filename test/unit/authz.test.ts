import { describe, expect, test } from 'vitest';
import {
  authorize,
  type ConnAttrs,
  mtlsMode,
  namespaceOfPrincipal,
  stringMatches,
} from '../../src/mesh/authz.js';
import {
  type AuthorizationPolicy,
  type AuthzRule,
  type MtlsMode,
  NEVER_MATCHING_RULE,
  type PeerAuthentication,
} from '../../src/policy/types.js';

const CLIENT = 'cluster.local/ns/shop/sa/client';
const WEB = { namespace: 'shop', labels: { app: 'web', version: 'v1' } };

/** A connection from shop/client (10.0.1.5, mTLS) to shop web (10.0.2.7:8080), with changes. */
function conn(over: Partial<ConnAttrs> = {}): ConnAttrs {
  return { srcPrincipal: CLIENT, srcIp: '10.0.1.5', dstIp: '10.0.2.7', dstPort: 8080, dst: WEB, ...over };
}

const PLAINTEXT = conn({ srcPrincipal: undefined });
const FROM_OTHER = conn({ srcPrincipal: 'cluster.local/ns/other/sa/default', srcIp: '10.0.9.9' });

type PolicyOpts = { ns?: string; selector?: Record<string, string> };

function policy(
  action: 'ALLOW' | 'DENY',
  name: string,
  rules: readonly AuthzRule[],
  o: PolicyOpts = {},
): AuthorizationPolicy {
  return {
    kind: 'AuthorizationPolicy',
    namespace: o.ns ?? 'shop',
    name,
    ...(o.selector === undefined ? {} : { selector: o.selector }),
    action,
    rules,
  };
}
const allow = (name: string, rules: readonly AuthzRule[], o?: PolicyOpts) => policy('ALLOW', name, rules, o);
const deny = (name: string, rules: readonly AuthzRule[], o?: PolicyOpts) => policy('DENY', name, rules, o);

interface Row {
  readonly case: string;
  readonly policies: readonly AuthorizationPolicy[];
  readonly conn: ConnAttrs;
  readonly allowed: boolean;
  readonly reason: string;
  readonly applicable?: readonly string[];
  readonly root?: string;
}

const rows: Row[] = [
  // Which policies apply
  { case: 'no policies', policies: [], conn: conn(), allowed: true, reason: 'allowed: no policy applies' },
  {
    case: 'a policy in another namespace does not apply',
    policies: [allow('deny-all', [], { ns: 'other' })],
    conn: conn(),
    allowed: true,
    reason: 'allowed: no policy applies',
    applicable: [],
  },
  {
    case: 'a selector that does not match the destination',
    policies: [allow('api-only', [], { selector: { app: 'api' } })],
    conn: conn(),
    allowed: true,
    reason: 'allowed: no policy applies',
  },
  {
    case: 'a selector matches when all its labels are on the destination (and more)',
    policies: [allow('web-v1', [], { selector: { app: 'web', version: 'v1' } })],
    conn: conn(),
    allowed: false,
    reason: 'denied: ALLOW policy shop/web-v1 applies and has no rules, so it allows nothing',
    applicable: ['shop/web-v1'],
  },
  {
    case: 'a selector with one label that differs',
    policies: [allow('web-v2', [], { selector: { app: 'web', version: 'v2' } })],
    conn: conn(),
    allowed: true,
    reason: 'allowed: no policy applies',
  },
  {
    case: 'deny-all: spec {} is an ALLOW policy with no rules',
    policies: [allow('deny-all', [])],
    conn: conn(),
    allowed: false,
    reason: 'denied: ALLOW policy shop/deny-all applies and has no rules, so it allows nothing',
  },
  {
    case: 'allow-all: rules [{}]',
    policies: [allow('deny-all', []), allow('allow-all', [{}])],
    conn: PLAINTEXT,
    allowed: true,
    reason: 'allowed by ALLOW policy shop/allow-all (rule 0)',
    applicable: ['shop/allow-all', 'shop/deny-all'],
  },
  {
    case: 'root namespace policy without selector applies mesh-wide',
    policies: [allow('mesh-only-shop', [{ from: [{ namespaces: ['shop'] }] }], { ns: 'ambit-system' })],
    conn: FROM_OTHER,
    allowed: false,
    reason: 'denied: ALLOW policy ambit-system/mesh-only-shop applies and none of its rules matches',
    applicable: ['ambit-system/mesh-only-shop'],
  },
  {
    case: 'root namespace policy with a selector applies to matching workloads in every namespace',
    policies: [
      deny('no-web-from-other', [{ from: [{ namespaces: ['other'] }] }], {
        ns: 'ambit-system',
        selector: { app: 'web' },
      }),
    ],
    conn: FROM_OTHER,
    allowed: false,
    reason: 'denied by DENY policy ambit-system/no-web-from-other (rule 0)',
  },
  {
    case: 'root namespace policy whose selector does not match',
    policies: [deny('no-api', [{}], { ns: 'ambit-system', selector: { app: 'api' } })],
    conn: conn(),
    allowed: true,
    reason: 'allowed: no policy applies',
  },
  {
    case: 'another root namespace can be configured',
    policies: [deny('all', [{}], { ns: 'istio-system' }), deny('ignored', [{}], { ns: 'ambit-system' })],
    conn: conn(),
    root: 'istio-system',
    allowed: false,
    reason: 'denied by DENY policy istio-system/all (rule 0)',
    applicable: ['istio-system/all'],
  },
  // DENY before ALLOW
  {
    case: 'a matching DENY wins over a matching ALLOW',
    policies: [allow('allow-all', [{}]), deny('no-client', [{ from: [{ principals: [CLIENT] }] }])],
    conn: conn(),
    allowed: false,
    reason: 'denied by DENY policy shop/no-client (rule 0)',
    applicable: ['shop/allow-all', 'shop/no-client'],
  },
  {
    case: 'a DENY that does not match lets the ALLOW decide',
    policies: [allow('allow-all', [{}]), deny('no-other', [{ from: [{ namespaces: ['other'] }] }])],
    conn: conn(),
    allowed: true,
    reason: 'allowed by ALLOW policy shop/allow-all (rule 0)',
  },
  {
    case: 'only DENY policies apply and none matches',
    policies: [deny('no-other', [{ from: [{ namespaces: ['other'] }] }])],
    conn: conn(),
    allowed: true,
    reason: 'allowed: no DENY policy matches (shop/no-other) and no ALLOW policy applies',
  },
  {
    case: 'two matching DENY policies: the first by name is reported, whatever the input order',
    policies: [deny('zz-last', [{}]), deny('aa-first', [{ to: [{ ports: [8080] }] }])],
    conn: conn(),
    allowed: false,
    reason: 'denied by DENY policy shop/aa-first (rule 0)',
  },
  {
    case: 'two ALLOW policies, none matches',
    policies: [allow('b', [{ from: [{ namespaces: ['ops'] }] }]), allow('a', [{ to: [{ ports: [9090] }] }])],
    conn: conn(),
    allowed: false,
    reason: 'denied: ALLOW policies shop/a, shop/b apply and none matches',
  },
  {
    case: 'two ALLOW policies, the second matches',
    policies: [allow('a', [{ to: [{ ports: [9090] }] }]), allow('b', [{ from: [{ namespaces: ['shop'] }] }])],
    conn: conn(),
    allowed: true,
    reason: 'allowed by ALLOW policy shop/b (rule 0)',
  },
  {
    case: 'the first matching rule is reported',
    policies: [
      allow('web', [
        { to: [{ ports: [9090] }] },
        { from: [{ namespaces: ['other'] }] },
        { to: [{ ports: [8080] }] },
        {},
      ]),
    ],
    conn: conn(),
    allowed: true,
    reason: 'allowed by ALLOW policy shop/web (rule 2)',
  },
  {
    case: 'a dropped HTTP rule keeps the numbers of the rules after it',
    policies: [allow('web', [NEVER_MATCHING_RULE, { from: [{ namespaces: ['shop'] }] }])],
    conn: conn(),
    allowed: true,
    reason: 'allowed by ALLOW policy shop/web (rule 1)',
  },
  {
    case: 'a policy of only dropped HTTP rules allows nothing',
    policies: [allow('web', [NEVER_MATCHING_RULE])],
    conn: conn(),
    allowed: false,
    reason: 'denied: ALLOW policy shop/web applies and none of its rules matches',
  },
  // Principals and namespaces
  {
    case: 'namespace ALLOW from the same namespace',
    policies: [allow('from-shop', [{ from: [{ namespaces: ['shop'] }] }])],
    conn: conn(),
    allowed: true,
    reason: 'allowed by ALLOW policy shop/from-shop (rule 0)',
  },
  {
    case: 'namespace ALLOW from another namespace',
    policies: [allow('from-shop', [{ from: [{ namespaces: ['shop'] }] }])],
    conn: FROM_OTHER,
    allowed: false,
    reason: 'denied: ALLOW policy shop/from-shop applies and none of its rules matches',
  },
  {
    case: 'exact principal',
    policies: [allow('client', [{ from: [{ principals: [CLIENT] }] }])],
    conn: conn(),
    allowed: true,
    reason: 'allowed by ALLOW policy shop/client (rule 0)',
  },
  {
    case: 'exact principal of someone else',
    policies: [allow('client', [{ from: [{ principals: ['cluster.local/ns/shop/sa/web'] }] }])],
    conn: conn(),
    allowed: false,
    reason: 'denied: ALLOW policy shop/client applies and none of its rules matches',
  },
  {
    case: 'principal prefix*',
    policies: [allow('shop-sas', [{ from: [{ principals: ['cluster.local/ns/shop/*'] }] }])],
    conn: conn(),
    allowed: true,
    reason: 'allowed by ALLOW policy shop/shop-sas (rule 0)',
  },
  {
    case: 'principal *suffix (any trust domain)',
    policies: [allow('client-anywhere', [{ from: [{ principals: ['*/ns/shop/sa/client'] }] }])],
    conn: conn({ srcPrincipal: 'example.org/ns/shop/sa/client' }),
    allowed: true,
    reason: 'allowed by ALLOW policy shop/client-anywhere (rule 0)',
  },
  {
    case: 'principal * needs an identity: plaintext does not match',
    policies: [allow('any-mtls', [{ from: [{ principals: ['*'] }] }])],
    conn: PLAINTEXT,
    allowed: false,
    reason: 'denied: ALLOW policy shop/any-mtls applies and none of its rules matches',
  },
  {
    case: 'principal * with mTLS',
    policies: [allow('any-mtls', [{ from: [{ principals: ['*'] }] }])],
    conn: FROM_OTHER,
    allowed: true,
    reason: 'allowed by ALLOW policy shop/any-mtls (rule 0)',
  },
  {
    case: 'DENY notPrincipals ["*"] denies plaintext',
    policies: [deny('require-mtls', [{ from: [{ notPrincipals: ['*'] }] }])],
    conn: PLAINTEXT,
    allowed: false,
    reason: 'denied by DENY policy shop/require-mtls (rule 0)',
  },
  {
    case: 'DENY notPrincipals ["*"] lets mTLS through',
    policies: [deny('require-mtls', [{ from: [{ notPrincipals: ['*'] }] }])],
    conn: conn(),
    allowed: true,
    reason: 'allowed: no DENY policy matches (shop/require-mtls) and no ALLOW policy applies',
  },
  {
    case: 'ALLOW notPrincipals excludes the named peer',
    policies: [allow('not-client', [{ from: [{ notPrincipals: ['*/sa/client'] }] }])],
    conn: conn(),
    allowed: false,
    reason: 'denied: ALLOW policy shop/not-client applies and none of its rules matches',
  },
  {
    case: 'ALLOW notNamespaces lets other namespaces in',
    policies: [allow('not-other', [{ from: [{ notNamespaces: ['other'] }] }])],
    conn: conn(),
    allowed: true,
    reason: 'allowed by ALLOW policy shop/not-other (rule 0)',
  },
  {
    case: 'namespaces ["*"] needs an identity',
    policies: [allow('any-ns', [{ from: [{ namespaces: ['*'] }] }])],
    conn: PLAINTEXT,
    allowed: false,
    reason: 'denied: ALLOW policy shop/any-ns applies and none of its rules matches',
  },
  {
    case: 'notNamespaces matches plaintext (no namespace is not "other")',
    policies: [allow('not-other', [{ from: [{ notNamespaces: ['other'] }] }])],
    conn: PLAINTEXT,
    allowed: true,
    reason: 'allowed by ALLOW policy shop/not-other (rule 0)',
  },
  {
    case: 'namespace prefix*',
    policies: [allow('team', [{ from: [{ namespaces: ['oth*'] }] }])],
    conn: FROM_OTHER,
    allowed: true,
    reason: 'allowed by ALLOW policy shop/team (rule 0)',
  },
  // IP blocks
  {
    case: 'ipBlocks CIDR contains the source',
    policies: [allow('pods', [{ from: [{ ipBlocks: ['10.0.0.0/16'] }] }])],
    conn: PLAINTEXT,
    allowed: true,
    reason: 'allowed by ALLOW policy shop/pods (rule 0)',
  },
  {
    case: 'ipBlocks single address',
    policies: [allow('one', [{ from: [{ ipBlocks: ['10.0.0.1', '10.0.1.5'] }] }])],
    conn: conn(),
    allowed: true,
    reason: 'allowed by ALLOW policy shop/one (rule 0)',
  },
  {
    case: 'ipBlocks that do not contain the source',
    policies: [allow('office', [{ from: [{ ipBlocks: ['203.0.113.0/24'] }] }])],
    conn: conn(),
    allowed: false,
    reason: 'denied: ALLOW policy shop/office applies and none of its rules matches',
  },
  {
    case: 'an IPv6 block never contains an IPv4 source',
    policies: [allow('v6', [{ from: [{ ipBlocks: ['::/0'] }] }])],
    conn: conn(),
    allowed: false,
    reason: 'denied: ALLOW policy shop/v6 applies and none of its rules matches',
  },
  {
    case: 'an IPv4-mapped IPv6 source is its IPv4 address',
    policies: [allow('pods', [{ from: [{ ipBlocks: ['10.0.0.0/8'] }] }])],
    conn: conn({ srcIp: '::ffff:10.0.1.5' }),
    allowed: true,
    reason: 'allowed by ALLOW policy shop/pods (rule 0)',
  },
  {
    case: 'IPv6 source in an IPv6 block',
    policies: [deny('ula', [{ from: [{ ipBlocks: ['fd00::/8'] }] }])],
    conn: conn({ srcIp: 'fd00:10::5', dstIp: 'fd00:20::7' }),
    allowed: false,
    reason: 'denied by DENY policy shop/ula (rule 0)',
  },
  {
    case: 'notIpBlocks excludes the source',
    policies: [allow('not-node', [{ from: [{ ipBlocks: ['10.0.0.0/8'], notIpBlocks: ['10.0.1.0/24'] }] }])],
    conn: conn(),
    allowed: false,
    reason: 'denied: ALLOW policy shop/not-node applies and none of its rules matches',
  },
  // Ports
  {
    case: 'ports include the destination port',
    policies: [allow('http', [{ to: [{ ports: [80, 8080] }] }])],
    conn: conn(),
    allowed: true,
    reason: 'allowed by ALLOW policy shop/http (rule 0)',
  },
  {
    case: 'ports do not include the destination port',
    policies: [allow('http', [{ to: [{ ports: [80] }] }])],
    conn: conn(),
    allowed: false,
    reason: 'denied: ALLOW policy shop/http applies and none of its rules matches',
  },
  {
    case: 'notPorts',
    policies: [deny('not-health', [{ to: [{ notPorts: [15021] }] }])],
    conn: conn(),
    allowed: false,
    reason: 'denied by DENY policy shop/not-health (rule 0)',
  },
  {
    case: 'notPorts that name the destination port',
    policies: [deny('not-8080', [{ to: [{ notPorts: [8080] }] }])],
    conn: conn(),
    allowed: true,
    reason: 'allowed: no DENY policy matches (shop/not-8080) and no ALLOW policy applies',
  },
  {
    case: 'an operation without fields (a stripped HTTP DENY) matches any port',
    policies: [deny('no-posts', [{ from: [{ namespaces: ['shop'] }], to: [{}] }])],
    conn: conn({ dstPort: 5432 }),
    allowed: false,
    reason: 'denied by DENY policy shop/no-posts (rule 0)',
  },
  // Combining parts
  {
    case: 'from entries are alternatives',
    policies: [allow('two', [{ from: [{ namespaces: ['ops'] }, { ipBlocks: ['10.0.1.0/24'] }] }])],
    conn: PLAINTEXT,
    allowed: true,
    reason: 'allowed by ALLOW policy shop/two (rule 0)',
  },
  {
    case: 'fields of one source must all match',
    policies: [allow('both', [{ from: [{ namespaces: ['shop'], ipBlocks: ['10.9.0.0/16'] }] }])],
    conn: conn(),
    allowed: false,
    reason: 'denied: ALLOW policy shop/both applies and none of its rules matches',
  },
  {
    case: 'from and to must both match',
    policies: [allow('shop-http', [{ from: [{ namespaces: ['shop'] }], to: [{ ports: [80] }] }])],
    conn: conn(),
    allowed: false,
    reason: 'denied: ALLOW policy shop/shop-http applies and none of its rules matches',
  },
  // Conditions
  {
    case: 'when source.namespace values',
    policies: [allow('w', [{ when: [{ key: 'source.namespace', values: ['other', 'shop'] }] }])],
    conn: conn(),
    allowed: true,
    reason: 'allowed by ALLOW policy shop/w (rule 0)',
  },
  {
    case: 'when source.principal notValues',
    policies: [allow('w', [{ when: [{ key: 'source.principal', notValues: ['*/sa/client'] }] }])],
    conn: conn(),
    allowed: false,
    reason: 'denied: ALLOW policy shop/w applies and none of its rules matches',
  },
  {
    case: 'when destination.port notValues',
    policies: [deny('w', [{ when: [{ key: 'destination.port', notValues: ['8080', '8443'] }] }])],
    conn: conn({ dstPort: 22 }),
    allowed: false,
    reason: 'denied by DENY policy shop/w (rule 0)',
  },
  {
    case: 'when destination.ip CIDR',
    policies: [allow('w', [{ when: [{ key: 'destination.ip', values: ['10.0.2.0/24'] }] }])],
    conn: conn(),
    allowed: true,
    reason: 'allowed by ALLOW policy shop/w (rule 0)',
  },
  {
    case: 'when conditions must all match',
    policies: [
      allow('w', [
        {
          when: [
            { key: 'source.principal', values: [CLIENT] },
            { key: 'source.ip', notValues: ['10.0.1.0/24'] },
          ],
        },
      ]),
    ],
    conn: conn(),
    allowed: false,
    reason: 'denied: ALLOW policy shop/w applies and none of its rules matches',
  },
  {
    case: 'when with values and notValues: in one, not in the other',
    policies: [
      allow('w', [{ when: [{ key: 'source.ip', values: ['10.0.0.0/8'], notValues: ['10.0.9.0/24'] }] }]),
    ],
    conn: conn(),
    allowed: true,
    reason: 'allowed by ALLOW policy shop/w (rule 0)',
  },
  {
    case: 'when source.namespace with plaintext',
    policies: [allow('w', [{ when: [{ key: 'source.namespace', values: ['*'] }] }])],
    conn: PLAINTEXT,
    allowed: false,
    reason: 'denied: ALLOW policy shop/w applies and none of its rules matches',
  },
];

describe('authorize', () => {
  test.each(rows)('$case', (row) => {
    const d = authorize(row.policies, row.conn, row.root);
    expect({ allowed: d.allowed, reason: d.reason }).toEqual({ allowed: row.allowed, reason: row.reason });
    if (row.applicable !== undefined) expect(d.applicable).toEqual(row.applicable);
  });

  test('matched names the policy, action and rule', () => {
    const d = authorize([allow('web', [{ to: [{ ports: [1] }] }, {}])], conn());
    expect(d.matched).toEqual({ policy: 'shop/web', action: 'ALLOW', rule: 1 });
    expect(authorize([allow('web', [])], conn()).matched).toBeUndefined();
  });
});

describe('stringMatches', () => {
  test.each<[string, string | undefined, boolean]>([
    ['abc', 'abc', true],
    ['abc', 'abcd', false],
    ['abc*', 'abcd', true],
    ['abc*', 'abc', true],
    ['*abc', 'xabc', true],
    ['*abc', 'abcx', false],
    ['*', 'x', true],
    ['*', '', false],
    ['*', undefined, false],
    ['abc', undefined, false],
  ])('%s ~ %s is %s', (pattern, value, want) => {
    expect(stringMatches(pattern, value)).toBe(want);
  });

  test.each<[string | undefined, string | undefined]>([
    ['cluster.local/ns/shop/sa/web', 'shop'],
    ['example.org/ns/a-b/sa/x.y', 'a-b'],
    ['shop/web', undefined],
    [undefined, undefined],
  ])('namespace of %s is %s', (principal, ns) => {
    expect(namespaceOfPrincipal(principal)).toBe(ns);
  });
});

function pa(
  name: string,
  o: {
    ns?: string;
    selector?: Record<string, string>;
    mode?: MtlsMode;
    portLevel?: Record<string, MtlsMode>;
  } = {},
): PeerAuthentication {
  return {
    kind: 'PeerAuthentication',
    namespace: o.ns ?? 'shop',
    name,
    ...(o.selector === undefined ? {} : { selector: o.selector }),
    ...(o.mode === undefined ? {} : { mode: o.mode }),
    ...(o.portLevel === undefined ? {} : { portLevel: o.portLevel }),
  };
}

const MESH_STRICT = pa('default', { ns: 'ambit-system', mode: 'STRICT' });

describe('mtlsMode', () => {
  test.each<{
    case: string;
    policies: PeerAuthentication[];
    port?: number;
    dst?: { namespace: string; labels: Record<string, string> };
    root?: string;
    want: { mode: MtlsMode; from?: string };
  }>([
    { case: 'no policy: PERMISSIVE', policies: [], want: { mode: 'PERMISSIVE' } },
    {
      case: 'mesh-wide STRICT',
      policies: [MESH_STRICT],
      want: { mode: 'STRICT', from: 'ambit-system/default' },
    },
    {
      case: 'mesh-wide DISABLE',
      policies: [pa('default', { ns: 'ambit-system', mode: 'DISABLE' })],
      want: { mode: 'DISABLE', from: 'ambit-system/default' },
    },
    {
      case: 'namespace PERMISSIVE overrides mesh STRICT',
      policies: [MESH_STRICT, pa('ns', { mode: 'PERMISSIVE' })],
      want: { mode: 'PERMISSIVE', from: 'shop/ns' },
    },
    {
      case: 'namespace UNSET inherits mesh STRICT',
      policies: [MESH_STRICT, pa('ns')],
      want: { mode: 'STRICT', from: 'ambit-system/default' },
    },
    {
      case: "another namespace's policy does not apply",
      policies: [pa('ns', { ns: 'other', mode: 'STRICT' })],
      want: { mode: 'PERMISSIVE' },
    },
    {
      case: 'workload policy overrides namespace',
      policies: [pa('ns', { mode: 'STRICT' }), pa('web', { selector: { app: 'web' }, mode: 'PERMISSIVE' })],
      want: { mode: 'PERMISSIVE', from: 'shop/web' },
    },
    {
      case: 'workload policy whose selector does not match',
      policies: [pa('ns', { mode: 'STRICT' }), pa('api', { selector: { app: 'api' }, mode: 'PERMISSIVE' })],
      want: { mode: 'STRICT', from: 'shop/ns' },
    },
    {
      case: 'workload UNSET with a port level: the port uses it',
      policies: [
        pa('ns', { mode: 'STRICT' }),
        pa('web', { selector: { app: 'web' }, portLevel: { '8080': 'PERMISSIVE' } }),
      ],
      port: 8080,
      want: { mode: 'PERMISSIVE', from: 'shop/web' },
    },
    {
      case: 'workload UNSET with a port level: other ports inherit the namespace',
      policies: [
        pa('ns', { mode: 'STRICT' }),
        pa('web', { selector: { app: 'web' }, portLevel: { '8080': 'PERMISSIVE' } }),
      ],
      port: 9090,
      want: { mode: 'STRICT', from: 'shop/ns' },
    },
    {
      case: 'workload STRICT with a DISABLE port',
      policies: [pa('web', { selector: { app: 'web' }, mode: 'STRICT', portLevel: { '15000': 'DISABLE' } })],
      port: 15000,
      want: { mode: 'DISABLE', from: 'shop/web' },
    },
    {
      case: 'workload PERMISSIVE with a STRICT port, under a permissive mesh',
      policies: [
        pa('web', { selector: { app: 'web' }, mode: 'PERMISSIVE', portLevel: { '8080': 'STRICT' } }),
      ],
      want: { mode: 'STRICT', from: 'shop/web' },
    },
    {
      case: 'two namespace policies: the name that sorts first wins, whatever the order',
      policies: [pa('zz', { mode: 'PERMISSIVE' }), pa('aa', { mode: 'STRICT' })],
      want: { mode: 'STRICT', from: 'shop/aa' },
    },
    {
      case: 'two workload policies: the name that sorts first wins, even if it is UNSET',
      policies: [
        pa('ns', { mode: 'STRICT' }),
        pa('b-web', { selector: { app: 'web' }, mode: 'PERMISSIVE' }),
        pa('a-web', { selector: { version: 'v1' } }),
      ],
      want: { mode: 'STRICT', from: 'shop/ns' },
    },
    {
      case: 'two mesh policies: the name that sorts first wins',
      policies: [
        pa('strict', { ns: 'ambit-system', mode: 'STRICT' }),
        pa('loose', { ns: 'ambit-system', mode: 'PERMISSIVE' }),
      ],
      want: { mode: 'PERMISSIVE', from: 'ambit-system/loose' },
    },
    {
      case: 'a selector policy in the root namespace does not reach other namespaces',
      policies: [pa('web', { ns: 'ambit-system', selector: { app: 'web' }, mode: 'STRICT' })],
      want: { mode: 'PERMISSIVE' },
    },
    {
      case: 'a selector policy in the root namespace selects root-namespace workloads',
      policies: [
        MESH_STRICT,
        pa('agent', { ns: 'ambit-system', selector: { app: 'agent' }, mode: 'PERMISSIVE' }),
      ],
      dst: { namespace: 'ambit-system', labels: { app: 'agent' } },
      want: { mode: 'PERMISSIVE', from: 'ambit-system/agent' },
    },
    {
      case: 'a workload in the root namespace gets the mesh policy',
      policies: [MESH_STRICT],
      dst: { namespace: 'ambit-system', labels: {} },
      want: { mode: 'STRICT', from: 'ambit-system/default' },
    },
    {
      case: 'every level UNSET: PERMISSIVE',
      policies: [pa('mesh', { ns: 'ambit-system' }), pa('ns'), pa('web', { selector: { app: 'web' } })],
      want: { mode: 'PERMISSIVE' },
    },
    {
      case: 'another root namespace can be configured',
      policies: [MESH_STRICT, pa('default', { ns: 'istio-system', mode: 'DISABLE' })],
      root: 'istio-system',
      want: { mode: 'DISABLE', from: 'istio-system/default' },
    },
  ])('$case', (row) => {
    expect(mtlsMode(row.policies, row.dst ?? WEB, row.port ?? 8080, row.root)).toEqual(row.want);
  });
});
