import { describe, expect, test } from 'vitest';
import { Fields, type IssueSink } from '../../src/config/field-reader.js';
import { formatIssue, formatPath } from '../../src/config/issue.js';
import { parseManifestTexts } from '../../src/manifests/load-manifests.js';
import { parseAuthorizationPolicy } from '../../src/policy/parse-authorization-policy.js';
import { parsePeerAuthentication } from '../../src/policy/parse-peer-authentication.js';
import { NEVER_MATCHING_RULE } from '../../src/policy/types.js';

const OPTS = { requireCommand: true, nodeNames: ['node-1'] } as const;
const SHOP = 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n';

/** Strips the indentation of a template literal that starts with a newline. */
function dedent(text: string): string {
  if (!text.startsWith('\n')) return text;
  const lines = text.slice(1).split('\n');
  const indent = Math.min(
    ...lines.filter((l) => l.trim() !== '').map((l) => l.length - l.trimStart().length),
  );
  return lines
    .map((l) => l.slice(indent))
    .join('\n')
    .replace(/[ ]+$/, '');
}

/**
 * A policy object in shop whose spec starts on line 7 of p.yaml, so that spec line n (from 1) is
 * reported as p.yaml:(6 + n).
 */
function policy(kind: string, spec: string): string {
  const body = dedent(spec)
    .split('\n')
    .map((l) => (l === '' ? l : `  ${l}`))
    .join('\n');
  return `apiVersion: security.ambit.dev/v1alpha1\nkind: ${kind}\nmetadata:\n  name: p\n  namespace: shop\nspec:\n${body}`;
}

function load(kind: string, spec: string) {
  const { manifests, issues } = parseManifestTexts(
    [
      { file: 'ns.yaml', text: SHOP },
      { file: 'p.yaml', text: policy(kind, spec) },
    ],
    OPTS,
  );
  return {
    kept: manifests.kept.filter((k) => k.kind === kind).length,
    errors: issues.filter((i) => i.severity === 'error').map(formatIssue),
    warnings: issues.filter((i) => i.severity === 'warning').map(formatIssue),
  };
}

const AP = 'AuthorizationPolicy';
const PA = 'PeerAuthentication';

interface Row {
  readonly rule: string;
  readonly kind?: string;
  readonly spec: string;
  /** The exact `file:line path: message` line. */
  readonly issue: string;
}

