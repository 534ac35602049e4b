import type { Duplex } from 'node:stream';
import { MailClient } from '../lmtp/client.ts';
import type { Body, Envelope, ShardSender } from './deliver.ts';
import type { Connector } from './lease.ts';
import { tempfail, type Reply } from './reply.ts';

/** Configuration of an {@link LmtpSender}. */
export interface LmtpSenderConfig {
  connect: Connector;
  heloName: string;
  timeoutMs?: number;
}

const defaultEnhanced = (code: number) => (code < 300 ? '2.0.0' : code < 500 ? '4.0.0' : '5.0.0');

/**
 * Delivers over LMTP on connections lent by a {@link Connector} (the local Dovecot, or a pooled
 * mesh connection to another shard's ingress). The LHLO is spoken once per connection and the
 * client is kept with the socket, so a reused connection costs one transaction, not a greeting.
 * With Dovecot on the other end the transaction goes as BDAT (CHUNKING): the envelope and the
 * message in one write once the body is complete, one round trip over the mesh instead of two.
 */
export class LmtpSender implements ShardSender {
  private readonly cfg: LmtpSenderConfig;
  private readonly clients = new WeakMap<Duplex, MailClient>();
  constructor(cfg: LmtpSenderConfig) {
    this.cfg = cfg;
  }

  async send(shardId: string, envelope: Envelope, body: Body): Promise<Reply[]> {
    let lease;
    try {
      lease = await this.cfg.connect(shardId);
    } catch (err) {
      return envelope.recipients.map(() => tempfail(`cannot reach shard ${shardId}: ${(err as Error).message}`));
    }
    try {
      let client = this.clients.get(lease.socket);
      if (!client || !client.usable) {
        client = await MailClient.open(lease.socket, { lmtp: true, heloName: this.cfg.heloName, timeoutMs: this.cfg.timeoutMs ?? 60_000, chunking: true });
        this.clients.set(lease.socket, client);
      }
      const result = await client.send({ from: envelope.from, recipients: envelope.recipients, body });
      lease.release(client.usable);
      return result.recipients.map((r) => ({ code: r.code, enhanced: r.enhanced ?? defaultEnhanced(r.code), message: r.message }));
    } catch (err) {
      lease.release(false);
      return envelope.recipients.map(() => tempfail(`delivery to shard ${shardId} failed: ${(err as Error).message}`));
    }
  }
}
