import { setTimeout as sleep } from 'node:timers/promises';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../telemetry/logger.js';
import { CHANNEL_OPTIONS, controlPlaneCredentials, grpcTarget } from './channel.js';
import { applyUpdate, type ConfigUpdate, type PushedConfig } from './config-codec.js';
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

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;

/** The delay before reconnect attempt `n` (0-based): exponential, capped, with full jitter. */
export function backoffDelay(n: number, random = Math.random): number {
  const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** n);
  return Math.round(cap / 2 + (random() * cap) / 2);
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
    const delay = backoffDelay(attempt++);
    opts.log.warn(
      { reason: ended, retryInMs: delay, haveConfig: current !== undefined },
      'config stream lost; keeping the last good config',
    );
    await sleep(delay, undefined, { signal }).catch(() => undefined);
  }
}