// Each row is one policy with one mistake: it is rejected, and the mistake is reported where it is.
const errorRows: Row[] = [
  {
    rule: 'action AUDIT',
    spec: 'action: AUDIT',
    issue:
      'p.yaml:7 spec.action: "AUDIT" is enforced by waypoints only: set targetRefs, or use ALLOW or DENY',
  },
  {
    rule: 'action CUSTOM',
    spec: 'action: CUSTOM',
    issue:
      'p.yaml:7 spec.action: "CUSTOM" is not supported by Ambit (use ALLOW, DENY, or AUDIT with targetRefs)',
  },
  {
    rule: 'action in lowercase',
    spec: 'action: deny',
    issue: 'p.yaml:7 spec.action: "deny" is not one of ALLOW, DENY, AUDIT',
  },
  {
    rule: 'provider (CUSTOM only)',
    spec: `
      action: DENY
      provider: {name: ext-authz}
    `,
    issue: 'p.yaml:8 spec.provider: belongs to action CUSTOM, which is not supported by Ambit',
  },
  {
    rule: 'targetRefs with a selector',
    spec: `
      targetRefs: [{kind: Service, name: web}]
      selector: {matchLabels: {app: web}}
    `,
    issue:
      'p.yaml:8 spec.selector: cannot be set together with targetRefs; a policy selects workloads or targets a waypoint',
  },
  {
    rule: 'targetRefs to a kind a waypoint policy cannot attach to',
    spec: `
      targetRefs: [{kind: Pod, name: web}]
    `,
    issue: 'p.yaml:7 spec.targetRefs[0].kind: "Pod" is not one of Service, Gateway',
  },
  {
    rule: 'targetRefs to a Gateway without its group',
    spec: `
      targetRefs: [{kind: Gateway, name: waypoint}]
    `,
    issue: 'p.yaml:7 spec.targetRefs[0].group: "" is not the group of a Gateway (gateway.networking.k8s.io)',
  },
  {
    rule: 'targetRefs to another namespace',
    spec: `
      targetRefs: [{kind: Service, name: web, namespace: other}]
    `,
    issue:
      'p.yaml:7 spec.targetRefs[0].namespace: "other" is not the policy\'s namespace; a policy targets only its own namespace',
  },
  {
    rule: 'targetRefs empty',
    spec: `
      targetRefs: []
    `,
    issue: 'p.yaml:7 spec.targetRefs: must not be empty; leave it out for a policy node proxies enforce',
  },
  {
    rule: 'a waypoint policy with a request key the waypoint does not read',
    spec: `
      targetRefs: [{kind: Service, name: web}]
      rules:
        - when: [{key: request.auth.audiences, values: [x]}]
    `,
    issue:
      'p.yaml:9 spec.rules[0].when[0].key: "request.auth.audiences" is not a condition key the waypoint reads (request.headers[<name>], request.auth.claims[<claim>], request.auth.principal, or an L4 key: source.ip, source.namespace, source.principal, destination.ip, destination.port)',
  },
  {
    rule: 'a waypoint policy with a method that is not one',
    spec: `
      targetRefs: [{kind: Service, name: web}]
      rules:
        - to: [{operation: {methods: ["GET /"]}}]
    `,
    issue:
      'p.yaml:9 spec.rules[0].to[0].operation.methods[0]: "GET /" is not an HTTP method (GET, POST, ...); methods match exactly',
  },
  {
    rule: 'a waypoint policy with a path pattern Istio does not have',
    spec: `
      targetRefs: [{kind: Service, name: web}]
      rules:
        - to: [{operation: {paths: ["/a/*/b"]}}]
    `,
    issue:
      'p.yaml:9 spec.rules[0].to[0].operation.paths[0]: "/a/*/b" has "*" inside it; Istio matching allows only exact values, "prefix*", "*suffix" and "*"',
  },
  {
    rule: 'unknown spec field (a typo would widen the policy)',
    spec: `
      rule:
        - from: [{source: {namespaces: [shop]}}]
    `,
    issue:
      'p.yaml:7 spec.rule: unknown field (known fields: selector, action, rules, targetRef, targetRefs, provider); a security policy with a field Ambit does not read is rejected',
  },
  {
    rule: 'selector with matchExpressions',
    spec: `
      selector:
        matchExpressions: [{key: app, operator: In, values: [web]}]
    `,
    issue:
      'p.yaml:8 spec.selector.matchExpressions: unknown field (known fields: matchLabels); a security policy with a field Ambit does not read is rejected',
  },
  {
    rule: 'selector label value',
    spec: `
      selector:
        matchLabels: {app: "web server"}
    `,
    issue:
      'p.yaml:8 spec.selector.matchLabels.app: "web server" is not a valid label value (letters, digits, "-", "_" and ".")',
  },
  {
    rule: 'rules is not a list',
    spec: 'rules: {from: []}',
    issue: 'p.yaml:7 spec.rules: expected a list, got a mapping',
  },
  {
    rule: 'unknown rule field',
    spec: `
      rules:
        - form: [{source: {namespaces: [shop]}}]
    `,
    issue:
      'p.yaml:8 spec.rules[0].form: unknown field (known fields: from, to, when); a security policy with a field Ambit does not read is rejected',
  },
  {
    rule: 'empty from',
    spec: `
      rules:
        - from: []
    `,
    issue: 'p.yaml:8 spec.rules[0].from: must not be empty; leave it out to match any source',
  },
  {
    rule: 'from entry without source',
    spec: `
      rules:
        - from:
            - {}
    `,
    issue: 'p.yaml:9 spec.rules[0].from[0].source: is required',
  },
  {
    rule: 'empty source',
    spec: `
      rules:
        - from:
            - source: {}
    `,
    issue:
      'p.yaml:9 spec.rules[0].from[0].source: must not be empty; leave out the from entry to match any source',
  },
  {
    rule: 'source with only empty lists',
    spec: `
      rules:
        - from:
            - source: {principals: []}
    `,
    issue:
      'p.yaml:9 spec.rules[0].from[0].source: must not be empty; leave out the from entry to match any source',
  },
  {
    rule: 'unknown source field',
    spec: `
      rules:
        - from:
            - source:
                principal: [cluster.local/ns/shop/sa/web]
                namespaces: [shop]
    `,
    issue:
      'p.yaml:10 spec.rules[0].from[0].source.principal: unknown field (known fields: principals, notPrincipals, namespaces, notNamespaces, ipBlocks, notIpBlocks, remoteIpBlocks, notRemoteIpBlocks, serviceAccounts, notServiceAccounts, requestPrincipals, notRequestPrincipals); a security policy with a field Ambit does not read is rejected',
  },
  {
    rule: '"*" inside a principal',
    spec: `
      rules:
        - from:
            - source:
                principals: [cluster.local/ns/*/sa/web]
    `,
    issue:
      'p.yaml:10 spec.rules[0].from[0].source.principals[0]: "cluster.local/ns/*/sa/web" has "*" inside it; Istio matching allows only exact values, "prefix*", "*suffix" and "*"',
  },
  {
    rule: '"*" at both ends',
    spec: `
      rules:
        - from:
            - source:
                notNamespaces: ["*shop*"]
    `,
    issue:
      'p.yaml:10 spec.rules[0].from[0].source.notNamespaces[0]: "*shop*" has "*" inside it; Istio matching allows only exact values, "prefix*", "*suffix" and "*"',
  },
  {
    rule: 'empty principal',
    spec: `
      rules:
        - from:
            - source:
                principals: [""]
    `,
    issue: 'p.yaml:10 spec.rules[0].from[0].source.principals[0]: "" is empty',
  },
  {
    rule: 'namespace that YAML reads as a number',
    spec: `
      rules:
        - from:
            - source:
                namespaces: [2024]
    `,
    issue: 'p.yaml:10 spec.rules[0].from[0].source.namespaces[0]: 2024 is not a string (quote it)',
  },
  {
    rule: 'ipBlocks entry that is not an address',
    spec: `
      rules:
        - from:
            - source:
                ipBlocks: [10.0.0.0/8, 10.0.0.300]
    `,
    issue:
      'p.yaml:10 spec.rules[0].from[0].source.ipBlocks[1]: "10.0.0.300" is not an IP address or CIDR (203.0.113.4, 10.0.0.0/8, fd00::/64)',
  },
  {
    rule: 'notIpBlocks prefix too long',
    spec: `
      rules:
        - from:
            - source:
                notIpBlocks: [10.0.0.0/33]
    `,
    issue:
      'p.yaml:10 spec.rules[0].from[0].source.notIpBlocks[0]: "10.0.0.0/33" is not an IP address or CIDR (203.0.113.4, 10.0.0.0/8, fd00::/64)',
  },
  {
    rule: 'remoteIpBlocks are checked like ipBlocks',
    spec: `
      rules:
        - from:
            - source:
                remoteIpBlocks: [office]
    `,
    issue:
      'p.yaml:10 spec.rules[0].from[0].source.remoteIpBlocks[0]: "office" is not an IP address or CIDR (203.0.113.4, 10.0.0.0/8, fd00::/64)',
  },
  {
    rule: 'serviceAccounts without a namespace',
    spec: `
      rules:
        - from:
            - source:
                serviceAccounts: [web]
    `,
    issue:
      'p.yaml:10 spec.rules[0].from[0].source.serviceAccounts[0]: "web" is not <namespace>/<service-account>',
  },
  {
    rule: 'serviceAccounts together with principals',
    spec: `
      rules:
        - from:
            - source:
                principals: [cluster.local/ns/shop/sa/web]
                serviceAccounts: [shop/web]
    `,
    issue:
      'p.yaml:11 spec.rules[0].from[0].source.serviceAccounts: cannot be set together with principals; both name the peer identity',
  },
  {
    rule: 'empty to',
    spec: `
      rules:
        - to: []
    `,
    issue: 'p.yaml:8 spec.rules[0].to: must not be empty; leave it out to match any port',
  },
  {
    rule: 'empty operation',
    spec: `
      rules:
        - to:
            - operation: {}
    `,
    issue:
      'p.yaml:9 spec.rules[0].to[0].operation: must not be empty; leave out the to entry to match any port',
  },
  {
    rule: 'named port',
    spec: `
      rules:
        - to:
            - operation: {ports: [http]}
    `,
    issue: 'p.yaml:9 spec.rules[0].to[0].operation.ports[0]: "http" is not a port number (1 to 65535)',
  },
  {
    rule: 'port 0',
    spec: `
      rules:
        - to:
            - operation:
                ports: ["0"]
    `,
    issue: 'p.yaml:10 spec.rules[0].to[0].operation.ports[0]: "0" is not a port number (1 to 65535)',
  },
  {
    rule: 'notPorts above 65535',
    spec: `
      rules:
        - to:
            - operation:
                notPorts: [8080, 70000]
    `,
    issue: 'p.yaml:10 spec.rules[0].to[0].operation.notPorts[1]: 70000 is not a port number (1 to 65535)',
  },
  {
    rule: 'fractional port',
    spec: `
      rules:
        - to:
            - operation:
                ports: [80.5]
    `,
    issue: 'p.yaml:10 spec.rules[0].to[0].operation.ports[0]: 80.5 is not a port number (1 to 65535)',
  },
  {
    rule: 'unknown operation field',
    spec: `
      rules:
        - to:
            - operation:
                port: ["80"]
                ports: ["80"]
    `,
    issue:
      'p.yaml:10 spec.rules[0].to[0].operation.port: unknown field (known fields: ports, notPorts, hosts, notHosts, methods, notMethods, paths, notPaths); a security policy with a field Ambit does not read is rejected',
  },
  {
    rule: 'condition without key',
    spec: `
      rules:
        - when:
            - values: [shop]
    `,
    issue: 'p.yaml:9 spec.rules[0].when[0].key: is required',
  },
  {
    rule: 'condition without values or notValues',
    spec: `
      rules:
        - when:
            - key: source.namespace
    `,
    issue: 'p.yaml:9 spec.rules[0].when[0]: sets neither values nor notValues; at least one is required',
  },
  {
    rule: 'condition key that Istio does not have',
    spec: `
      rules:
        - when:
            - key: source.user
              values: [web]
    `,
    issue:
      'p.yaml:9 spec.rules[0].when[0].key: "source.user" is not a condition key Ambit knows (L4 keys: source.ip, source.namespace, source.principal, destination.ip, destination.port; request.* keys are HTTP-only)',
  },
  {
    rule: 'destination.port value',
    spec: `
      rules:
        - when:
            - key: destination.port
              values: ["8080", "http"]
    `,
    issue: 'p.yaml:10 spec.rules[0].when[0].values[1]: "http" is not a port number (1 to 65535)',
  },
  {
    rule: 'source.ip value',
    spec: `
      rules:
        - when:
            - key: source.ip
              notValues: [10.1.0.0/16, 10.2.0.0/ab]
    `,
    issue:
      'p.yaml:10 spec.rules[0].when[0].notValues[1]: "10.2.0.0/ab" is not an IP address or CIDR (203.0.113.4, 10.0.0.0/8, fd00::/64)',
  },
  {
    rule: 'destination.ip value',
    spec: `
      rules:
        - when:
            - key: destination.ip
              values: [web]
    `,
    issue:
      'p.yaml:10 spec.rules[0].when[0].values[0]: "web" is not an IP address or CIDR (203.0.113.4, 10.0.0.0/8, fd00::/64)',
  },
  {
    rule: 'source.principal value with "*" inside',
    spec: `
      rules:
        - when:
            - key: source.principal
              values: ["cluster.local/*/sa/web"]
    `,
    issue:
      'p.yaml:10 spec.rules[0].when[0].values[0]: "cluster.local/*/sa/web" has "*" inside it; Istio matching allows only exact values, "prefix*", "*suffix" and "*"',
  },
  {
    rule: 'unknown condition field',
    spec: `
      rules:
        - when:
            - key: source.ip
              value: [10.0.0.1]
              values: [10.0.0.2]
    `,
    issue:
      'p.yaml:10 spec.rules[0].when[0].value: unknown field (known fields: key, values, notValues); a security policy with a field Ambit does not read is rejected',
  },
  {
    rule: 'an error in a rule that is HTTP-only still rejects',
    spec: `
      rules:
        - to:
            - operation:
                methods: [GET]
                ports: [none]
    `,
    issue: 'p.yaml:11 spec.rules[0].to[0].operation.ports[0]: "none" is not a port number (1 to 65535)',
  },
  {
    rule: 'spec is a list',
    spec: '- action: DENY',
    issue: 'p.yaml:6 spec: expected a mapping, got a list',
  },
  {
    rule: 'PeerAuthentication: unknown mode',
    kind: PA,
    spec: `
      mtls:
        mode: MUTUAL
    `,
    issue: 'p.yaml:8 spec.mtls.mode: "MUTUAL" is not one of STRICT, PERMISSIVE, DISABLE, UNSET',
  },
  {
    rule: 'PeerAuthentication: portLevelMtls without a selector',
    kind: PA,
    spec: `
      mtls: {mode: STRICT}
      portLevelMtls:
        8080: {mode: PERMISSIVE}
    `,
    issue:
      'p.yaml:8 spec.portLevelMtls: needs a selector: Istio applies port-level mTLS only to selected workloads',
  },
  {
    rule: 'PeerAuthentication: portLevelMtls with empty matchLabels (no selector)',
    kind: PA,
    spec: `
      selector: {matchLabels: {}}
      portLevelMtls:
        8080: {mode: PERMISSIVE}
    `,
    issue:
      'p.yaml:8 spec.portLevelMtls: needs a selector: Istio applies port-level mTLS only to selected workloads',
  },
  {
    rule: 'PeerAuthentication: named port',
    kind: PA,
    spec: `
      selector: {matchLabels: {app: web}}
      portLevelMtls:
        http: {mode: PERMISSIVE}
    `,
    issue: 'p.yaml:9 spec.portLevelMtls.http: key "http" is not a port number (1 to 65535)',
  },
  {
    rule: 'PeerAuthentication: port 0',
    kind: PA,
    spec: `
      selector: {matchLabels: {app: web}}
      portLevelMtls:
        0: {mode: PERMISSIVE}
    `,
    issue: 'p.yaml:9 spec.portLevelMtls["0"]: key "0" is not a port number (1 to 65535)',
  },
  {
    rule: 'PeerAuthentication: port-level mode',
    kind: PA,
    spec: `
      selector: {matchLabels: {app: web}}
      portLevelMtls:
        "9090": {mode: OFF}
    `,
    issue: 'p.yaml:9 spec.portLevelMtls["9090"].mode: "OFF" is not one of STRICT, PERMISSIVE, DISABLE, UNSET',
  },
  {
    rule: 'PeerAuthentication: port-level entry is not a mapping',
    kind: PA,
    spec: `
      selector: {matchLabels: {app: web}}
      portLevelMtls:
        "9090": STRICT
    `,
    issue: 'p.yaml:9 spec.portLevelMtls["9090"]: expected a mapping, got "STRICT"',
  },
  {
    rule: 'PeerAuthentication: unknown mtls field',
    kind: PA,
    spec: `
      mtls: {mod: STRICT}
    `,
    issue:
      'p.yaml:7 spec.mtls.mod: unknown field (known fields: mode); a security policy with a field Ambit does not read is rejected',
  },
  {
    rule: 'PeerAuthentication: unknown spec field',
    kind: PA,
    spec: `
      portLevelMTLS: {}
    `,
    issue:
      'p.yaml:7 spec.portLevelMTLS: unknown field (known fields: selector, mtls, portLevelMtls); a security policy with a field Ambit does not read is rejected',
  },
];

