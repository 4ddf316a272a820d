import type { JsonObject, KubeObject } from '../gateway-api/waypoint-render.js';
import { type ApiResource, resourceOfKind } from '../kube/api-resources.js';

/*
 * The CustomResourceDefinitions of Ambit's own kinds (security.ambit.dev and traffic.ambit.dev v1alpha1), with structural
 * OpenAPI v3 schemas: every node has a type, objects list their properties. The field shapes are
 * Istio's (so a policy moves by changing its apiVersion) and are exactly the fields Ambit's parsers
 * read (src/policy/parse-*.ts); the parsers stay the judge of values, the schema of shapes.
 */

const str = (description?: string): JsonObject => ({
  type: 'string',
  ...(description === undefined ? {} : { description }),
});
const strings = (description?: string): JsonObject => ({ type: 'array', items: str(), ...desc(description) });
const desc = (d?: string): JsonObject => (d === undefined ? {} : { description: d });
const obj = (properties: Record<string, JsonObject>, description?: string): JsonObject => ({
  type: 'object',
  properties,
  ...desc(description),
});

const selector = obj(
  { matchLabels: { type: 'object', additionalProperties: str() } },
  'The pods of the namespace the policy applies to; all of them when absent.',
);

/** A policy attachment's target (Gateway API PolicyTargetReference). */
const targetRef = obj(
  { group: str(), kind: str(), name: str(), namespace: str() },
  'The Service or Gateway the policy attaches to.',
);

const source = obj({
  principals: strings('Peer identities (trust-domain/ns/<ns>/sa/<sa>); * for any.'),
  notPrincipals: strings(),
  requestPrincipals: strings(),
  notRequestPrincipals: strings(),
  namespaces: strings(),
  notNamespaces: strings(),
  serviceAccounts: strings(),
  notServiceAccounts: strings(),
  ipBlocks: strings(),
  notIpBlocks: strings(),
  remoteIpBlocks: strings(),
  notRemoteIpBlocks: strings(),
});

const operation = obj({
  hosts: strings(),
  notHosts: strings(),
  // A port is a number or a digit string, as Ambit's parser reads it.
  ports: { type: 'array', items: { 'x-kubernetes-int-or-string': true } },
  notPorts: { type: 'array', items: { 'x-kubernetes-int-or-string': true } },
  methods: strings(),
  notMethods: strings(),
  paths: strings(),
  notPaths: strings(),
});

const authorizationPolicySpec = obj({
  selector,
  targetRef,
  targetRefs: { type: 'array', items: targetRef },
  action: { type: 'string', enum: ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] },
  provider: obj({ name: str() }),
  rules: {
    type: 'array',
    items: obj({
      from: { type: 'array', items: obj({ source }) },
      to: { type: 'array', items: obj({ operation }) },
      when: {
        type: 'array',
        items: {
          ...obj({ key: str(), values: strings(), notValues: strings() }),
          required: ['key'],
        },
      },
    }),
  },
});

const MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'];
const mtls = obj({ mode: { type: 'string', enum: MTLS_MODES } });

const peerAuthenticationSpec = obj({
  selector,
  mtls,
  // Keyed by port number (a string key, as in Istio's API).
  portLevelMtls: { type: 'object', additionalProperties: mtls },
});

const requestAuthenticationSpec = obj({
  selector,
  targetRef,
  targetRefs: { type: 'array', items: targetRef },
  jwtRules: {
    type: 'array',
    items: {
      ...obj({
        issuer: str('The iss a token must carry.'),
        audiences: strings('Accepted aud values; any when empty.'),
        jwksUri: str("Where the waypoint fetches the issuer's public keys (http or https)."),
        jwks: str('The public keys inline, as JWKS JSON.'),
        timeout: str('How long a JWKS fetch may take (a duration: 5s).'),
        fromHeaders: { type: 'array', items: obj({ name: str(), prefix: str() }) },
        fromParams: strings(),
        fromCookies: strings(),
        outputPayloadToHeader: str(),
        outputClaimToHeaders: { type: 'array', items: obj({ header: str(), claim: str() }) },
        forwardOriginalToken: { type: 'boolean' },
      }),
      required: ['issuer'],
    },
  },
});

const int = (description?: string): JsonObject => ({ type: 'integer', ...desc(description) });
const percentage: JsonObject = {
  type: 'number',
  description: 'Share of requests, 0 to 100; 100 when unset.',
};

const bool: JsonObject = { type: 'boolean' };
/** Kept as written, so that the parser refuses it by name rather than the API server dropping it. */
const refused = (d: string): JsonObject => ({ 'x-kubernetes-preserve-unknown-fields': true, ...desc(d) });
const sourceMatch = (d: string): JsonObject =>
  obj({ type: str('Exact (default) or Distinct.'), value: str() }, d);

