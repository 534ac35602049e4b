import { MailmeshError } from '../../common/errors.ts';

/**
 * Postfix integration failures:
 * - `ERR_NETSTRING`: malformed or oversized netstring on a socketmap connection.
 * - `ERR_BAD_HOSTPORT`: a `host:port` setting cannot be parsed.
 */
export type PostfixErrorCode = 'ERR_NETSTRING' | 'ERR_BAD_HOSTPORT';

/** A Postfix integration error. */
export class PostfixError extends MailmeshError<PostfixErrorCode> {}
