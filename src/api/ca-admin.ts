/** The control plane's CA administration (its admin port, localhost): what `ambit ca` reads and sends. */
export interface CaStatus {
  /** Serial of the root that signs new certificates. */
  readonly signingRoot: string;
  readonly trusted: readonly { serial: string; notBefore: string; notAfter: string; signing: boolean }[];
}

export const CA_ADMIN_PATHS = {
  status: '/ca',
  rotate: '/ca/rotate',
  dropOldRoots: '/ca/drop-old-roots',
} as const;
