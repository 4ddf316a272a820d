import { setTimeout as sleep } from 'node:timers/promises';
import type * as grpc from '@grpc/grpc-js';
import { backoffDelay, RECONNECT_BACKOFF } from '../net/backoff.js';
import type { Logger } from '../telemetry/logger.js';
import { CHANNEL_OPTIONS, controlPlaneCredentials, grpcTarget } from './channel.js';
import type { ConfigUpdate, PushedConfig } from './config-codec.js';
import { applyUpdate } from './config-decode.js';
import { bearer, services } from './grpc.js';

export interface ConfigClientOptions {
  readonly address: string;
  readonly node: string;
  readonly token: () => string;
  readonly bundle: () => readonly string[];
  readonly cpIdentity: string;
  readonly log: Logger;
  /** Called with every new config; the last good one stays in force while the control plane is away. */
  readonly onConfig: (config: PushedConfig, version: string) => void;
  readonly onConnection?: (connected: boolean) => void;
}

/**
 * Follows the control plane's config stream until `signal` aborts: reconnects with backoff, and
 * never drops the config it has, so proxies keep serving while the control plane is down.
 */
export async function followConfig(opts: ConfigClientOptions, signal: AbortSignal): Promise<void> {
  let current: PushedConfig | undefined;
  let attempt = 0;
  while (!signal.aborted) {
    const Ctor = services().config;
    const client = new Ctor(
      grpcTarget(opts.address),
      controlPlaneCredentials(opts.bundle(), opts.cpIdentity),
      CHANNEL_OPTIONS,
    ) as unknown as grpc.Client & {
      StreamConfig(req: unknown, md: grpc.Metadata): grpc.ClientReadableStream<ConfigUpdate>;
    };
    const ended = await new Promise<string>((resolve) => {
      const stream = client.StreamConfig({ node: opts.node }, bearer(opts.token()));
      const onAbort = (): void => stream.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
      stream.on('data', (u: ConfigUpdate) => {
        if (attempt !== 0 || current === undefined) opts.onConnection?.(true);
        attempt = 0;
        const { config, problems } = applyUpdate(current, u);
        for (const p of problems) opts.log.warn({ version: u.version }, `config entry rejected: ${p}`);
        current = config;
        opts.onConfig(config, u.version);
      });
      stream.on('error', (err: grpc.ServiceError) => {
        signal.removeEventListener('abort', onAbort);
        resolve(err.details || err.message);
      });
      stream.on('end', () => {
        signal.removeEventListener('abort', onAbort);
        resolve('the control plane closed the stream');
      });
    });
    client.close();
    if (signal.aborted) return;
    opts.onConnection?.(false);
    const delay = backoffDelay(attempt++, RECONNECT_BACKOFF);
    opts.log.warn(
      { reason: ended, retryInMs: delay, haveConfig: current !== undefined },
      'config stream lost; keeping the last good config',
    );
    await sleep(delay, undefined, { signal }).catch(() => undefined);
  }
}
