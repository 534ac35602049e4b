import { SMTPServer, type SMTPServerSession, type SMTPServerAddress } from 'smtp-server';
import type { Logger } from '../../common/log.ts';
import type { Body, Placement } from './deliver.ts';
import { formatReply, type Reply } from './reply.ts';
import { readBounded } from './read-body.ts';
import { listen, okText, replyError, tooBig } from './smtp-listener.ts';
import { enforceLineDeadline } from './line-deadline.ts';
import { coalesceReplies } from './coalesce.ts';
import type { Handoff } from './handoff.ts';

/** What the mail-authentication step decided for one message (see sidecar/auth). */
export interface CheckOutcome {
  /** Set when the message must be refused (550 5.7.1) or deferred (451 4.7.x). */
  refuse?: Reply;
  /** The message to hand on: the original with Authentication-Results (and a quarantine mark). */
  message: Buffer;
  /** What the check found (action, reason, per-method results), for the message's log event. */
  auth?: Record<string, string>;
}

/** Input of the authentication step. */
export interface CheckInput {
  message: Buffer;
  ip: string;
  helo: string;
  mailFrom: string;
  recipients: string[];
}

/** Configuration of the public SMTP front door. */
export interface FrontDoorConfig {
  host: string;
  port: number;
  /** Name in the banner and EHLO reply. */
  hostname: string;
  /** The operator's public certificate for STARTTLS; without it STARTTLS is not offered (we never
   * fall back to a built-in test certificate). */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** SIZE limit in bytes, enforced while streaming (552 5.3.4). */
  maxSize: number;
  maxRecipients: number;
  maxClients: number;
  socketTimeoutMs: number;
  placement: Placement;
  /** Directory knowledge for RCPT validation: false = unknown user (550 5.1.1). */
  isKnownUser?: (address: string) => boolean | undefined;
  /** Mail authentication (SPF/DKIM/DMARC/ARC); absent = no checks (mesh-internal listeners). */
  check?: (input: CheckInput) => Promise<CheckOutcome>;
  /** Hands the message to a durable store and returns the answer the sender hears. Called when
   * the sender says DATA, with a promise of the message (see {@link Handoff}). */
  handoff: Handoff;
  /** How long a transaction opened at DATA may wait for the body (and its checks), in ms; then it
   * is withdrawn and the message handed over once complete. Default 5000: a slow sender must not
   * hold Postfix's smtpd past its own timeout (`smtpd_timeout`, 10 s under stress). */
  earlyHandoffMs?: number;
  log: Logger;
  /** Called once per transaction with its outcome, for metrics. */
  onResult?: (result: 'accepted' | 'rejected' | 'deferred', recipients: string[]) => void;
}

/** A running front door. */
export interface FrontDoor {
  port: number;
  /** Swap the public certificate live (e.g. after renewal); sessions keep running. */
  updateTls(tls: { key: string | Buffer; cert: string | Buffer }): void;
  close(): Promise<void>;
}

/**
 * Start the public SMTP front door: RCPT is checked against placement (unhosted domain → 550
 * 5.7.1, unknown user → 550 5.1.1), DATA is read within the SIZE limit, mail authentication
 * decides, and the sender hears exactly what the durable store answered.
 */
