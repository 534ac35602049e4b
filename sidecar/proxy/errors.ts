import { MailmeshError } from '../../common/errors.ts';

/** Why a proxied IMAP/POP3 session could not go on. */
export type ProxyErrorCode =
  | 'ERR_LINE_TOO_LONG'
  | 'ERR_LITERAL_TOO_BIG'
  | 'ERR_CLIENT_CLOSED'
  | 'ERR_BACKEND_CLOSED'
  | 'ERR_BACKEND_PROTOCOL'
  | 'ERR_BACKEND_UNAVAILABLE';

/** An error of the login-routing proxies (`sidecar/imap`, `sidecar/pop3`). */
export class ProxyError extends MailmeshError<ProxyErrorCode> {}
