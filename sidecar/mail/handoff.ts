import type { Duplex } from 'node:stream';
import { MailClient } from '../lmtp/client.ts';
import type { Body, Deliverer, Envelope } from './deliver.ts';
import { TcpPool } from './lease.ts';
import { collapse, isOk, tempfail, type Reply } from './reply.ts';

/**
 * Hands a message to a durable store and returns the one reply the SMTP sender hears. The
 * message may be a promise: a front door calls this when its sender says DATA, so a store that
 * can (Postfix) opens its transaction while the body arrives; the promise resolves to the checked
 * message, or to `undefined` when it must not be stored (too big, refused): nothing is stored then.
 */
export type Handoff = (envelope: Envelope, message: Body) => Promise<Reply>;

/**
 * Postfix mode: re-inject into the local Postfix's trusted smtpd (no content filter, no
 * restrictions) and answer the sender with Postfix's own reply, so `250` means Postfix's queue
 * has it. Any trouble reaching Postfix is a 4xx: the sender keeps the message. Given a promise
 * and an idle pooled session, MAIL, RCPT and DATA go to Postfix at once (one round trip off the
 * message's latency; BODY=8BITMIME is declared, as the content cannot be inspected yet).
 */
export function postfixHandoff(address: string, heloName: string): Handoff & { close(): void } {
  const pool = new TcpPool(address);
  const clients = new WeakMap<Duplex, MailClient>();
  const handoff: Handoff = async (envelope, message) => {
    // Early only on a session already open: a public sender that says DATA and sends nothing must
    // not make Postfix start smtpd processes (it has few), and when none is idle (a busy Postfix)
    // the message goes over once, complete, instead of opening a session that may be withdrawn.
    let lease = Buffer.isBuffer(message) ? undefined : pool.takeIdle();
    if (!lease) {
      const body = await message;
      if (body === undefined) return tempfail('message withdrawn before it was queued', '4.3.0');
      message = body;
      try {
        lease = await pool.acquire();
      } catch (err) {
        return tempfail(`local queue unavailable: ${(err as Error).message}`, '4.3.0');
      }
    }
    try {
      let client = clients.get(lease.socket);
      if (!client || !client.usable) {
        client = await MailClient.open(lease.socket, { lmtp: false, heloName, timeoutMs: 120_000 });
        clients.set(lease.socket, client);
      }
      // All or nothing: the sender hears one reply, so a deferred recipient must not leave the
      // others queued (the sender's retry would queue them twice).
      const result = await client.send({ from: envelope.from, recipients: envelope.recipients, body: message, holdOnDeferral: true });
      lease.release(client.usable);
      const replies = result.recipients.map((r) => ({ code: r.code, enhanced: r.enhanced ?? (r.code < 300 ? '2.0.0' : r.code < 500 ? '4.0.0' : '5.0.0'), message: r.message }));
      // All accepted: the sender hears Postfix's own words ("Ok: queued as …").
      return replies.every(isOk) ? replies[0] : collapse(replies);
    } catch (err) {
      lease.release(false);
      return tempfail(`local queue failed: ${(err as Error).message}`, '4.3.0');
    }
  };
  return Object.assign(handoff, { close: () => pool.close() });
}

/**
 * Embedded mode (no Postfix): deliver to every owning shard before replying; `250` only when all
 * accepted. A retry after a partial failure is safe because the owners deliver idempotently.
 */
export function embeddedHandoff(deliverer: Deliverer): Handoff {
  // After the body: a public sender that says DATA and sends nothing must not hold sessions on
  // the owners' stores across the mesh.
  return async (envelope, message) => {
    const body = await message;
    if (body === undefined) return tempfail('message withdrawn before it was stored', '4.3.0');
    return collapse(await deliverer.deliver(envelope, body));
  };
}
