import { MailmeshError } from '../../common/errors.ts';

/** Codes of the mail path. */
export type MailErrorCode = 'ERR_MAIL_NO_ROUTE' | 'ERR_MAIL_BACKEND' | 'ERR_MAIL_TOO_BIG';

/** An error on the mail path; callers turn it into a 4xx reply. */
export class MailError extends MailmeshError<MailErrorCode> {}
