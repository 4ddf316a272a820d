import * as grpc from '@grpc/grpc-js';
import type { Gauge } from 'prom-client';
import {
  type ConfigUpdate,
  diffConfig,
  encodeUpdate,
  isEmptyDelta,
  type PushedConfig,
} from '../api/config-codec.js';
import { tokenOf } from '../api/grpc.js';
import type { ServiceAccountClaims } from '../identity/service-account-token.js';
import type { Logger } from '../telemetry/logger.js';
import { type Callers, describePrincipal } from './node-auth.js';

/** An update serialized for the wire (protobuf), written to streams as it is. */
type Listener = (update: Buffer) => void;

/**
 * The config for nodes, versioned. Each new version's difference from the last is computed, encoded
 * and serialized once and the same bytes are written to every stream; a stream that starts gets the
 * full config of the current version (serialized once per version, however many nodes connect). A
 * publish that changes nothing makes no version. (Serializing per stream cost 100 x 2.4 MB of protobuf
 * for a 10,000-pod mesh: bench/control-plane.ts.)
 */
export class ConfigPublisher {
  private current: PushedConfig | undefined;
  private version = 0n;
  private full: { version: bigint; update: Buffer } | undefined;
  private readonly listeners = new Set<Listener>();

  constructor(private readonly serialize: (u: ConfigUpdate) => Buffer) {}

  publish(config: PushedConfig): boolean {
    const delta = diffConfig(this.current, config);
    if (this.current !== undefined && isEmptyDelta(delta)) return false;
    this.current = config;
    this.version++;
    if (this.listeners.size > 0) {
      // The first version is a full update (streams that came before it have nothing yet).
      const update = this.serialize(encodeUpdate(delta, this.version));
      for (const l of this.listeners) l(update);
    }
    return true;
  }

  /** Sends `l` the full config now (if there is one), then every change. */
  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    if (this.current !== undefined) {
      if (this.full?.version !== this.version)
        this.full = {
          version: this.version,
          update: this.serialize(encodeUpdate(diffConfig(undefined, this.current), this.version)),
        };
      l(this.full.update);
    }
    return () => this.listeners.delete(l);
  }

  get latest(): { config: PushedConfig; version: bigint } | undefined {
    return this.current === undefined ? undefined : { config: this.current, version: this.version };
  }
}

/**
 * MeshConfig/StreamConfig: authenticates the caller (a node, or a waypoint pod with its ServiceAccount
 * token), sends the full config, then every change as an increment (what changed and what went away).
 * A reconnecting caller starts over with a full update.
 */
export function configServiceImpl(
  publisher: ConfigPublisher,
  callers: Callers,
  /** Why a pod's token no longer speaks for a live pod (undefined: it does). */
  podProblem: (claims: ServiceAccountClaims) => string | undefined,
  log: Logger,
  connected: Gauge<'node'>,
): grpc.UntypedServiceImplementation {
  return {
    StreamConfig: (call: grpc.ServerWritableStream<{ node: string }, unknown>) => {
      const refuse = (code: grpc.status, why: string, principal?: string): void => {
        log.warn(
          { peer: call.getPeer(), asked: call.request.node, principal, reason: why },
          'config stream refused',
        );
        call.destroy(Object.assign(new Error(why), { code }));
      };
      void callers.authenticate(tokenOf(call.metadata)).then((p) => {
        // The caller may have gone while its token was checked.
        if (call.cancelled || call.destroyed) return;
        if ('refused' in p) return refuse(grpc.status.UNAUTHENTICATED, p.refused);
        const asked = call.request.node;
        if (p.kind === 'node' && p.node !== asked)
          return refuse(grpc.status.PERMISSION_DENIED, `this token is for ${p.node}, not ${asked}`, p.node);
        if (p.kind === 'pod') {
          const problem =
            podProblem(p.claims) ??
            (p.claims.node === asked ? undefined : `the pod runs on ${p.claims.node}, not ${asked}`);
          if (problem !== undefined)
            return refuse(grpc.status.PERMISSION_DENIED, problem, describePrincipal(p));
        }
        const who = p.kind === 'node' ? p.node : `pod:${p.claims.namespace}/${p.claims.pod}`;
        connected.inc({ node: who });
        log.info({ caller: describePrincipal(p), peer: call.getPeer() }, 'connected for config');
        const unsubscribe = publisher.subscribe((update) => call.write(update));
        let ended = false;
        const done = (): void => {
          if (ended) return;
          ended = true;
          unsubscribe();
          // A pod's series goes with it (pods come and go; nodes stay).
          if (p.kind === 'pod') connected.remove({ node: who });
          else connected.dec({ node: who });
          log.info({ caller: describePrincipal(p) }, 'disconnected from config');
        };
        call.once('cancelled', done);
        call.once('close', done);
        call.once('error', done);
      });
    },
  };
}
