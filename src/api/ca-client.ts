import * as grpc from '@grpc/grpc-js';
import { AmbitError, ErrorCode } from '../errors.js';
import type { CaClient } from '../identity/ca-client.js';
import { CHANNEL_OPTIONS, controlPlaneCredentials, grpcTarget } from './channel.js';
import { bearer, services } from './grpc.js';

/** The control plane's CA over gRPC (IstioCertificateService), authenticated with the node token. */
export class GrpcCaClient implements CaClient {
  private client: grpc.Client & Record<string, unknown>;

  constructor(
    private readonly address: string,
    private readonly token: () => string,
    bundle: readonly string[],
    private readonly cpIdentity: string,
  ) {
    this.client = this.makeClient(bundle);
  }

  private makeClient(bundle: readonly string[]): grpc.Client & Record<string, unknown> {
    const Ctor = services().ca;
    return new Ctor(
      grpcTarget(this.address),
      controlPlaneCredentials(bundle, this.cpIdentity),
      CHANNEL_OPTIONS,
    ) as unknown as grpc.Client & Record<string, unknown>;
  }

  /** A rotated trust bundle: new connections verify the control plane against it. */
  setBundle(bundle: readonly string[]): void {
    this.client.close();
    this.client = this.makeClient(bundle);
  }

  sign(csrPem: string, identity: string, ttlSeconds: number): Promise<string[]> {
    const request = {
      csr: csrPem,
      validity_duration: String(ttlSeconds),
      metadata: { fields: { ImpersonatedIdentity: { stringValue: identity } } },
    };
    return new Promise((resolve, reject) => {
      const call = this.client.CreateCertificate as (
        req: unknown,
        md: grpc.Metadata,
        opts: grpc.CallOptions,
        cb: (err: grpc.ServiceError | null, res?: { cert_chain: string[] }) => void,
      ) => void;
      call.call(this.client, request, bearer(this.token()), { deadline: Date.now() + 10_000 }, (err, res) => {
        if (err !== null) {
          const code =
            err.code === grpc.status.PERMISSION_DENIED ? ErrorCode.CA_DENIED : ErrorCode.CONTROL_PLANE;
          reject(
            new AmbitError(code, `CA at ${this.address} refused ${identity}: ${err.details || err.message}`, {
              cause: err,
            }),
          );
        } else {
          resolve(res?.cert_chain ?? []);
        }
      });
    });
  }

  close(): void {
    this.client.close();
  }
}
