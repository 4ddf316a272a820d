import { describe, expect, test } from 'vitest';
import { decideInbound, type InboundRequest } from '../../src/mesh/inbound.js';
import { MeshIndex } from '../../src/mesh/mesh-index.js';
import type { ActivePolicies } from '../../src/policy/active.js';
import type { AuthorizationPolicy, PeerAuthentication } from '../../src/policy/types.js';
import { outcomeInfo } from '../../src/telemetry/outcomes.js';
import { AMBIENT_NS, snapPod, snapshot, viewOf } from './cluster-fixtures.js';

const TD = 'cluster.local';
const WEB = `spiffe://${TD}/ns/shop/sa/web`;
const CLIENT = `spiffe://${TD}/ns/shop/sa/client`;

const mesh = new MeshIndex(
  viewOf(
    snapshot({
      namespaces: [
        { name: 'shop', labels: AMBIENT_NS },
        { name: 'plain', labels: {} },
      ],
      nodes: [
        { name: 'node-0', ip4: '172.18.0.2' },
        { name: 'node-1', ip4: '172.18.0.3' },
      ],
      pods: [
        snapPod('web', { ips: ['10.244.0.5'], serviceAccount: 'web', labels: { app: 'web' } }),
        snapPod('far', { node: 'node-1', ips: ['10.244.1.5'], serviceAccount: 'far' }),
        snapPod('legacy', { namespace: 'plain', ips: ['10.244.0.6'], serviceAccount: 'legacy' }),
      ],
    }),
    TD,
  ),
);

const denyClient: AuthorizationPolicy = {
  kind: 'AuthorizationPolicy',
  namespace: 'shop',
  name: 'deny-client',
  action: 'DENY',
  rules: [{ from: [{ principals: [`${TD}/ns/shop/sa/client`] }] }],
};
const allowNothing: AuthorizationPolicy = {
  kind: 'AuthorizationPolicy',
  namespace: 'shop',
  name: 'allow-nothing',
  action: 'ALLOW',
  rules: [],
};
const strict: PeerAuthentication = {
  kind: 'PeerAuthentication',
  namespace: 'shop',
  name: 'strict',
  mode: 'STRICT',
};
const strictButPort: PeerAuthentication = {
  kind: 'PeerAuthentication',
  namespace: 'shop',
  name: 'strict-but-9000',
  selector: { app: 'web' },
  mode: 'STRICT',
  portLevel: { '9000': 'PERMISSIVE' },
};

const none: ActivePolicies = { authz: [], peerAuth: [] };
const hbone = (peer: string, serverIdentity = WEB) => ({ kind: 'hbone', peer, serverIdentity }) as const;
const plain = { kind: 'plaintext' } as const;