/**
 * Rows whose policy may be a DENY (its action is CUSTOM or cannot be read): local mode still serves it
 * to its API, so that the control plane enforces it failing closed (src/policy/fail-closed.ts).
 */
const MAY_DENY = new Set([
  'action CUSTOM',
  'action in lowercase',
  'provider (CUSTOM only)',
  'spec is a list',
]);

describe('policy errors reject the policy', () => {
  test.each(errorRows)('$rule', (row) => {
    const r = load(row.kind ?? AP, row.spec);
    expect(r.errors).toEqual([row.issue]);
    expect(r.kept).toBe(MAY_DENY.has(row.rule) ? 1 : 0);
  });
});

const ALLOW_DROP = 'node proxies enforce L4, so this ALLOW rule is dropped (as ztunnel does)';
const DENY_STRIP =
  'stripped, so this DENY rule applies at L4 to everything else it matches (as ztunnel does)';

interface WarnRow {
  readonly rule: string;
  readonly kind?: string;
  readonly spec: string;
  /** Every warning, exactly. */
  readonly warnings: readonly string[];
}

// Each row is a policy that is kept, with the warnings it must produce.
const warningRows: WarnRow[] = [
  {
    rule: 'ALLOW rule with methods is dropped',
    spec: `
      rules:
        - to:
            - operation:
                ports: ["8080"]
                methods: [GET]
    `,
    warnings: [`p.yaml:11 warning: spec.rules[0].to[0].operation.methods: is HTTP-only; ${ALLOW_DROP}`],
  },
  {
    rule: 'ALLOW rule with hosts and paths in its second to entry: one warning per field',
    spec: `
      rules:
        - to:
            - operation: {ports: ["80"]}
            - operation:
                hosts: [web.shop]
                notPaths: [/admin*]
    `,
    warnings: [
      `p.yaml:11 warning: spec.rules[0].to[1].operation.hosts: is HTTP-only; ${ALLOW_DROP}`,
      `p.yaml:12 warning: spec.rules[0].to[1].operation.notPaths: is HTTP-only; ${ALLOW_DROP}`,
    ],
  },
  {
    rule: 'ALLOW rule with requestPrincipals is dropped',
    spec: `
      rules:
        - from:
            - source:
                requestPrincipals: [issuer.example/*]
    `,
    warnings: [
      `p.yaml:10 warning: spec.rules[0].from[0].source.requestPrincipals: is HTTP-only; ${ALLOW_DROP}`,
    ],
  },
  {
    rule: 'ALLOW rule with a request.* condition is dropped',
    spec: `
      rules:
        - from: [{source: {namespaces: [shop]}}]
        - when:
            - key: request.headers[x-user]
              values: [admin]
    `,
    warnings: [
      `p.yaml:10 warning: spec.rules[1].when[0].key: "request.headers[x-user]" is HTTP-only; ${ALLOW_DROP}`,
    ],
  },
  {
    rule: 'ALLOW rule with connection.sni is dropped',
    spec: `
      rules:
        - when:
            - key: connection.sni
              values: [web.shop.svc]
    `,
    warnings: [
      `p.yaml:9 warning: spec.rules[0].when[0].key: "connection.sni" is in the application's own TLS handshake, which node proxies do not read; ${ALLOW_DROP}`,
    ],
  },
  {
    rule: 'DENY rule with paths is stripped',
    spec: `
      action: DENY
      rules:
        - to:
            - operation:
                paths: [/admin]
                ports: ["8080"]
    `,
    warnings: [`p.yaml:11 warning: spec.rules[0].to[0].operation.paths: is HTTP-only; ${DENY_STRIP}`],
  },
  {
    rule: 'DENY rule with notRequestPrincipals is stripped',
    spec: `
      action: DENY
      rules:
        - from:
            - source:
                namespaces: [other]
                notRequestPrincipals: ["*"]
    `,
    warnings: [
      `p.yaml:12 warning: spec.rules[0].from[0].source.notRequestPrincipals: is HTTP-only; ${DENY_STRIP}`,
    ],
  },
  {
    rule: 'DENY rule with an experimental.* condition is stripped',
    spec: `
      action: DENY
      rules:
        - when:
            - key: experimental.envoy.filters.network.mysql_proxy[db.table]
              values: [users]
    `,
    warnings: [
      `p.yaml:10 warning: spec.rules[0].when[0].key: "experimental.envoy.filters.network.mysql_proxy[db.table]" is HTTP-only; ${DENY_STRIP}`,
    ],
  },
  {
    rule: 'a spiffe:// principal is read without the prefix',
    spec: `
      rules:
        - from:
            - source:
                principals: [spiffe://cluster.local/ns/shop/sa/web]
    `,
    warnings: [
      'p.yaml:10 warning: spec.rules[0].from[0].source.principals[0]: "spiffe://cluster.local/ns/shop/sa/web" is read as "cluster.local/ns/shop/sa/web"; principals are written without "spiffe://"',
    ],
  },
  {
    rule: 'a principal that is not an identity matches no peer',
    spec: `
      rules:
        - from:
            - source:
                notPrincipals: [shop/web]
    `,
    warnings: [
      'p.yaml:10 warning: spec.rules[0].from[0].source.notPrincipals[0]: "shop/web" is not a workload identity (<trust-domain>/ns/<namespace>/sa/<service-account>), so it matches no peer',
    ],
  },
  {
    rule: 'a namespace that is not a namespace name matches no peer',
    spec: `
      rules:
        - when:
            - key: source.namespace
              values: [Shop]
    `,
    warnings: [
      'p.yaml:10 warning: spec.rules[0].when[0].values[0]: "Shop" is not a namespace name, so it matches no peer',
    ],
  },
  {
    rule: 'a DENY policy without rules (matches nothing)',
    spec: `
      action: DENY
    `,
    warnings: [],
  },
  {
    rule: 'empty HTTP-only lists are not HTTP rules',
    spec: `
      rules:
        - to:
            - operation: {ports: ["80"], methods: []}
    `,
    warnings: [],
  },
  {
    rule: 'PeerAuthentication with every field',
    kind: PA,
    spec: `
      selector: {matchLabels: {app: web}}
      mtls: {mode: UNSET}
      portLevelMtls:
        8080: {mode: STRICT}
        "9090": {}
    `,
    warnings: [],
  },
];