/** BackendTrafficPolicy rateLimit: Envoy Gateway's local rate limit, plus Ambit's sourceIdentity. */
const rateLimitSpec = obj({
  type: str('Local (Envoy Gateway deprecated this field; local alone says the same).'),
  global: refused('Refused: Ambit has no rate-limit service.'),
  local: obj({
    rules: {
      type: 'array',
      items: obj({
        clientSelectors: {
          type: 'array',
          items: obj({
            headers: {
              type: 'array',
              items: obj({
                name: str(),
                type: str('Exact, RegularExpression or Distinct.'),
                value: str(),
                invert: bool,
              }),
            },
            sourceCIDR: sourceMatch('The client pod address.'),
            sourceIdentity: sourceMatch(
              'Ambit: the SPIFFE identity the client proved on its HBONE connection.',
            ),
            methods: refused('Not supported by Ambit yet.'),
            path: refused('Not supported by Ambit yet.'),
          }),
        },
        limit: obj({ requests: int(), unit: str('Second, Minute, Hour or Day.') }),
        shared: bool,
        cost: refused('Not supported by Ambit yet.'),
        shadowMode: refused('Global rate limits only.'),
      }),
    },
  }),
});

/** BackendTrafficPolicy (traffic.ambit.dev): Envoy Gateway's field shapes, the ones Ambit enforces. */
const backendTrafficPolicySpec = obj({
  targetRefs: {
    type: 'array',
    items: obj(
      { group: str(), kind: str(), name: str(), sectionName: str() },
      'A Service (group "", kind Service).',
    ),
  },
  circuitBreaker: obj({
    maxConnections: int(),
    maxPendingRequests: int(),
    maxParallelRequests: int(),
    maxParallelRetries: int(),
    maxRequestsPerConnection: int(),
    perEndpoint: obj({ maxConnections: int() }),
  }),
  faultInjection: obj({
    delay: obj({ fixedDelay: str('A duration: 1s, 500ms.'), percentage }),
    abort: obj({ httpStatus: int(), grpcStatus: int(), percentage }),
    headers: {
      type: 'array',
      items: obj({ type: str(), name: str(), value: str() }, 'Only requests with these headers are faulted.'),
    },
  }),
  loadBalancer: obj({
    type: { type: 'string', enum: ['RoundRobin', 'LeastRequest', 'Random', 'ConsistentHash'] },
    consistentHash: obj({
      type: str('Header, Cookie, SourceIP, or SourceIdentity (Ambit: the client SPIFFE identity).'),
      header: obj({ name: str() }),
      cookie: obj({
        name: str(),
        ttl: str('A duration: Max-Age of the cookie set when the request has none.'),
        attributes: { type: 'object', additionalProperties: str() },
      }),
      tableSize: int('A prime, at most 5000011 (default 65537).'),
    }),
    slowStart: obj({ window: str() }),
  }),
  healthCheck: obj({
    passive: obj({
      consecutive5XxErrors: int(),
      consecutiveGatewayErrors: int(),
      consecutiveLocalOriginFailures: int(),
      splitExternalLocalOriginErrors: { type: 'boolean' },
      interval: str('A duration (default 3s).'),
      baseEjectionTime: str('A duration (default 30s).'),
      maxEjectionPercent: int(),
      alwaysEjectOneEndpoint: { type: 'boolean' },
    }),
    panicThreshold: int('Percent in service under which ejections are disregarded (default 50).'),
  }),
  retryConstraint: obj(
    {
      budget: obj({ percent: int(), interval: str('A duration: 10s.') }),
      minRetryRate: obj({ count: int(), interval: str('A duration: 1s.') }),
    },
    'A retry budget (Gateway API GEP-3388).',
  ),
  rateLimit: rateLimitSpec,
});

function crd(kind: string, spec: JsonObject, labels: Record<string, string>): KubeObject {
  const r: ApiResource | undefined = resourceOfKind(kind);
  if (r === undefined) throw new Error(`no API resource for ${kind}`);
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${r.plural}.${r.group}`, labels },
    spec: {
      group: r.group,
      names: {
        kind: r.kind,
        listKind: `${r.kind}List`,
        plural: r.plural,
        singular: r.singular,
        ...(r.shortNames.length === 0 ? {} : { shortNames: [...r.shortNames] }),
        ...(r.categories === undefined ? {} : { categories: [...r.categories] }),
      },
      scope: r.namespaced ? 'Namespaced' : 'Cluster',
      versions: [
        {
          name: r.version,
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: obj({ apiVersion: str(), kind: str(), metadata: { type: 'object' }, spec }),
          },
        },
      ],
    },
  };
}

/** Ambit's own kinds, the ones its control plane reads (src/kube/api-resources.ts). */
export const CRD_KINDS = [
  'AuthorizationPolicy',
  'PeerAuthentication',
  'RequestAuthentication',
  'BackendTrafficPolicy',
] as const;

export function renderCrds(labels: Record<string, string>): KubeObject[] {
  return [
    crd('AuthorizationPolicy', authorizationPolicySpec, labels),
    crd('PeerAuthentication', peerAuthenticationSpec, labels),
    crd('RequestAuthentication', requestAuthenticationSpec, labels),
    crd('BackendTrafficPolicy', backendTrafficPolicySpec, labels),
  ];
}
