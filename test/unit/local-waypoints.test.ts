import { describe, expect, test } from 'vitest';
import type { ConfigIssue } from '../../src/config/issue.js';
import { type LocalWaypointOptions, withWaypoints } from '../../src/local/waypoints.js';
import { parseManifestTexts } from '../../src/manifests/load-manifests.js';
import { type DeploymentObject, type Manifests, objectKey } from '../../src/manifests/model.js';

const LOCAL: LocalWaypointOptions = {
  image: 'ghcr.io/ambit-mesh/ambit:0.1.0',
  version: '0.1.0',
  trustDomain: 'cluster.local',
  controlPlane: '127.0.0.1:15012',
  command: ['/usr/local/bin/node', '/opt/ambit/dist/l7-waypoint/main.js'],
  tokenFile: '/run/ambit/pods/$(POD_NAMESPACE)/$(POD_NAME)/token',
  caBundle: '/run/ambit/ca/root-cert.pem',
  logLevel: 'debug',
};

const NAMESPACE = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
`;

/** A Gateway as a user writes it; the default is a waypoint. */
function gateway(
  over: { name?: string; className?: string; annotations?: Record<string, string>; extraSpec?: string } = {},
): string {
  const annotations = Object.entries(over.annotations ?? {});
  return `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: ${over.name ?? 'waypoint'}
  namespace: shop
${annotations.length === 0 ? '' : `  annotations:\n${annotations.map(([k, v]) => `    ${k}: ${JSON.stringify(v)}\n`).join('')}`}spec:
  gatewayClassName: ${over.className ?? 'ambit-waypoint'}
  listeners:
    - name: mesh
      port: 15008
      protocol: HBONE
${over.extraSpec ?? ''}`;
}

const userService = (name: string): string => `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: shop
spec:
  selector: {app: mine}
  ports:
    - name: http
      port: 80
      targetPort: 8080