describe('warnings keep the policy', () => {
  test.each(warningRows)('$rule', (row) => {
    const r = load(row.kind ?? AP, row.spec);
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual(row.warnings);
    expect(r.kept).toBe(1);
  });

  test('an unknown top-level field is a warning', () => {
    const { manifests, issues } = parseManifestTexts(
      [
        { file: 'ns.yaml', text: SHOP },
        { file: 'p.yaml', text: `${policy(AP, 'action: DENY')}\nspex: {}\n` },
      ],
      OPTS,
    );
    expect(issues.map(formatIssue)).toEqual([
      'p.yaml:8 warning: spex: unknown field (known fields: apiVersion, kind, metadata, spec)',
    ]);
    expect(manifests.kept.map((k) => k.body.spec)).toEqual([{ action: 'DENY' }]);
  });

  test.each([AP, PA])('%s without spec is kept', (kind) => {
    const { manifests, issues } = parseManifestTexts(
      [
        { file: 'ns.yaml', text: SHOP },
        {
          file: 'p.yaml',
          text: `apiVersion: security.ambit.dev/v1alpha1\nkind: ${kind}\nmetadata:\n  name: p\n  namespace: shop\n`,
        },
      ],
      OPTS,
    );
    expect(issues).toEqual([]);
    expect(manifests.kept).toHaveLength(1);
  });
});

