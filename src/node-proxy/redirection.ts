import type { Server } from 'node:net';
import type { OriginalDestination } from '../bpf/redirect-maps.js';

/**
 * What the node proxy needs from the node's redirection, and nothing more, so that the proxy runs
 * in-process in a test without eBPF or privileges (a fake stands in) and on a node with the node
 * agent's pinned programs (redirection-ebpf.ts).
 */
export interface OriginalDestinationTable {
  /** Where the connection from this client address was going; taken once (a second call finds none). */
  take(peerIp: string, peerPort: number): OriginalDestination | undefined;
  close(): void;
}

export interface Redirection {
  /** The original-destination table, once the node agent has pinned it (waits until then). */
  open(signal: AbortSignal): Promise<OriginalDestinationTable | undefined>;
  /** Where the outbound listener of one address listens (it reaches any port of that address). */
  registerOutbound(server: Server, family: 4 | 6): void;
  /** How the inbound-plaintext listener of a family listens: a transparent socket on the node. */
  inboundListen(
    family: 4 | 6,
    port: number,
  ): { readonly fd: number } | { readonly host: string; readonly port: number };
}
