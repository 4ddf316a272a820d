import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/*
 * The control plane's gRPC API, loaded from the .proto files with proto-loader: numbers stay numbers
 * (64-bit ones as strings), enums as strings, defaults filled in, so decoders see every field.
 */
const here = dirname(fileURLToPath(import.meta.url));
// src/api/*.proto is copied next to the compiled files by `make build`; tests load it from src/.
const protoDir = here;

const OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
};

function load(file: string): grpc.GrpcObject {
  return grpc.loadPackageDefinition(protoLoader.loadSync(join(protoDir, file), OPTIONS));
}

type ServiceCtor = grpc.ServiceClientConstructor;

let cached: { ca: ServiceCtor; config: ServiceCtor } | undefined;

/** The two services: Istio's certificate service and Ambit's config stream. */
export function services(): { ca: ServiceCtor; config: ServiceCtor } {
  if (cached === undefined) {
    const ca = load('istio-ca.proto') as unknown as {
      istio: { v1: { auth: { IstioCertificateService: ServiceCtor } } };
    };
    const cfg = load('ambit.proto') as unknown as { ambit: { v1: { MeshConfig: ServiceCtor } } };
    cached = { ca: ca.istio.v1.auth.IstioCertificateService, config: cfg.ambit.v1.MeshConfig };
  }
  return cached;
}

export const AUTHORIZATION = 'authorization';

/** Call metadata carrying a node's bearer token. */
export function bearer(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(AUTHORIZATION, `Bearer ${token}`);
  return md;
}

/** The token from `authorization: Bearer <token>`, or undefined. */
export function tokenOf(md: grpc.Metadata): string | undefined {
  const v = md.get(AUTHORIZATION)[0];
  if (typeof v !== 'string') return undefined;
  const m = /^Bearer (.+)$/.exec(v);
  return m?.[1];
}

/**
 * A service definition whose server may write responses already serialized: a Buffer goes out as it
 * is, anything else through the method's serializer. For a message written to many streams (the config
 * push), serialize once and write the bytes.
 */
export function withPreserializedResponses(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def as Record<string, grpc.MethodDefinition<unknown, unknown>>)) {
    out[name] = {
      ...m,
      responseSerialize: (v: unknown) => (Buffer.isBuffer(v) ? v : m.responseSerialize(v)),
    };
  }
  return out as grpc.ServiceDefinition;
}
