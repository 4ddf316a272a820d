import type { Fields } from '../config/field-reader.js';
import type { Labels } from '../config/kube-types.js';
import { parseGateway } from '../gateway-api/parse-gateway.js';
import { parseGrpcRoute } from '../gateway-api/parse-grpc-route.js';
import { parseHttpRoute } from '../gateway-api/parse-http-route.js';
import { parseAuthorizationPolicy, SECURITY_API_VERSION } from '../policy/parse-authorization-policy.js';
import { parsePeerAuthentication } from '../policy/parse-peer-authentication.js';
import { parseRequestAuthentication } from '../policy/parse-request-authentication.js';
import { parseBackendTrafficPolicy } from '../traffic-policy/parse-backend-traffic-policy.js';
import { TRAFFIC_API_VERSION } from '../traffic-policy/types.js';
import type { MeshConfigKind, MeshConfigValue } from './resources.js';

/**
 * The mesh configuration kinds, their API versions, and the one parser of each: the manifests loader
 * (local mode's admission) and the cluster source (what daemons read) both parse through here.
 */
export const MESH_CONFIG_KINDS: Readonly<Record<MeshConfigKind, readonly string[]>> = {
  AuthorizationPolicy: [SECURITY_API_VERSION],
  PeerAuthentication: [SECURITY_API_VERSION],
  RequestAuthentication: [SECURITY_API_VERSION],
  Gateway: ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'],
  HTTPRoute: ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'],
  GRPCRoute: ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1alpha2'],
  BackendTrafficPolicy: [TRAFFIC_API_VERSION],
};

export function isMeshConfigKind(kind: string): kind is MeshConfigKind {
  return Object.hasOwn(MESH_CONFIG_KINDS, kind);
}

/**
 * Parses the spec of a mesh config object into its typed value; undefined when it has errors (they
 * went to the spec's sink). Security policies accept a missing spec (Istio's deny-all is `spec: {}`);
 * Gateway API kinds require one.
 */
export function parseMeshConfig(
  kind: MeshConfigKind,
  spec: Fields | undefined,
  objectMeta: {
    readonly namespace: string;
    readonly name: string;
    readonly labels: Labels;
    readonly annotations?: Labels;
  },
): MeshConfigValue | undefined {
  const meta = { namespace: objectMeta.namespace, name: objectMeta.name, labels: objectMeta.labels };
  switch (kind) {
    case 'AuthorizationPolicy': {
      const value = parseAuthorizationPolicy(spec, meta);
      return value === undefined ? undefined : { kind, value };
    }
    case 'PeerAuthentication': {
      const value = parsePeerAuthentication(spec, meta);
      return value === undefined ? undefined : { kind, value };
    }
    case 'RequestAuthentication': {
      const value = parseRequestAuthentication(spec, meta);
      return value === undefined ? undefined : { kind, value };
    }
    case 'Gateway': {
      const value =
        spec === undefined
          ? undefined
          : parseGateway(spec, { ...meta, annotations: objectMeta.annotations ?? {} });
      return value === undefined ? undefined : { kind, value };
    }
    case 'HTTPRoute': {
      const value = spec === undefined ? undefined : parseHttpRoute(spec, meta);
      return value === undefined ? undefined : { kind, value };
    }
    case 'GRPCRoute': {
      const value = spec === undefined ? undefined : parseGrpcRoute(spec, meta);
      return value === undefined ? undefined : { kind, value };
    }
    case 'BackendTrafficPolicy': {
      const value = spec === undefined ? undefined : parseBackendTrafficPolicy(spec, meta);
      return value === undefined ? undefined : { kind, value };
    }
  }
}