`;

/** Parses the manifests as the local cluster does; they must parse cleanly. */
function load(...docs: string[]): Manifests {
  const r = parseManifestTexts([{ file: 'mesh.yaml', text: docs.join('---\n') }], { requireCommand: true });
  expect(r.issues).toEqual([]);
  return r.manifests;
}

const keysOf = (m: Manifests): string[] =>
  [...m.serviceAccounts, ...m.deployments, ...m.services].map((o) => objectKey(o)).sort();

const deploymentOf = (m: Manifests, name = 'waypoint'): DeploymentObject =>
  m.deployments.find((d) => d.meta.name === name)!;

const envOf = (d: DeploymentObject): Record<string, string | undefined> =>
  Object.fromEntries(
    d.template.spec.containers[0]!.env.map((e) => [e.name, e.value ?? `fieldRef:${e.fieldRef}`]),
  );

describe('withWaypoints: a local cluster runs what a waypoint Gateway renders to', () => {
  test('a waypoint Gateway adds its ServiceAccount, Deployment and Service, named after it', () => {
    const { manifests, issues } = withWaypoints(load(NAMESPACE, gateway()), LOCAL);
    expect(issues).toEqual([]);
    expect(keysOf(manifests)).toEqual([
      'Deployment/shop/waypoint',
      'Service/shop/waypoint',
      'ServiceAccount/shop/waypoint',
    ]);
    // Every added object points at the Gateway that made it, for messages about it.
    for (const o of [...manifests.serviceAccounts, ...manifests.deployments, ...manifests.services])
      expect(o.source, objectKey(o)).toEqual({ file: 'mesh.yaml', line: 6 });
    // What the user declared is all still there.
    expect(manifests.namespaces.map((n) => n.meta.name)).toEqual(['shop']);
    expect(manifests.kept.map((k) => objectKey(k))).toEqual(['Gateway/shop/waypoint']);
  });

  test("the Deployment's container runs the local command with the local token, trust bundle and log level", () => {
    const d = deploymentOf(withWaypoints(load(NAMESPACE, gateway()), LOCAL).manifests);
    expect(d.template.spec.containers).toHaveLength(1);
    const c = d.template.spec.containers[0]!;
    expect(c.command).toEqual(LOCAL.command);
    expect(c.args).toEqual([]);
    const env = envOf(d);
    expect(env).toMatchObject({
      AMBIT_TOKEN_FILE: LOCAL.tokenFile,
      AMBIT_CA_BUNDLE: LOCAL.caBundle,
      AMBIT_LOG_LEVEL: 'debug',
      AMBIT_CONTROL_PLANE: '127.0.0.1:15012',
      AMBIT_TRUST_DOMAIN: 'cluster.local',
      AMBIT_GATEWAY_NAME: 'waypoint',
      POD_NAME: 'fieldRef:metadata.name',
      POD_NAMESPACE: 'fieldRef:metadata.namespace',
    });
    // Set once each, not added beside the rendered in-cluster paths.
    for (const name of ['AMBIT_TOKEN_FILE', 'AMBIT_CA_BUNDLE', 'AMBIT_LOG_LEVEL'])
      expect(
        c.env.filter((e) => e.name === name),
        name,
      ).toHaveLength(1);
    expect(env).not.toHaveProperty('AMBIT_OTLP_ENDPOINT');
    expect(d.template.spec.serviceAccountName).toBe('waypoint');
    expect(d.replicas).toBe(1);
  });

  test("the waypoint's pods are not captured by the node proxy and are selected by the Service", () => {
    const { manifests } = withWaypoints(load(NAMESPACE, gateway()), LOCAL);
    const d = deploymentOf(manifests);
    expect(d.template.labels).toMatchObject({
      'ambit.dev/dataplane-mode': 'none',
      'gateway.networking.k8s.io/gateway-name': 'waypoint',
    });
    expect(d.selector).toEqual({ 'gateway.networking.k8s.io/gateway-name': 'waypoint' });
    const s = manifests.services[0]!;
    expect(s.selector).toEqual({ 'gateway.networking.k8s.io/gateway-name': 'waypoint' });
    expect(s.ports.map((p) => [p.name, p.port, p.appProtocol])).toEqual([
      ['mesh', 15008, 'hbone'],
      ['status-port', 15021, 'tcp'],
    ]);
  });

  test('a Service the user declared under the same name wins, with a warning on the Gateway', () => {
    const { manifests, issues } = withWaypoints(load(NAMESPACE, userService('waypoint'), gateway()), LOCAL);
    expect(keysOf(manifests)).toEqual([
      'Deployment/shop/waypoint',
      'Service/shop/waypoint',
      'ServiceAccount/shop/waypoint',
    ]);
    expect(manifests.services).toHaveLength(1);
    expect(manifests.services[0]!.ports.map((p) => p.port)).toEqual([80]);
    expect(issues).toEqual<ConfigIssue[]>([
      {
        severity: 'warning',
        file: 'mesh.yaml',
        line: 18,
        path: '',
        object: 'Gateway/shop/waypoint',
        message: "Service/shop/waypoint is declared in the manifests: the waypoint's own Service is not made",
      },
    ]);
  });

  test('a Gateway of another class makes nothing', () => {
    const m = load(NAMESPACE, gateway({ className: 'istio' }));
    const r = withWaypoints(m, LOCAL);
    expect(r.issues).toEqual([]);
    expect(keysOf(r.manifests)).toEqual([]);
    expect(r.manifests).toBe(m);
  });

  test('manifests without a Gateway are returned as they are', () => {
    const m = load(NAMESPACE, userService('web'));
    expect(withWaypoints(m, LOCAL)).toEqual({ manifests: m, issues: [] });
  });

  test('ambit.dev/otlp-endpoint on the Gateway reaches the waypoint as AMBIT_OTLP_ENDPOINT', () => {
    const gw = gateway({ annotations: { 'ambit.dev/otlp-endpoint': 'http://collector.obs:4318/v1/traces' } });
    const d = deploymentOf(withWaypoints(load(NAMESPACE, gw), LOCAL).manifests);
    expect(envOf(d).AMBIT_OTLP_ENDPOINT).toBe('http://collector.obs:4318/v1/traces');
  });

  test('ambit.dev/replicas on the Gateway sets the replicas; a bad value keeps 1 and says why', () => {
    const three = deploymentOf(
      withWaypoints(load(NAMESPACE, gateway({ annotations: { 'ambit.dev/replicas': '3' } })), LOCAL)
        .manifests,
    );
    expect(three.replicas).toBe(3);
    const bad = withWaypoints(
      load(NAMESPACE, gateway({ annotations: { 'ambit.dev/replicas': 'many' } })),
      LOCAL,
    );
    expect(deploymentOf(bad.manifests).replicas).toBe(1);
    expect(bad.issues).toEqual([
      expect.objectContaining({
        severity: 'warning',
        object: 'Gateway/shop/waypoint',
        message: expect.stringContaining('annotation ambit.dev/replicas="many"'),
      }),
    ]);
  });

  test('two waypoint Gateways make two sets of objects', () => {
    const { manifests, issues } = withWaypoints(
      load(NAMESPACE, gateway(), gateway({ name: 'reviews' })),
      LOCAL,
    );
    expect(issues).toEqual([]);
    expect(keysOf(manifests)).toEqual([
      'Deployment/shop/reviews',
      'Deployment/shop/waypoint',
      'Service/shop/reviews',
      'Service/shop/waypoint',
      'ServiceAccount/shop/reviews',
      'ServiceAccount/shop/waypoint',
    ]);
    expect(envOf(deploymentOf(manifests, 'reviews')).AMBIT_GATEWAY_NAME).toBe('reviews');
  });

  test('a waypoint Gateway that cannot be rendered makes nothing and says why', () => {
    const gw = gateway({ extraSpec: '  addresses:\n    - type: Hostname\n      value: waypoint.example\n' });
    const { manifests, issues } = withWaypoints(load(NAMESPACE, gw), LOCAL);
    expect(keysOf(manifests)).toEqual([]);
    expect(issues).toEqual([
      expect.objectContaining({
        severity: 'warning',
        object: 'Gateway/shop/waypoint',
        message: expect.stringContaining('a waypoint takes only addresses of type IPAddress'),
      }),
    ]);
  });
});
