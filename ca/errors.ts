import { MailmeshError } from '../common/errors.ts';

/** Every code a `ca/` operation can fail with. Tests and callers branch on these, never on messages. */
export type CaErrorCode =
  | 'ERR_NO_CHAIN'
  | 'ERR_UNKNOWN_AUTHORITY'
  | 'ERR_CERT_EXPIRED'
  | 'ERR_CERT_NOT_YET_VALID'
  | 'ERR_WRONG_TRUST_DOMAIN'
  | 'ERR_URI_SAN_COUNT'
  | 'ERR_NOT_SPIFFE'
  | 'ERR_LEAF_IS_CA'
  | 'ERR_MISSING_EKU'
  | 'ERR_BAD_KEY_USAGE'
  | 'ERR_REVOKED_SERIAL'
  | 'ERR_REVOKED_IDENTITY'
  | 'ERR_CHAIN_INVALID'
  | 'ERR_CSR_INVALID'
  | 'ERR_BAD_TRUST_DOMAIN'
  | 'ERR_BAD_DNS_NAME'
  | 'ERR_BAD_TTL'
  | 'ERR_BAD_ALGORITHM'
  | 'ERR_BAD_KEY'
  | 'ERR_BAD_CERT'
  | 'ERR_ISSUER_EXPIRED'
  | 'ERR_ISSUER_SELFTEST'
  | 'ERR_CA_EXISTS'
  | 'ERR_CA_NOT_FOUND'
  | 'ERR_CA_UNREADABLE'
  | 'ERR_ROOT_UNKNOWN'
  | 'ERR_ROOT_LAST'
  | 'ERR_ROOT_IN_USE'
  | 'ERR_ROTATION_PENDING'
  | 'ERR_PKCS12';

/**
 * The error every `ca/` function throws. `code` says what went wrong; the message says what to do.
 *
 * @example
 * try { verifyPeerChain(chain, opts) } catch (e) { if (e instanceof CaError && e.code === 'ERR_CERT_EXPIRED') … }
 */
export class CaError extends MailmeshError<CaErrorCode> {}

/** True when `err` is a {@link CaError}, optionally with the given code. */
export function isCaError(err: unknown, code?: CaErrorCode): err is CaError {
  return err instanceof CaError && (code === undefined || err.code === code);
}
