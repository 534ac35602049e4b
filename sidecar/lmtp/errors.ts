import { MailmeshError } from '../../common/errors.ts';

/**
 * Why an SMTP/LMTP client call failed as a whole (per-recipient refusals are values, not errors):
 * - `ERR_SMTP_TIMEOUT`: the server did not answer (or drain our writes) within the timeout.
 * - `ERR_SMTP_CONNECTION`: the socket closed or failed.
 * - `ERR_SMTP_PROTOCOL`: the server sent something that is not an SMTP reply.
 * - `ERR_SMTP_REJECTED`: the greeting or LHLO/EHLO was refused (see `replyCode`).
 * - `ERR_SMTP_UNUSABLE`: the connection was already broken by an earlier failure.
 *
 * All of them are temporary from the sender's point of view: the caller answers 4xx so the
 * message stays queued (nothing is lost), and drops the connection from its pool.
 */
export type MailClientErrorCode =
  | 'ERR_SMTP_TIMEOUT'
  | 'ERR_SMTP_CONNECTION'
  | 'ERR_SMTP_PROTOCOL'
  | 'ERR_SMTP_REJECTED'
  | 'ERR_SMTP_UNUSABLE';

/** An SMTP/LMTP client failure; `replyCode` is set when a server reply caused it. */
export class MailClientError extends MailmeshError<MailClientErrorCode> {
  readonly replyCode: number | undefined;
  constructor(code: MailClientErrorCode, message: string, options?: ErrorOptions & { replyCode?: number }) {
    super(code, message, options);
    this.replyCode = options?.replyCode;
  }
}
