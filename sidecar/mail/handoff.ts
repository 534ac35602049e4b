import type { Duplex } from 'node:stream';
import { MailClient } from '../lmtp/client.ts';
import type { Deliverer, Envelope } from './deliver.ts';
import { TcpPool } from './lease.ts';
import { collapse, isOk, tempfail, type Reply } from './reply.ts';

/** The envelope of a hand-off; `eightBit` is what the sender declared (BODY=8BITMIME), used
 * when the message is still arriving and cannot be inspected yet. */
export type HandoffEnvelope = Envelope & { eightBit?: boolean };

/**
 * Hands a message to a durable store and returns the one reply the SMTP sender hears. The
 * message may be a promise: a front door calls this when its sender says DATA, so a store that
 * can (Postfix) opens its transaction while the body arrives; the promise resolves to the checked
 * message, or to `undefined` when it must not be stored (too big, refused): nothing is stored then.
 */
export type Handoff = (envelope: HandoffEnvelope, message: Buffer | Promise<Buffer | undefined>) => Promise<Reply>;

/**
 * Postfix mode: re-inject into the local Postfix's trusted smtpd (no content filter, no
 * restrictions) and answer the sender with Postfix's own reply, so `250` means Postfix's queue
 * has it. Any trouble reaching Postfix is a 4xx: the sender keeps the message. Given a promise,
 * MAIL, RCPT and DATA go to Postfix at once (one round trip off each message's latency).
 */
export function postfixHandoff(address: string, heloName: string): Handoff & { close(): void } {
  const pool = new TcpPool(address);
  const clients = new WeakMap<Duplex, MailClient>();
  const handoff: Handoff = async (envelope, message) => {
    let lease;
    try {
      lease = await pool.acquire();
    } catch (err) {
      return tempfail(`local queue unavailable: ${(err as Error).message}`, '4.3.0');
    }
    try {
      let client = clients.get(lease.socket);
      if (!client || !client.usable) {
        client = await MailClient.open(lease.socket, { lmtp: false, heloName, timeoutMs: 120_000 });
        clients.set(lease.socket, client);
      }
      // All or nothing: the sender hears one reply, so a deferred recipient must not leave the
      // others queued (the sender's retry would queue them twice).
      const eightBit = Buffer.isBuffer(message) ? undefined : envelope.eightBit;
      const result = await client.send({ from: envelope.from, recipients: envelope.recipients, body: message, eightBit, holdOnDeferral: true });
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
  // Given a promise, every owner's transaction opens while the body arrives.
  return async (envelope, message) => collapse(await deliverer.deliver({ from: envelope.from, recipients: envelope.recipients }, message));
}
