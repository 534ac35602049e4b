import { SMTPServer } from 'smtp-server';
import type { Logger } from '../../common/log.ts';
import type { Deliverer, Placement } from './deliver.ts';
import { isOk, type Reply } from './reply.ts';
import { readBounded } from './read-body.ts';
import { listen, okText, replyError, tooBig } from './smtp-listener.ts';

/** Configuration of the egress: the loopback LMTP listener Postfix uses as next hop for
 * recipients on other shards. */
export interface EgressConfig {
  host: string;
  port: number;
  hostname: string;
  maxSize: number;
  placement: Placement;
  deliverer: Deliverer;
  log: Logger;
  onResult?: (shardReplies: Reply[], recipients: string[]) => void;
}

/** A running egress listener. */
export interface Egress {
  port: number;
  close(): Promise<void>;
}

const lmtpReply = (r: Reply): Error | string => (isOk(r) ? okText(r) : replyError(r));

/**
 * Start the egress. It speaks LMTP so every recipient gets its own reply (RFC 2033 §4.2): the
 * sending Postfix hears `250` for a recipient only once the owning shard's store has the message,
 * and keeps any 4xx recipient in its queue for a retry, per recipient. One listener serves every
 * remote shard: it splits the recipients by owner and delivers to all of them at once.
 */
export async function startEgress(cfg: EgressConfig): Promise<Egress> {
  const server = new SMTPServer({
    lmtp: true,
    name: cfg.hostname,
    size: cfg.maxSize,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      void (async () => {
        const recipients = session.envelope.rcptTo.map((r) => r.address);
        const body = await readBounded(stream, cfg.maxSize);
        if (!body) return callback(replyError(tooBig(cfg.maxSize)));
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        const replies = await cfg.deliverer.deliver({ from, recipients }, body);
        cfg.onResult?.(replies, recipients);
        cfg.log.info({ event: 'egress.delivery', session: session.id, replies: replies.map((r) => r.code) }, 'egress delivery');
        // smtp-server types the LMTP array form loosely; each entry is a string or an Error.
        callback(null, replies.map(lmtpReply) as unknown as string);
      })().catch((err: Error) => {
        cfg.log.error({ event: 'egress.error', err: err.message }, 'egress failure');
        callback(replyError({ code: 451, enhanced: '4.3.0', message: 'local error, try again later' }));
      });
    },
  });
  server.on('error', (err) => cfg.log.warn({ event: 'egress.server_error', err: err.message }, 'egress server error'));
  return listen(server, cfg.host, cfg.port);
}
