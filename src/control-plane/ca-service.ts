import * as grpc from '@grpc/grpc-js';
import type { Counter } from 'prom-client';
import { tokenOf } from '../api/grpc.js';
import type { ClusterStore } from '../cluster/store.js';
import { AmbitError, describeError, ErrorCode } from '../errors.js';
import type { CertificateAuthority } from '../identity/ca.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import { parseCsr } from '../identity/x509.js';
import type { Logger } from '../telemetry/logger.js';
import {
  authorizeIdentity,
  authorizePodIdentity,
  type Callers,
  describePrincipal,
  podPrincipalProblem,
} from './node-auth.js';

interface CertRequest {
  csr: string;
  validity_duration: string;
  metadata?: { fields?: Record<string, { stringValue?: string }> };
}

export interface CaServiceDeps {
  readonly ca: CertificateAuthority;
  readonly callers: Callers;
  /** The cluster, once the first complete view has been read (undefined before). */
  readonly cluster: () => ClusterStore | undefined;
  readonly trustDomain: string;
  readonly defaultTtl: number;
  readonly maxTtl: number;
  readonly log: Logger;
  readonly issued: Counter<'result'>;
}

class Unauthenticated extends Error {}

function fail(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

/**
 * IstioCertificateService/CreateCertificate: a node proxy sends a workload's CSR with its node token
 * and gets a chain only for a service account with a pod on its own node; a waypoint sends its own
 * CSR with its pod's ServiceAccount token and gets a chain only for that ServiceAccount, while the pod
 * the token is bound to lives. Every refusal is logged with the caller, the identity asked for and the
 * reason.
 */
export function caServiceImpl(d: CaServiceDeps): grpc.UntypedServiceImplementation {
  return {
    CreateCertificate: (
      call: grpc.ServerUnaryCall<CertRequest, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      const peer = call.getPeer();
      // Who asked, for the log: the node or the pod, once the token is known.
      let caller: Record<string, string> = {};
      void (async () => {
        const p = await d.callers.authenticate(tokenOf(call.metadata));
        if ('refused' in p) throw new Unauthenticated(p.refused);
        caller = p.kind === 'node' ? { node: p.node } : { pod: `${p.claims.namespace}/${p.claims.pod}` };
        const req = call.request;
        const csr = await parseCsr(req.csr);
        const asked = req.metadata?.fields?.ImpersonatedIdentity?.stringValue ?? csr.uris[0] ?? '';
        const identity = SpiffeId.parse(asked);
        const cluster = d.cluster();
        if (cluster === undefined)
          throw new AmbitError(ErrorCode.CONTROL_PLANE, 'the control plane has not read the cluster yet');
        const denied =
          p.kind === 'node'
            ? authorizeIdentity(
                cluster.podsRunningAs(identity.namespace, identity.serviceAccount),
                p.node,
                identity,
                d.trustDomain,
                cluster.serviceAccounts.has(`${identity.namespace}/${identity.serviceAccount}`),
              )
            : (podPrincipalProblem(p.claims, cluster.pods.get(`${p.claims.namespace}/${p.claims.pod}`)) ??
              authorizePodIdentity(p.claims, identity, d.trustDomain));
        const who = describePrincipal(p);
        if (denied !== undefined)
          throw new AmbitError(ErrorCode.CA_DENIED, `${who} may not have ${identity}: ${denied}`);
        const requested = Number(req.validity_duration);
        const ttl = Math.min(requested > 0 ? requested : d.defaultTtl, d.maxTtl);
        const chain = await d.ca.sign(req.csr, identity, ttl);
        d.issued.inc({ result: 'issued' });
        d.log.info({ ...caller, identity: identity.toString(), ttlSeconds: ttl }, 'certificate issued');
        return chain;
      })().then(
        (chain) => callback(null, { cert_chain: chain }),
        (err: unknown) => {
          if (err instanceof Unauthenticated) {
            d.issued.inc({ result: 'unauthenticated' });
            d.log.warn({ peer, reason: err.message }, 'certificate request refused');
            callback(fail(grpc.status.UNAUTHENTICATED, err.message));
            return;
          }
          const denied = err instanceof AmbitError && err.code === ErrorCode.CA_DENIED;
          const invalid =
            err instanceof AmbitError &&
            (err.code === ErrorCode.CERTIFICATE || err.code === ErrorCode.IDENTITY);
          d.issued.inc({ result: denied ? 'denied' : invalid ? 'invalid' : 'error' });
          d.log.warn({ ...caller, peer, reason: describeError(err) }, 'certificate request refused');
          callback(
            fail(
              denied
                ? grpc.status.PERMISSION_DENIED
                : invalid
                  ? grpc.status.INVALID_ARGUMENT
                  : grpc.status.UNAVAILABLE,
              describeError(err),
            ),
          );
        },
      );
    },
  };
}