/** Parses a spec directly, returning the policy and every issue as `path: message`. */
function direct<T>(
  parse: (f: Fields | undefined, meta: { namespace: string; name: string }) => T,
  spec: unknown,
): { policy: T; issues: string[] } {
  const issues: string[] = [];
  const sink: IssueSink = {
    error: (p, m) => issues.push(`error ${formatPath(p)}: ${m}`),
    warn: (p, m) => issues.push(`warning ${formatPath(p)}: ${m}`),
  };
  const f = spec === undefined ? undefined : Fields.of(spec, ['spec'], sink);
  return { policy: parse(f, { namespace: 'shop', name: 'p' }), issues };
}

const HEAD = { kind: 'AuthorizationPolicy', namespace: 'shop', name: 'p' } as const;

describe('AuthorizationPolicy domain values', () => {
  test.each([
    { what: 'no spec: ALLOW nothing (deny-all)', spec: undefined, rules: [], action: 'ALLOW' },
    { what: 'spec: {} is the same', spec: {}, rules: [], action: 'ALLOW' },
    { what: 'rules: [{}] matches everything', spec: { rules: [{}] }, rules: [{}], action: 'ALLOW' },
    {
      what: 'ports as strings and numbers become numbers',
      spec: { rules: [{ to: [{ operation: { ports: ['8080', 9090], notPorts: ['22'] } }] }] },
      rules: [{ to: [{ ports: [8080, 9090], notPorts: [22] }] }],
      action: 'ALLOW',
    },
    {
      what: 'remoteIpBlocks join ipBlocks, notRemoteIpBlocks join notIpBlocks',
      spec: {
        rules: [
          {
            from: [
              {
                source: {
                  ipBlocks: ['10.0.0.0/8'],
                  remoteIpBlocks: ['203.0.113.4'],
                  notRemoteIpBlocks: ['10.9.0.0/16'],
                },
              },
            ],
          },
        ],
      },
      rules: [{ from: [{ ipBlocks: ['10.0.0.0/8', '203.0.113.4'], notIpBlocks: ['10.9.0.0/16'] }] }],
      action: 'ALLOW',
    },
    {
      what: 'serviceAccounts become identity suffixes; notServiceAccounts join notPrincipals',
      spec: {
        rules: [
          {
            from: [
              { source: { serviceAccounts: ['shop/web'] } },
              { source: { notPrincipals: ['cluster.local/ns/a/sa/b'], notServiceAccounts: ['ops/admin'] } },
            ],
          },
        ],
      },
      rules: [
        {
          from: [
            { principals: ['*/ns/shop/sa/web'] },
            { notPrincipals: ['cluster.local/ns/a/sa/b', '*/ns/ops/sa/admin'] },
          ],
        },
      ],
      action: 'ALLOW',
    },
    {
      what: 'an ALLOW rule with HTTP fields becomes a never-matching rule in its place',
      spec: {
        rules: [
          { to: [{ operation: { methods: ['GET'] } }] },
          { from: [{ source: { namespaces: ['shop'] } }] },
        ],
      },
      rules: [NEVER_MATCHING_RULE, { from: [{ namespaces: ['shop'] }] }],
      action: 'ALLOW',
    },
    {
      what: 'a DENY rule loses its HTTP fields; an operation of only HTTP fields matches any port',
      spec: {
        action: 'DENY',
        rules: [
          {
            from: [{ source: { namespaces: ['other'], requestPrincipals: ['*'] } }],
            to: [{ operation: { methods: ['POST'] } }],
            when: [{ key: 'request.auth.claims[group]', values: ['admin'] }],
          },
        ],
      },
      rules: [{ from: [{ namespaces: ['other'] }], to: [{}] }],
      action: 'DENY',
    },
    {
      what: 'conditions: remote.ip reads as source.ip, ports become canonical text, spiffe:// is dropped',
      spec: {
        rules: [
          {
            when: [
              { key: 'remote.ip', values: ['10.0.0.0/8'] },
              { key: 'destination.port', values: [8080, '0443'] },
              { key: 'source.principal', notValues: ['spiffe://cluster.local/ns/a/sa/b'] },
            ],
          },
        ],
      },
      rules: [
        {
          when: [
            { key: 'source.ip', values: ['10.0.0.0/8'] },
            { key: 'destination.port', values: ['8080', '443'] },
            { key: 'source.principal', notValues: ['cluster.local/ns/a/sa/b'] },
          ],
        },
      ],
      action: 'ALLOW',
    },
  ])('$what', ({ spec, rules, action }) => {
    const { policy } = direct(parseAuthorizationPolicy, spec);
    expect(policy).toEqual({ ...HEAD, action, rules });
  });

  test('a selector is kept; empty matchLabels mean no selector', () => {
    expect(direct(parseAuthorizationPolicy, { selector: { matchLabels: { app: 'web' } } }).policy).toEqual({
      ...HEAD,
      selector: { app: 'web' },
      action: 'ALLOW',
      rules: [],
    });
    expect(direct(parseAuthorizationPolicy, { selector: { matchLabels: {} } }).policy).toEqual({
      ...HEAD,
      action: 'ALLOW',
      rules: [],
    });
  });

  test('a policy with an error is undefined, and every error is reported in one pass', () => {
    const { policy, issues } = direct(parseAuthorizationPolicy, {
      action: 'AUDIT',
      rules: [{ from: [{ source: { ipBlocks: ['x'] } }], to: [{ operation: { ports: ['y'] } }] }],
    });
    expect(policy).toBeUndefined();
    expect(issues).toEqual([
      'error spec.action: "AUDIT" is enforced by waypoints only: set targetRefs, or use ALLOW or DENY',
      'error spec.rules[0].from[0].source.ipBlocks[0]: "x" is not an IP address or CIDR (203.0.113.4, 10.0.0.0/8, fd00::/64)',
      'error spec.rules[0].to[0].operation.ports[0]: "y" is not a port number (1 to 65535)',
    ]);
  });

  test('a waypoint policy (targetRefs) keeps its HTTP fields and takes AUDIT; JWT attributes are kept without a warning', () => {
    const { policy, issues } = direct(parseAuthorizationPolicy, {
      targetRefs: [
        { kind: 'Service', group: '', name: 'web' },
        { kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' },
      ],
      action: 'AUDIT',
      rules: [
        {
          from: [{ source: { requestPrincipals: ['https://issuer/*'], namespaces: ['shop'] } }],
          to: [
            {
              operation: {
                hosts: ['web.shop.svc.cluster.local'],
                methods: ['GET'],
                notMethods: ['POST'],
                paths: ['/api/*', '*.js'],
                notPaths: ['/admin'],
                ports: ['8080'],
              },
            },
          ],
          when: [
            { key: 'request.headers[x-user]', values: ['alice'] },
            { key: 'request.auth.claims[groups]', notValues: ['guest'] },
            { key: 'request.auth.principal', values: ['*'] },
          ],
        },
      ],
    });
    // JWT attributes are read from the token a RequestAuthentication verified: no warning.
    expect(issues).toEqual([]);
    expect(policy).toEqual({
      ...HEAD,
      targetRefs: [
        { kind: 'Service', name: 'web' },
        { kind: 'Gateway', name: 'waypoint' },
      ],
      action: 'AUDIT',
      rules: [
        {
          from: [{ requestPrincipals: ['https://issuer/*'], namespaces: ['shop'] }],
          to: [
            {
              ports: [8080],
              hosts: ['web.shop.svc.cluster.local'],
              methods: ['GET'],
              notMethods: ['POST'],
              paths: ['/api/*', '*.js'],
              notPaths: ['/admin'],
            },
          ],
          when: [
            { key: 'request.headers[x-user]', values: ['alice'] },
            { key: 'request.auth.claims[groups]', notValues: ['guest'] },
            { key: 'request.auth.principal', values: ['*'] },
          ],
        },
      ],
    });
  });

  test("Istio's single targetRef is read as targetRefs", () => {
    const { policy, issues } = direct(parseAuthorizationPolicy, {
      targetRef: { kind: 'Service', name: 'web' },
      action: 'DENY',
      rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }],
    });
    expect(issues).toEqual([]);
    expect(policy).toEqual({
      ...HEAD,
      targetRefs: [{ kind: 'Service', name: 'web' }],
      action: 'DENY',
      rules: [{ to: [{ methods: ['DELETE'] }] }],
    });
  });

  test('the result survives a JSON round trip unchanged', () => {
    const { policy } = direct(parseAuthorizationPolicy, {
      action: 'DENY',
      selector: { matchLabels: { app: 'web' } },
      rules: [{ from: [{ source: { notPrincipals: ['*'] } }], to: [{ operation: { notPorts: ['15021'] } }] }],
    });
    expect(JSON.parse(JSON.stringify(policy))).toEqual(policy);
  });
});

