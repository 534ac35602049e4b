import { listenMailProxy } from '../proxy/listen.ts';
import type { MailProxyHandle, MailProxyOptions } from '../proxy/types.ts';
import { runPop3Session } from './session.ts';

export type { MailProxyHandle, MailProxyOptions } from '../proxy/types.ts';

/**
 * Start the public POP3 front door: CAPA, STLS (110) or implicit TLS (995), USER/PASS and AUTH
 * PLAIN; the login name picks the backend (local Dovecot or the owning shard over the mesh),
 * the client address is passed with XCLIENT, the login is replayed and the session spliced.
 * `maxLiteral` is unused (POP3 has no literals); the options are shared with IMAP.
 *
 * @example
 * const pop3 = await startPop3Proxy({ ...imapOptions, port: 110 });
 * pop3.closeSessions((login) => movedUsers.has(login));
 */
export async function startPop3Proxy(o: MailProxyOptions): Promise<MailProxyHandle> {
  return listenMailProxy(
    {
      host: o.host,
      port: o.port,
      protocol: 'pop3',
      implicitTls: o.implicitTls ?? false,
      secureContext: o.tls?.secureContext,
      handshakeTimeoutMs: o.preauthTimeoutMs,
      log: o.log,
    },
    (c) => runPop3Session(c, o),
  );
}
