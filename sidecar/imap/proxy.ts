import { listenMailProxy } from '../proxy/listen.ts';
import type { MailProxyHandle, MailProxyOptions } from '../proxy/types.ts';
import { runImapSession } from './session.ts';

export type { MailProxyHandle, MailProxyOptions } from '../proxy/types.ts';

/**
 * Start the public IMAP front door: answers pre-login commands itself, reads the login name
 * (LOGIN or AUTHENTICATE PLAIN), asks `route` where the mailbox lives, logs in to that backend
 * (local Dovecot or the owning shard over the mesh) passing the client address with ID, and
 * splices the session. STARTTLS on a plain port when `tls` is set; implicit TLS (993) with
 * `implicitTls`.
 *
 * @example
 * const imap = await startImapProxy({ host: '0.0.0.0', port: 143, tls: { secureContext: () => ctx },
 *   route, connectBackend, preauthTimeoutMs: 60_000, idleTimeoutMs: 1_800_000, maxLineLength: 8192,
 *   maxLiteral: 8192, maxAuthAttempts: 3, log });
 * imap.closeSessions((login) => movedUsers.has(login));
 */
export async function startImapProxy(o: MailProxyOptions): Promise<MailProxyHandle> {
  return listenMailProxy(
    {
      host: o.host,
      port: o.port,
      protocol: 'imap',
      implicitTls: o.implicitTls ?? false,
      secureContext: o.tls?.secureContext,
      handshakeTimeoutMs: o.preauthTimeoutMs,
      log: o.log,
    },
    (c) => runImapSession(c, o),
  );
}
