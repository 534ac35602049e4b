import { SMTPServer } from 'smtp-server';
import type { Logger } from '../../common/log.ts';
import type { Handoff } from './handoff.ts';
import { isOk, type Reply } from './reply.ts';
import { readBounded } from './read-body.ts';
import { greetAtOnce, listen, okText, replyError, tooBig } from './smtp-listener.ts';

/** Configuration of the outbound content filter (Postfix FILTER_README, after-queue). */
export interface FilterConfig {
  host: string;
  port: number;
  hostname: string;
  maxSize: number;
  /** Adds DKIM-Signature (and optionally an ARC seal); returns the message unchanged when no key
   * covers the sender's domain. */
  sign: (message: Buffer, fromDomain: string) => Promise<Buffer>;
  /** Re-injection into Postfix (the smtpd with `content_filter=` cleared). */
  reinject: Handoff;
  log: Logger;
}

/** The domain of the RFC 5322 From header (DKIM signs for the author domain, RFC 6376 §3.5 d=). */
export function fromDomain(message: Buffer): string {
  const end = message.indexOf('\r\n\r\n');
  const head = message.subarray(0, end < 0 ? Math.min(message.length, 65536) : end).toString('latin1');
  const m = /^from:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*/im.exec(head);
  const addr = m ? /@([A-Za-z0-9.-]+)/.exec(m[0]) : null;
  return addr ? addr[1].toLowerCase() : '';
}

/**
 * Start the outbound filter: Postfix passes outbound mail here after queueing; it is signed and
 * re-injected, and Postfix hears the re-injection's answer (a 4xx keeps it in Postfix's queue).
 */
export async function startFilter(cfg: FilterConfig): Promise<{ port: number; close(): Promise<void> }> {
  const server = new SMTPServer({
    name: cfg.hostname,
    size: cfg.maxSize,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    // Postfix on this host: no PTR query per connection.
    disableReverseLookup: true,
    onData(stream, session, callback) {
      void (async () => {
        const body = await readBounded(stream, cfg.maxSize);
        if (!body) return callback(replyError(tooBig(cfg.maxSize)));
        const signed = await cfg.sign(body, fromDomain(body));
        const reply: Reply = await cfg.reinject(
          { from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', recipients: session.envelope.rcptTo.map((r) => r.address) },
          signed,
        );
        if (isOk(reply)) return callback(null, okText(reply));
        callback(replyError(reply));
      })().catch((err: Error) => {
        cfg.log.error({ event: 'filter.error', err: err.message }, 'outbound filter failure');
        callback(replyError({ code: 451, enhanced: '4.3.0', message: 'signing failed, try again later' }));
      });
    },
  });
  greetAtOnce(server);
  return listen(server, cfg.host, cfg.port);
}
