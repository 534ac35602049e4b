import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/log.ts';
import { MailmeshError } from '../common/errors.ts';
import { CaError } from '../ca/errors.ts';
import { PolicyError } from '../policies/errors.ts';
import { ControlPlaneError, RateLimitedError } from './errors.ts';

/** Trailing metadata key carrying the domain error code to the client. */
export const CODE_METADATA = 'mailmesh-code';
/** Trailing metadata key carrying the retry hint of RESOURCE_EXHAUSTED, in milliseconds. */
export const RETRY_AFTER_METADATA = 'retry-after-ms';

const S = grpc.status;

// ControlPlaneError codes → gRPC status. Token problems are UNAUTHENTICATED (the credential is
// bad), identity problems PERMISSION_DENIED (the credential is fine, the request is not allowed).
const CONTROL_PLANE: Record<ControlPlaneError['code'], grpc.status> = {
  ERR_TOKEN_REPLAYED: S.UNAUTHENTICATED,
  ERR_TOKEN_EXPIRED: S.UNAUTHENTICATED,
  ERR_TOKEN_INVALID_SIGNATURE: S.UNAUTHENTICATED,
  ERR_TOKEN_AUDIENCE: S.UNAUTHENTICATED,
  ERR_TOKEN_INVALID: S.UNAUTHENTICATED,
  ERR_UNAUTHENTICATED: S.UNAUTHENTICATED,
  ERR_IDENTITY_CHANGE: S.PERMISSION_DENIED,
  ERR_RENEWAL_GRACE_PASSED: S.UNAUTHENTICATED,
  ERR_RENEWAL_NOT_LATEST: S.UNAUTHENTICATED,
  ERR_RENEWAL_BAD_PROOF: S.UNAUTHENTICATED,
  ERR_PERMISSION_DENIED: S.PERMISSION_DENIED,
  ERR_UNKNOWN_SHARD: S.FAILED_PRECONDITION,
  ERR_BAD_REQUEST: S.INVALID_ARGUMENT,
  ERR_RATE_LIMITED: S.RESOURCE_EXHAUSTED,
  ERR_NO_POLICY: S.UNAVAILABLE,
  ERR_CONFIG: S.INTERNAL,
  ERR_STATE: S.INTERNAL,
};

function caStatus(code: CaError['code']): grpc.status {
  switch (code) {
    case 'ERR_CSR_INVALID':
    case 'ERR_BAD_KEY':
    case 'ERR_BAD_DNS_NAME':
    case 'ERR_BAD_TTL':
      return S.INVALID_ARGUMENT;
    case 'ERR_REVOKED_SERIAL':
    case 'ERR_REVOKED_IDENTITY':
    case 'ERR_WRONG_TRUST_DOMAIN':
      return S.PERMISSION_DENIED;
    case 'ERR_ISSUER_EXPIRED':
      return S.UNAVAILABLE;
    default:
      // Anything else from verification is a certificate the caller presented that we do not accept.
      return S.UNAUTHENTICATED;
  }
}

/**
 * The ONE place where errors become gRPC statuses (and get logged). The domain `code` travels in
 * the trailing metadata `mailmesh-code`; a rate-limit refusal also carries `retry-after-ms` and
 * says the same in its message. Unknown errors are INTERNAL with a generic message: details stay
 * in the log, not on the wire.
 */
export function toServiceError(err: unknown, log: Logger, ctx: { method: string; peer: string }): Partial<grpc.ServiceError> {
  const metadata = new grpc.Metadata();
  let code: grpc.status;
  let details: string;
  if (err instanceof ControlPlaneError) {
    code = CONTROL_PLANE[err.code];
    details = err.message;
    if (err instanceof RateLimitedError) metadata.set(RETRY_AFTER_METADATA, String(err.retryAfterMs));
  } else if (err instanceof CaError) {
    code = caStatus(err.code);
    details = err.message;
  } else if (err instanceof PolicyError) {
    code = S.FAILED_PRECONDITION;
    details = err.message;
  } else if (err instanceof MailmeshError) {
    code = S.INTERNAL;
    details = err.message;
  } else {
    log.error({ err, ...ctx }, 'internal error');
    return { code: S.INTERNAL, details: 'internal error in the control plane (see its log)', metadata };
  }
  metadata.set(CODE_METADATA, err.code);
  const level = code === S.INTERNAL || code === S.UNAVAILABLE ? 'error' : 'warn';
  log[level]({ ...ctx, code: err.code, grpc: S[code] }, details);
  return { code, details, metadata };
}