export async function startFrontDoor(cfg: FrontDoorConfig): Promise<FrontDoor> {
  const server = new SMTPServer({
    name: cfg.hostname,
    banner: 'mailmesh',
    size: cfg.maxSize,
    authOptional: true,
    // No AUTH on port 25: submission is Postfix's job. CHUNKING is not offered (smtp-server
    // doesn't implement BDAT), SMTPUTF8 and 8BITMIME are (we pass bytes through untouched).
    disabledCommands: cfg.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    ...(cfg.tls ? { key: cfg.tls.key, cert: cfg.tls.cert } : {}),
    minVersion: 'TLSv1.2',
    maxClients: cfg.maxClients,
    socketTimeout: cfg.socketTimeoutMs,
    closeTimeout: 5_000,
    logger: false,
    // No reverse DNS through the system resolver on every connection: mail authentication uses
    // the operator's resolver, and a PTR lookup per connection is a cheap DoS lever.
    disableReverseLookup: true,
    onSecure(socket, _session, callback) {
      coalesceReplies(socket);
      callback();
    },
    // Any envelope sender is fine here (SPF judges it at end of DATA). Answering at once, not on
    // smtp-server's default next-tick, lets a pipelined MAIL/RCPT/DATA group be answered in one write.
    onMailFrom(_address, _session, callback) {
      callback();
    },
    onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      if (session.envelope.rcptTo.length >= cfg.maxRecipients) {
        return callback(replyError({ code: 452, enhanced: '4.5.3', message: 'too many recipients' }));
      }
      const where = cfg.placement(address.address);
      // No policy snapshot yet (fresh node, control plane unreachable): defer, the sender retries.
      if (where.kind === 'unavailable') return callback(replyError({ code: 451, enhanced: '4.3.0', message: 'routing policy not loaded yet, try again later' }));
      if (where.kind === 'invalid') return callback(replyError({ code: 501, enhanced: '5.1.3', message: 'bad recipient address syntax' }));
      if (where.kind === 'not-hosted') return callback(replyError({ code: 550, enhanced: '5.7.1', message: 'relay access denied: domain not hosted here' }));
      if (cfg.isKnownUser?.(address.address) === false) {
        return callback(replyError({ code: 550, enhanced: '5.1.1', message: 'no such user here' }));
      }
      callback();
    },
    onData(stream, session, callback) {
      const recipients = session.envelope.rcptTo.map((r) => r.address);
      const mailFrom = session.envelope.mailFrom;
      const from = mailFrom ? mailFrom.address : '';
      const envelope = { from, recipients };
      const handoff = (message: Body) =>
        cfg.handoff(envelope, message).catch((err: Error): Reply => {
          cfg.log.error({ event: 'smtp.error', err: err.message }, 'hand-off failure');
          return { code: 451, enhanced: '4.3.0', message: 'local error, try again later' };
        });
      // The store's transaction opens now, while the body arrives (Postfix: MAIL, RCPT and DATA go
      // out at once); it gets the message once read and checked, or `undefined`: nothing is stored.
      const pending = Promise.withResolvers<Buffer | undefined>();
      let early: Promise<Reply> | undefined = handoff(pending.promise);
      const withdraw = setTimeout(() => {
        pending.resolve(undefined);
        early = undefined;
      }, cfg.earlyHandoffMs ?? 5000);
      const finish = (message: Buffer | undefined) => {
        clearTimeout(withdraw);
        pending.resolve(message);
      };
      void (async () => {
        const body = await readBounded(stream, cfg.maxSize);
        // Over the limit (RFC 1870 §6.3): 552 5.3.4, and nothing of it was kept.
        if (!body) {
          finish(undefined);
          cfg.onResult?.('rejected', recipients);
          return callback(replyError(tooBig(cfg.maxSize)));
        }
        let message = body;
        // One event per message: its queue id (Postfix's, when it queued it), owning shards, the
        // authentication verdict and the reply. Never the body, never addresses' local parts.
        const logMessage = (reply: Reply, auth: Record<string, string> | undefined) => {
          if (!cfg.log.isLevelEnabled('info')) return;
          const shards = [...new Set(recipients.map((r) => { const p = cfg.placement(r); return p.kind === 'shard' ? p.shardId : p.kind; }))];
          const queueId = /queued as ([A-Za-z0-9]+)/.exec(reply.message)?.[1];
          cfg.log.info({ event: 'smtp.message', session: session.id, queueId, shards, recipients: recipients.length, size: message.length, auth, reply: formatReply(reply) }, 'message handled');
        };
        let auth: Record<string, string> | undefined;
        if (cfg.check) {
          const outcome = await cfg.check({ message: body, ip: session.remoteAddress, helo: session.hostNameAppearsAs ?? '', mailFrom: from, recipients });
          auth = outcome.auth;
          if (outcome.refuse) {
            finish(undefined);
            logMessage(outcome.refuse, auth);
            cfg.onResult?.(outcome.refuse.code >= 500 ? 'rejected' : 'deferred', recipients);
            return callback(replyError(outcome.refuse));
          }
          message = outcome.message;
        }
        // Withdrawn after `earlyHandoffMs`: a fresh transaction with the complete message.
        const opened = early;
        finish(message);
        const reply = await (opened ?? handoff(message));
        logMessage(reply, auth);
        if (reply.code >= 200 && reply.code < 300) {
          cfg.onResult?.('accepted', recipients);
          return callback(null, okText(reply));
        }
        cfg.onResult?.(reply.code >= 500 ? 'rejected' : 'deferred', recipients);
        callback(replyError(reply));
      })().catch((err: Error) => {
        finish(undefined);
        cfg.log.error({ event: 'smtp.error', err: err.message }, 'front door failure');
        callback(replyError({ code: 451, enhanced: '4.3.0', message: 'local error, try again later' }));
      });
    },
  });
  // socketTimeout is an idle timeout; a slowloris client must not keep its slot forever.
  enforceLineDeadline(server.server, cfg.socketTimeoutMs);
  server.server.on('connection', coalesceReplies);
  server.on('error', (err) => cfg.log.warn({ event: 'smtp.server_error', err: err.message }, 'smtp server error'));
  const bound = await listen(server, cfg.host, cfg.port);
  return {
    ...bound,
    updateTls(tls) {
      server.updateSecureContext({ key: tls.key, cert: tls.cert, minVersion: 'TLSv1.2' });
    },
  };
}
