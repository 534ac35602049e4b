import { MailmeshError } from '../../common/errors.ts';

/** Every code a `sidecar/identity/` operation can fail with. */
export type IdentityErrorCode =
  | 'ERR_IDENTITY_NONE'
  | 'ERR_IDENTITY_EXPIRED'
  | 'ERR_IDENTITY_SOURCE'
  | 'ERR_IDENTITY_BAD_CERT'
  | 'ERR_IDENTITY_KEY_MISMATCH'
  | 'ERR_IDENTITY_STATE_UNREADABLE'
  | 'ERR_SNAPSHOT_CACHE_INVALID';

/**
 * The error `sidecar/identity/` throws. `code` says what went wrong; the message says what to do.
 *
 * @example if (isIdentityError(err, 'ERR_IDENTITY_SOURCE')) retryLater();
 */
export class IdentityError extends MailmeshError<IdentityErrorCode> {}

/** True when `err` is an {@link IdentityError}, optionally with the given code. */
export function isIdentityError(err: unknown, code?: IdentityErrorCode): err is IdentityError {
  return err instanceof IdentityError && (code === undefined || err.code === code);
}
