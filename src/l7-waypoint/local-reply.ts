import {
  FAULT_ABORT_FLAG,
  grpcStatusOfHttp,
  HTTP_FAILURES,
  type HttpFailure,
} from '../telemetry/http-outcomes.js';
import type { AbortAnswer } from '../traffic-policy/fault-injection.js';
import type { Downstream } from './downstream.js';
import type { RequestRecord } from './request-record.js';

/*
 * The answers the waypoint makes itself, to a client's request: a failure with its status and flag,
 * a refused token, an injected abort. A gRPC client gets them as gRPC answers (status 200 with
 * grpc-status, Trailers-Only), everyone else as a short text body. Each writes what it answered into
 * the request's record.
 */

/** The request being answered: its stream, its record, and whether its client is still there. */
export interface ReplyTo {
  readonly down: Downstream;
  readonly rec: RequestRecord;
  readonly grpc: boolean;
  readonly clientGone: boolean;
}

/** An answer's body and headers: text for HTTP, grpc-status and grpc-message for gRPC. */
function send(
  to: ReplyTo,
  status: number,
  message: { readonly text: string; readonly grpc: number; readonly grpcMessage: string },
  headers: Readonly<Record<string, string>>,
): void {
  const { down, rec } = to;
  if (to.grpc) {
    rec.status = 200;
    rec.grpcStatus = message.grpc;
    down.respond(
      200,
      {
        'content-type': 'application/grpc',
        'grpc-status': String(message.grpc),
        'grpc-message': message.grpcMessage,
        ...headers,
      },
      { end: true, trailers: false },
    );
    return;
  }
  const body = Buffer.from(message.text);
  rec.status = status;
  rec.responseBytes = body.length;
  down.respond(
    status,
    { 'content-type': 'text/plain', 'content-length': String(body.length), ...headers },
    { end: false, trailers: false },
  );
  down.write(body);
  down.end();
}

/**
 * A failure, with its status and flag (gRPC: in grpc-status). A client already gone is recorded as
 * such (status 0, DC); a response already started is cut.
 */
export function failureReply(
  to: ReplyTo,
  failure: HttpFailure,
  reason: string,
  extraFlags: readonly string[] = [],
  headers: Readonly<Record<string, string>> = {},
): void {
  const { rec, down } = to;
  const info = HTTP_FAILURES[failure];
  rec.flags.push(info.flag, ...extraFlags);
  rec.reason = reason;
  if (failure === 'downstream-reset' || to.clientGone) {
    rec.status = 0;
    if (!rec.flags.includes('DC')) rec.flags.push('DC');
    return;
  }
  rec.status = info.status;
  if (down.responseStarted) {
    down.reset();
    return;
  }
  send(
    to,
    info.status,
    {
      text: `${info.message}\n`,
      grpc: grpcStatusOfHttp(info.status),
      grpcMessage: encodeURIComponent(info.message),
    },
    headers,
  );
}

/**
 * Envoy jwt_authn's answer to a refused token: 401 (403 for audiences), its status text as the body,
 * `www-authenticate: Bearer realm=...`, and no response flag (Envoy sets none; the reason says why).
 */
export function authnReply(to: ReplyTo, status: 401 | 403, message: string, reason: string): void {
  const { rec, down } = to;
  rec.reason = reason;
  if (to.clientGone) {
    rec.status = 0;
    rec.flags.push('DC');
    return;
  }
  const auth = `Bearer realm="http://${down.authority}${down.path.split('?')[0]}", error="invalid_token"`;
  send(
    to,
    status,
    { text: message, grpc: grpcStatusOfHttp(status), grpcMessage: encodeURIComponent(message) },
    { 'www-authenticate': auth },
  );
}

/** The answer of an injected abort: its status (gRPC: in grpc-status, also for an HTTP status), flag FI. */
export function faultReply(to: ReplyTo, abort: AbortAnswer, reason: string): void {
  const { rec } = to;
  rec.flags.push(FAULT_ABORT_FLAG);
  rec.reason = reason;
  const grpc = 'grpcStatus' in abort ? abort.grpcStatus : grpcStatusOfHttp(abort.httpStatus);
  send(
    { ...to, grpc: to.grpc || 'grpcStatus' in abort },
    'httpStatus' in abort ? abort.httpStatus : 200,
    { text: 'fault filter abort\n', grpc, grpcMessage: 'fault%20filter%20abort' },
    {},
  );
}
