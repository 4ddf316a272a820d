import { test } from 'vitest';
import { withWaypoints } from '../../src/local/waypoints.js';
import { parseManifestTexts } from '../../src/manifests/load-manifests.js';
const text = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: shop
  annotations:
    ambit.dev/otlp-endpoint: http://collector:4318/v1/traces
spec:
  gatewayClassName: ambit-waypoint
  listeners:
    - name: mesh
      port: 15008
      protocol: HBONE
`;
test('p', () => {
  const m = parseManifestTexts([{ file: 'w.yaml', text }], { requireCommand: true });
  console.log(JSON.stringify(m.issues), m.manifests.kept.map(k => [k.kind, k.parsed?.kind]));
  const r = withWaypoints(m.manifests, { image: 'img', trustDomain: 'cluster.local', controlPlane: '127.0.0.1:15012', version: '0.1.0', command: ['/usr/bin/node', '/opt/ambit/dist/l7-waypoint/main.js'], tokenFile: '/run/ambit/pods/$(POD_NAMESPACE)/$(POD_NAME)/token', caBundle: '/run/ambit/ca.pem', logLevel: 'debug' });
  console.log(JSON.stringify(r.issues, null, 1));
  console.log(JSON.stringify({ sa: r.manifests.serviceAccounts, d: r.manifests.deployments, s: r.manifests.services }, null, 1));
});
