import { join } from 'node:path';
import { MaildirError } from './errors.ts';

/** One path component: no separators, no dot-only names, no control characters. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what we refuse
const SAFE_PART = /^(?!\.{1,2}$)[^/\\\0-\x1f]+$/;

/**
 * The Maildir of `address` under `root`: `root/<domain>/<local>/Maildir`, lower-cased (mailbox
 * names are case-insensitive here, as with Dovecot's `%Lu`). Throws `ERR_MAILDIR_BAD_ADDRESS`
 * for an address that could escape `root` or lacks a domain.
 *
 * @example maildirPath('/var/mail', 'Bob@Mail.Test') // '/var/mail/mail.test/bob/Maildir'
 */
export function maildirPath(root: string, address: string): string {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at).toLowerCase();
  const domain = address.slice(at + 1).toLowerCase();
  if (at <= 0 || !SAFE_PART.test(local) || !SAFE_PART.test(domain)) {
    throw new MaildirError('ERR_MAILDIR_BAD_ADDRESS', `address cannot name a mailbox: ${JSON.stringify(address)}`);
  }
  return join(root, domain, local, 'Maildir');
}
