import type { Reply } from './reply.ts';
import { tempfail } from './reply.ts';

/** Where an address lives, as the compiled policy answers it; `unavailable` before the first
 * policy snapshot (nothing can be placed yet: every caller answers 4xx). */
export type Placement = (
  address: string,
) => { kind: 'shard'; shardId: string } | { kind: 'not-hosted' } | { kind: 'invalid' } | { kind: 'unavailable' };

/** The SMTP envelope of one transaction. */
export interface Envelope {
  from: string;
  recipients: string[];
}

/** A message, or the promise of one still arriving from its sender: a transaction can open while
 * the body is read; `undefined` withdraws it (too big, refused) and nothing is stored. */
export type Body = Buffer | Promise<Buffer | undefined>;

/** Carries one delivery to one shard's mail store and reports one reply per recipient, in order.
 * Never throws: transport trouble becomes 4xx replies, so the sender's queue keeps the message. */
export interface ShardSender {
  send(shardId: string, envelope: Envelope, body: Body): Promise<Reply[]>;
}

/** Configuration of a {@link Deliverer}. */
export interface DelivererConfig {
  placement: Placement;
  /** This node's shard: its recipients go to `local`, everyone else's over `remote`. */
  localShard: string;
  local: ShardSender;
  remote: ShardSender;
}

/**
 * Splits one message by owning shard and delivers every part at once, returning one reply per
 * recipient in the envelope's order. Used by the egress (Postfix's next hop for remote shards,
 * LMTP: replies stay per recipient) and by the embedded front door (no Postfix: the replies are
 * collapsed into one, see `collapse`).
 */
export class Deliverer {
  private readonly cfg: DelivererConfig;
  constructor(cfg: DelivererConfig) {
    this.cfg = cfg;
  }

  /** Deliver `body` to every recipient's owning shard; given a promise, every owner's connection
   * is taken at once (a server without CHUNKING also gets MAIL, RCPT and DATA then), and the rest
   * follows when it resolves. */
  async deliver(envelope: Envelope, body: Body): Promise<Reply[]> {
    const replies: Reply[] = new Array(envelope.recipients.length);
    const groups = new Map<string, number[]>();
    envelope.recipients.forEach((rcpt, i) => {
      const where = this.cfg.placement(rcpt);
      if (where.kind !== 'shard') {
        // Postfix only hands us recipients the socketmap routed here; a policy change in between
        // can make one unhosted. Temporary: the next lookup sends it where it now belongs.
        replies[i] = tempfail(`no shard owns ${rcpt} now, try again later`, '4.4.0');
        return;
      }
      const idx = groups.get(where.shardId);
      if (idx) idx.push(i);
      else groups.set(where.shardId, [i]);
    });
    await Promise.all(
      [...groups].map(async ([shardId, idx]) => {
        const sender = shardId === this.cfg.localShard ? this.cfg.local : this.cfg.remote;
        const part = { from: envelope.from, recipients: idx.map((i) => envelope.recipients[i]) };
        let got: Reply[];
        try {
          got = await sender.send(shardId, part, body);
        } catch (err) {
          got = part.recipients.map(() => tempfail(`shard ${shardId} unavailable: ${(err as Error).message}`));
        }
        idx.forEach((i, k) => {
          replies[i] = got[k] ?? tempfail(`shard ${shardId} gave no reply`);
        });
      }),
    );
    return replies;
  }
}