const PA_HEAD = { kind: 'PeerAuthentication', namespace: 'shop', name: 'p' } as const;

describe('PeerAuthentication domain values', () => {
  test.each([
    { what: 'no spec', spec: undefined, want: PA_HEAD },
    { what: 'mode UNSET is no mode', spec: { mtls: { mode: 'UNSET' } }, want: PA_HEAD },
    { what: 'mtls without mode', spec: { mtls: {} }, want: PA_HEAD },
    { what: 'STRICT', spec: { mtls: { mode: 'STRICT' } }, want: { ...PA_HEAD, mode: 'STRICT' } },
    {
      what: 'port levels keyed by port text; an UNSET port inherits and is left out',
      spec: {
        selector: { matchLabels: { app: 'web' } },
        mtls: { mode: 'STRICT' },
        portLevelMtls: {
          8080: { mode: 'PERMISSIVE' },
          '9090': { mode: 'UNSET' },
          '15000': { mode: 'DISABLE' },
        },
      },
      want: {
        ...PA_HEAD,
        selector: { app: 'web' },
        mode: 'STRICT',
        portLevel: { '8080': 'PERMISSIVE', '15000': 'DISABLE' },
      },
    },
  ])('$what', ({ spec, want }) => {
    const { policy, issues } = direct(parsePeerAuthentication, spec);
    expect(issues).toEqual([]);
    expect(policy).toEqual(want);
  });
});
