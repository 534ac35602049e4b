import { MailmeshError } from '../../common/errors.ts';

/**
 * Embedded Maildir backend failures:
 * - `ERR_MAILDIR_BAD_ADDRESS`: the address cannot name a mailbox directory safely.
 * - `ERR_MAILDIR_WRITE`: storing a copy failed (disk full, permissions); answered `451 4.3.0`.
 */
export type MaildirErrorCode = 'ERR_MAILDIR_BAD_ADDRESS' | 'ERR_MAILDIR_WRITE';

/** An embedded Maildir backend error. */
export class MaildirError extends MailmeshError<MaildirErrorCode> {}
