import { MailmeshError } from '../common/errors.ts';

/** Every code a control-plane operation can fail with. They travel to clients in the trailing
 * metadata `mailmesh-code` (see control-plane/status.ts), so they are part of the API contract. */
export type ControlPlaneErrorCode =
  | 'ERR_TOKEN_REPLAYED'
  | 'ERR_TOKEN_EXPIRED'
  | 'ERR_TOKEN_INVALID_SIGNATURE'
  | 'ERR_TOKEN_AUDIENCE'
  | 'ERR_TOKEN_INVALID'
  | 'ERR_IDENTITY_CHANGE'
  | 'ERR_RENEWAL_GRACE_PASSED'
  | 'ERR_RENEWAL_NOT_LATEST'
  | 'ERR_RENEWAL_BAD_PROOF'
  | 'ERR_UNKNOWN_SHARD'
  | 'ERR_BAD_REQUEST'
  | 'ERR_UNAUTHENTICATED'
  | 'ERR_PERMISSION_DENIED'
  | 'ERR_RATE_LIMITED'
  | 'ERR_NO_POLICY'
  | 'ERR_CONFIG'
  | 'ERR_STATE';

/**
 * The error every `control-plane/` operation throws for a refusal the caller can act on.
 *
 * @example throw new ControlPlaneError('ERR_TOKEN_REPLAYED', 'join token already used: create a new one')
 */
export class ControlPlaneError extends MailmeshError<ControlPlaneErrorCode> {}

/** A refusal because the caller is too fast; `retryAfterMs` says when to come back. */
export class RateLimitedError extends ControlPlaneError {
  readonly retryAfterMs: number;
  constructor(retryAfterMs: number, who: string) {
    super('ERR_RATE_LIMITED', `too many Sign requests from ${who}: retry after ${retryAfterMs} ms`);
    this.retryAfterMs = retryAfterMs;
  }
}

/** True when `err` is a {@link ControlPlaneError}, optionally with the given code. */
export function isControlPlaneError(err: unknown, code?: ControlPlaneErrorCode): err is ControlPlaneError {
  return err instanceof ControlPlaneError && (code === undefined || err.code === code);
}
