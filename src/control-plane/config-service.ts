import * as grpc from '@grpc/grpc-js';
import type { Gauge } from 'prom-client';
import { isEmptyUpdate, makeUpdate, type PushedConfig } from '../api/config-codec.js';
import { tokenOf } from '../api/grpc.js';
import type { Logger } from '../telemetry/logger.js';
import type { NodeTokens } from './node-auth.js';

type Listener = (config: PushedConfig, version: bigint) => void;

/** The current config for nodes, versioned; streams subscribe and get every new version. */
export class ConfigPublisher {
  private current: PushedConfig | undefined;
  private version = 0n;
  private readonly listeners = new Set<Listener>();

  publish(config: PushedConfig): void {
    this.current = config;
    this.version++;
    for (const l of this.listeners) l(config, this.version);
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    if (this.current !== undefined) l(this.current, this.version);
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
            {
              code: node === undefined ? grpc.status.UNAUTHENTICATED : grpc.status.PERMISSION_DENIED,
            },
          ),
        );
        return;
      }
      let sent: PushedConfig | undefined;
      connected.inc({ node });
      log.info({ node, peer: call.getPeer() }, 'node connected for config');
      const unsubscribe = publisher.subscribe((config, version) => {
        const update = makeUpdate(sent, config, version);
        if (isEmptyUpdate(update) && sent !== undefined && sent.rejections === config.rejections) return;
        call.write(update);
        sent = config;
      });
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
