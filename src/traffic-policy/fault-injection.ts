import type { Random } from '../gateway-api/backend-pick.js';
import { type HeaderFacts, headersTest } from '../gateway-api/route-match.js';
import type { FaultInjection } from './types.js';

/** An injected abort's answer: an HTTP status, or a gRPC status (in grpc-status). */
export type AbortAnswer = { readonly httpStatus: number } | { readonly grpcStatus: number };

/** The faults chosen for one request: a delay before it is sent, then perhaps an abort instead. */
export interface ChosenFault {
  readonly delayMs?: number;
  readonly abort?: AbortAnswer;
}

/** A share out of 100, drawn with `random` (in [0, 1)); 100 always, 0 never. */
function drawn(percentage: number, random: Random): boolean {
  return percentage >= 100 || (percentage > 0 && random() * 100 < percentage);
}

/**
 * Which faults a request gets: none unless it matches the policy's headers; the delay and the abort
 * each drawn on their own (as Envoy's fault filter does), the delay first.
 */
export function chooseFault(fi: FaultInjection, req: HeaderFacts, random: Random): ChosenFault {
  if (fi.headers.length > 0 && !headersTest(fi.headers)(req)) return {};
  const delayed = fi.delay !== undefined && drawn(fi.delay.percentage, random);
  const aborted = fi.abort !== undefined && drawn(fi.abort.percentage, random);
  const abort =
    !aborted || fi.abort === undefined
      ? undefined
      : 'httpStatus' in fi.abort
        ? { httpStatus: fi.abort.httpStatus }
        : { grpcStatus: fi.abort.grpcStatus };
  return {
    ...(delayed && fi.delay !== undefined ? { delayMs: fi.delay.fixedDelayMs } : {}),
    ...(abort === undefined ? {} : { abort }),
  };
}
