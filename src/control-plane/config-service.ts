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
import type { Logger } from '../telemetry/logger.js';
import type { NodeTokens } from './node-auth.js';

type Listener = (update: ConfigUpdate) => void;

/**
 * The config for nodes, versioned. Each new version's difference from the last is computed and
 * encoded once and written to every stream as it is; a stream that starts gets the full config of the
 * current version (encoded once per version, however many nodes connect). A publish that changes
 * nothing makes no version.
 */
export class ConfigPublisher {
  private current: PushedConfig | undefined;
  private version = 0n;
  private full: { version: bigint; update: ConfigUpdate } | undefined;
  private readonly listeners = new Set<Listener>();

  publish(config: PushedConfig): boolean {
    const delta = diffConfig(this.current, config);
    if (this.current !== undefined && isEmptyDelta(delta)) return false;
    this.current = config;
    this.version++;
    if (this.listeners.size > 0) {
      // The first version is a full update (streams that came before it have nothing yet).
      const update = encodeUpdate(delta, this.version);
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
          update: encodeUpdate(diffConfig(undefined, this.current), this.version),
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
 * MeshConfig/StreamConfig: authenticates the node, sends the full config, then every change as an
 * increment (what changed and what went away). A reconnecting node starts over with a full update.
 */
export function configServiceImpl(
  publisher: ConfigPublisher,
  tokens: NodeTokens,
  log: Logger,
  connected: Gauge<'node'>,
): grpc.UntypedServiceImplementation {
  return {
    StreamConfig: (call: grpc.ServerWritableStream<{ node: string }, unknown>) => {
      const node = tokens.node(tokenOf(call.metadata));
      if (node === undefined || node !== call.request.node) {
        log.warn(
          { peer: call.getPeer(), asked: call.request.node, token: node ?? 'unknown' },
          'config stream refused',
        );
        call.destroy(
          Object.assign(
            new Error(
              node === undefined
                ? 'a valid node token is required'
                : `this token is for ${node}, not ${call.request.node}`,
            ),
            { code: node === undefined ? grpc.status.UNAUTHENTICATED : grpc.status.PERMISSION_DENIED },
          ),
        );
        return;
      }
      connected.inc({ node });
      log.info({ node, peer: call.getPeer() }, 'node connected for config');
      const unsubscribe = publisher.subscribe((update) => call.write(update));
      let ended = false;
      const done = (): void => {
        if (ended) return;
        ended = true;
        unsubscribe();
        connected.dec({ node });
        log.info({ node }, 'node disconnected from config');
      };
      call.once('cancelled', done);
      call.once('close', done);
      call.once('error', done);
    },
  };
}