describe('decideInbound: one decision for HBONE, captured plaintext and explain', () => {
  test.each<{
    what: string;
    policies?: ActivePolicies;
    noConfig?: boolean;
    via: InboundRequest['via'];
    target: string;
    port?: number;
    allowed: boolean;
    outcome?: string;
    flag?: string;
    status?: number;
    reason: string | RegExp;
  }>([
    {
      what: 'HBONE to a meshed pod of this node, no policy',
      via: hbone(CLIENT),
      target: '10.244.0.5',
      allowed: true,
      reason: 'allowed: no policy applies',
    },
    {
      what: 'before the first config nothing is routed',
      noConfig: true,
      via: hbone(CLIENT),
      target: '10.244.0.5',
      allowed: false,
      outcome: 'no-config',
      flag: 'NR',
      status: 503,
      reason: 'no mesh configuration yet',
    },
    {
      what: 'HBONE to a pod of another node',
      via: hbone(CLIENT, `spiffe://${TD}/ns/shop/sa/far`),
      target: '10.244.1.5',
      allowed: false,
      outcome: 'no-route',
      flag: 'NR',
      status: 400,
      reason: '10.244.1.5:8080 is not a meshed workload on node-0',
    },
    {
      what: 'HBONE to a pod outside the mesh',
      via: hbone(CLIENT),
      target: '10.244.0.6',
      allowed: false,
      outcome: 'no-route',
      reason: '10.244.0.6:8080 is not a meshed workload on node-0',
    },
    {
      what: 'HBONE to an address that is no workload',
      via: hbone(CLIENT),
      target: '10.244.0.99',
      allowed: false,
      outcome: 'no-route',
      reason: /not a meshed workload/,
    },
    {
      what: 'HBONE for one pod over a connection made for another identity (confused deputy)',
      via: hbone(CLIENT, `spiffe://${TD}/ns/shop/sa/other`),
      target: '10.244.0.5',
      allowed: false,
      outcome: 'wrong-destination-identity',
      flag: 'NR',
      status: 400,
      reason: `10.244.0.5:8080 is ${WEB}, but this connection was made for spiffe://${TD}/ns/shop/sa/other`,
    },
    {
      what: 'a DENY on the peer identity',
      policies: { authz: [denyClient], peerAuth: [] },
      via: hbone(CLIENT),
      target: '10.244.0.5',
      allowed: false,
      outcome: 'denied',
      flag: 'DENY',
      status: 401,
      reason: 'denied by DENY policy shop/deny-client (rule 0)',
    },
    {
      what: 'the same DENY lets another identity in',
      policies: { authz: [denyClient], peerAuth: [] },
      via: hbone(`spiffe://${TD}/ns/shop/sa/friend`),
      target: '10.244.0.5',
      allowed: true,
      reason: 'allowed: no DENY policy matches (shop/deny-client) and no ALLOW policy applies',
    },
    {
      what: 'captured plaintext under the default (PERMISSIVE)',
      via: plain,
      target: '10.244.0.5',
      allowed: true,
      reason: 'allowed: no policy applies',
    },
    {
      what: 'captured plaintext under STRICT',
      policies: { authz: [], peerAuth: [strict] },
      via: plain,
      target: '10.244.0.5',
      allowed: false,
      outcome: 'denied',
      flag: 'DENY',
      reason:
        'plaintext from outside the mesh is refused: mTLS is STRICT for shop/web (PeerAuthentication shop/strict)',
    },
    {
      what: 'captured plaintext to a port a workload policy keeps PERMISSIVE',
      policies: { authz: [], peerAuth: [strict, strictButPort] },
      via: plain,
      target: '10.244.0.5',
      port: 9000,
      allowed: true,
      reason: 'allowed: no policy applies',
    },
    {
      what: 'captured plaintext meets an ALLOW policy without rules (deny-all): no identity, no match',
      policies: { authz: [allowNothing], peerAuth: [] },
      via: plain,
      target: '10.244.0.5',
      allowed: false,
      outcome: 'denied',
      reason: 'denied: ALLOW policy shop/allow-nothing applies and has no rules, so it allows nothing',
    },
    {
      what: 'captured plaintext to a pod of another node',
      via: plain,
      target: '10.244.1.5',
      allowed: false,
      outcome: 'no-route',
      reason: '10.244.1.5:8080 is not a workload on node-0',
    },
  ])(
    '$what',
    ({ policies = none, noConfig, via, target, port = 8080, allowed, outcome, flag, status, reason }) => {
      const d = decideInbound(noConfig ? undefined : mesh, policies, {
        node: 'node-0',
        via,
        source: { ip: '10.244.0.9', port: 40000 },
        target: { ip: target, port },
      });
      expect(d.allowed).toBe(allowed);
      const why = d.allowed ? d.authz.reason : d.reason;
      if (typeof reason === 'string') expect(why).toBe(reason);
      else expect(why).toMatch(reason);
      if (!d.allowed) {
        expect(d.outcome).toBe(outcome);
        if (flag !== undefined) expect(outcomeInfo(d.outcome).flag).toBe(flag);
        if (status !== undefined) expect(outcomeInfo(d.outcome).hboneStatus).toBe(status);
      }
    },
  );

  test('an allowed HBONE connection carries what authorization decided on, for re-checks when policy changes', () => {
    const d = decideInbound(mesh, none, {
      node: 'node-0',
      via: hbone(CLIENT),
      source: { ip: '10.244.0.9', port: 40000 },
      target: { ip: '10.244.0.5', port: 8080 },
    });
    expect(d.allowed && d.attrs).toEqual({
      srcPrincipal: `${TD}/ns/shop/sa/client`,
      srcIp: '10.244.0.9',
      dstIp: '10.244.0.5',
      dstPort: 8080,
      dst: { namespace: 'shop', labels: { app: 'web' } },
    });
  });
});
