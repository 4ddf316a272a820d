/** What a proxy needs from a CA: the control plane's over gRPC (src/api/ca-client.ts), or a test's own. */
export interface CaClient {
  /** Signs a CSR for `identity`; resolves to the chain, leaf first. */
  sign(csrPem: string, identity: string, ttlSeconds: number): Promise<string[]>;
}
