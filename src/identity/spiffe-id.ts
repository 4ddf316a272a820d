import { AmbitError, ErrorCode } from '../errors.js';

const SEGMENT = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const TRUST_DOMAIN = /^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/;

/**
 * A workload identity, `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`, the form Istio
 * uses. `SpiffeId.parse` is the only way to get one from text.
 */
export class SpiffeId {
  private constructor(
    readonly trustDomain: string,
    readonly namespace: string,
    readonly serviceAccount: string,
  ) {}

  static of(trustDomain: string, namespace: string, serviceAccount: string): SpiffeId {
    if (!TRUST_DOMAIN.test(trustDomain))
      throw new AmbitError(ErrorCode.IDENTITY, `trust domain ${JSON.stringify(trustDomain)} is not valid`);
    if (!SEGMENT.test(namespace))
      throw new AmbitError(
        ErrorCode.IDENTITY,
        `namespace ${JSON.stringify(namespace)} is not valid in a SPIFFE id`,
      );
    if (!SEGMENT.test(serviceAccount)) {
      throw new AmbitError(
        ErrorCode.IDENTITY,
        `service account ${JSON.stringify(serviceAccount)} is not valid in a SPIFFE id`,
      );
    }
    return new SpiffeId(trustDomain, namespace, serviceAccount);
  }

  /** Parses `spiffe://td/ns/x/sa/y`; anything else throws AMBIT_ERR_IDENTITY naming the value. */
  static parse(uri: string): SpiffeId {
    const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
    if (m === null) {
      throw new AmbitError(
        ErrorCode.IDENTITY,
        `${JSON.stringify(uri)} is not a workload identity (spiffe://<trust-domain>/ns/<ns>/sa/<sa>)`,
      );
    }
    return SpiffeId.of(m[1]!, m[2]!, m[3]!);
  }

  /** Like parse, but undefined instead of an error. */
  static tryParse(uri: string): SpiffeId | undefined {
    try {
      return SpiffeId.parse(uri);
    } catch {
      return undefined;
    }
  }

  toString(): string {
    return `spiffe://${this.trustDomain}/ns/${this.namespace}/sa/${this.serviceAccount}`;
  }

  equals(other: SpiffeId): boolean {
    return this.toString() === other.toString();
  }
}
