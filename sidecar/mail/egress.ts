import { SMTPServer, type SMTPServerAddress, type SMTPServerSession } from 'smtp-server';
import type { Logger } from '../../common/log.ts';
import type { Deliverer, Placement } from './deliver.ts';
import { isOk, tempfail, type Reply } from './reply.ts';
import { readBounded } from './read-body.ts';
import { coalesceReplies } from './coalesce.ts';
import { formatEndpoint } from '../proxy/address.ts';
import { greetAtOnce, listen, listenUnix, okText, replyError, tooBig } from './smtp-listener.ts';

/** Configuration of the egress: the local LMTP listener Postfix uses as next hop for recipients
 * on other shards, on loopback TCP (`host`, `port`) or on a Unix-domain socket (`path`). */
export type EgressConfig = EgressOptions & ({ host: string; port: number } | { path: string });

interface EgressOptions {
  hostname: string;
  maxSize: number;
  placement: Placement;
  deliverer: Deliverer;
  log: Logger;
  onResult?: (shardReplies: Reply[], recipients: string[]) => void;
}

/** A running egress listener. */
export interface Egress {
  /** Where it listens, as Postfix's next hop takes it: `host:port` or `unix:/path`. */
  address: string;
  /** The bound TCP port; 0 on a Unix socket. */
  port: number;
  close(): Promise<void>;
}

const lmtpReply = (r: Reply): Error | string => (isOk(r) ? okText(r) : replyError(r));

/** Every RCPT accepted in a transaction, repeats included, keyed by the session's envelope (a new
 * object per transaction). smtp-server merges a repeated recipient into one `rcptTo` entry, but the
 * LMTP client still expects one reply per accepted RCPT (RFC 2033 §4.2): fewer replies leave
 * Postfix waiting, then deferring recipients whose owners already stored the message. */
const accepted = new WeakMap<object, string[]>();

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
    // Postfix on this host: no PTR query per connection.
    disableReverseLookup: true,
    // At once, not on smtp-server's default next tick: Postfix pipelines MAIL/RCPT/DATA, and the
    // replies then leave in one write (coalesceReplies).
    onMailFrom(_address, _session, callback) {
      callback();
    },
    onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      const list = accepted.get(session.envelope) ?? [];
      accepted.set(session.envelope, list);
      list.push(address.address);
      callback();
    },
    onData(stream, session, callback) {
      // One reply per accepted RCPT, in RCPT order; a repeated recipient gets its first one's reply.
      const rcpts = accepted.get(session.envelope) ?? session.envelope.rcptTo.map((r) => r.address);
      // smtp-server types the LMTP array form loosely; each entry is a string or an Error.
      const answer = (perRcpt: (rcpt: string) => Reply) => callback(null, rcpts.map((r) => lmtpReply(perRcpt(r))) as unknown as string);
      const recipients = session.envelope.rcptTo.map((r) => r.address);
      const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      // The owners' connections are taken now, while Postfix sends the body (the transaction then
      // goes as one BDAT flight once the body is complete); `undefined` withdraws it.
      const body = Promise.withResolvers<Buffer | undefined>();
      const delivered = cfg.deliverer
        .deliver({ from, recipients }, body.promise)
        .catch((err: Error) => {
          cfg.log.error({ event: 'egress.error', err: err.message }, 'egress failure');
          return recipients.map(() => tempfail('local error, try again later', '4.3.0'));
        });
      void (async () => {
        const message = await readBounded(stream, cfg.maxSize).catch((err: Error) => {
          body.resolve(undefined);
          throw err;
        });
        body.resolve(message);
        if (!message) return answer(() => tooBig(cfg.maxSize));
        const replies = await delivered;
        cfg.onResult?.(replies, recipients);
        cfg.log.info({ event: 'egress.delivery', session: session.id, replies: replies.map((r) => r.code) }, 'egress delivery');
        const byAddress = new Map(recipients.map((r, i) => [r.toLowerCase(), replies[i]]));
        answer((r) => byAddress.get(r.toLowerCase()) ?? { code: 451, enhanced: '4.3.0', message: 'no reply for this recipient, try again later' });
      })().catch((err: Error) => {
        cfg.log.error({ event: 'egress.error', err: err.message }, 'egress failure');
        answer(() => ({ code: 451, enhanced: '4.3.0', message: 'local error, try again later' }));
      });
    },
  });
  greetAtOnce(server);
  server.on('error', (err) => cfg.log.warn({ event: 'egress.server_error', err: err.message }, 'egress server error'));
  server.server.on('connection', coalesceReplies);
  if ('path' in cfg) return { address: `unix:${cfg.path}`, port: 0, ...(await listenUnix(server, cfg.path)) };
  const bound = await listen(server, cfg.host, cfg.port);
  return { address: formatEndpoint(cfg.host, bound.port), ...bound };
}
