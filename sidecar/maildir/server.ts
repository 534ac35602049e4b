import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { SMTPServer, type SMTPServerAddress, type SMTPServerSession } from 'smtp-server';
import { MaildirError } from './errors.ts';
import { maildirPath } from './paths.ts';
import { deliverOnce } from './store.ts';
import { greetAtOnce } from '../mail/smtp-listener.ts';

/** Configuration of {@link startMaildirLmtp}. */
export interface MaildirLmtpConfig {
  /** Address to listen on, e.g. `127.0.0.1`. */
  host: string;
  /** Port, 0 for an ephemeral one. */
  port: number;
  /** Mail root: copies go to `root/<domain>/<local>/Maildir/new/`. */
  root: string;
  /** Whether a mailbox exists for the address; unknown users get `550 5.1.1` at RCPT. Default: all. */
  accept?: (address: string) => boolean;
  /** Largest message in octets (SIZE, RFC 1870); larger gets `552 5.3.4`. Default 50 MiB. */
  maxSize?: number;
  /** Name in the greeting. Default `mailmesh-maildir`. */
  name?: string;
}

/** A running embedded backend. */
export interface MaildirLmtp {
  /** The port it listens on. */
  port: number;
  /** Serve an LMTP session that arrived another way (the mesh ingress hands over its decrypted
   * TLS sessions: no loopback connection per session). */
  accept(session: Duplex & { remoteAddress?: string }): void;
  /** The Maildir directory of an address (`…/Maildir`, holding `new/`, `cur/`, `tmp/`). */
  pathOf(address: string): string;
  /** Stop listening and drop open connections. */
  close(): Promise<void>;
}

/** An smtp-server reply error: `responseCode` picks the code, the server adds the RFC 3463 code. */
function replyError(code: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode: code });
}

/**
 * Start the embedded Maildir backend: an LMTP server (RFC 2033) standing in for Dovecot when
 * there is none. Each accepted recipient gets its own reply after the final dot, sent only once its
 * copy is renamed into `new/` (so `250` means stored). A retried message already stored for a
 * recipient is answered `250` without a second copy. A storage failure is `451 4.3.0` for that
 * recipient only: the sender keeps it queued and retries.
 *
 * @example
 * const lmtp = await startMaildirLmtp({ host: '127.0.0.1', port: 0, root: '/var/mail/mailmesh' });
 */
export async function startMaildirLmtp(config: MaildirLmtpConfig): Promise<MaildirLmtp> {
  const { root } = config;
  const accept = config.accept ?? (() => true);
  const maxSize = config.maxSize ?? 50 * 1024 * 1024;
  const sockets = new Set<Duplex>();

  const server = new SMTPServer({
    lmtp: true,
    name: config.name ?? 'mailmesh-maildir',
    banner: 'mailmesh embedded Maildir',
    logger: false,
    disabledCommands: ['AUTH', 'STARTTLS'],
    authOptional: true,
    // Its clients are mesh peers (verified by the ingress) and tests: no PTR query, no greeting pause.
    disableReverseLookup: true,
    hideENHANCEDSTATUSCODES: false,
    size: maxSize,
    // Refuse an oversized message with 552 5.3.4 for each recipient (RFC 1870 §6.3).
    rejectOversized: true,
    onRcptTo(address: SMTPServerAddress, _session: SMTPServerSession, callback: (err?: Error | null) => void) {
      try {
        maildirPath(root, address.address);
      } catch {
        // RFC 3463 §3.2: X.1.3 bad destination mailbox address syntax (553 maps to 5.1.3).
        return callback(replyError(553, 'Bad destination mailbox address'));
      }
      // 550 maps to 5.1.1, bad destination mailbox address (RFC 3463 §3.2).
      if (!accept(address.address)) return callback(replyError(550, 'No such user here'));
      callback();
    },
    onData(stream: Readable & { sizeExceeded?: boolean }, session: SMTPServerSession, callback: (err?: Error | null, message?: string | (string | Error)[]) => void) {
      const chunks: Buffer[] = [];
      let total = 0;
      stream.on('data', (chunk: Buffer) => {
        total += chunk.length;
        // Memory stays bounded by SIZE: the rest of an oversized message is discarded.
        if (total <= maxSize) chunks.push(chunk);
      });
      stream.on('error', (err) => callback(err));
      stream.on('end', () => {
        if (stream.sizeExceeded || total > maxSize) return callback(null); // smtp-server answers 552 5.3.4 per recipient
        const message = Buffer.concat(chunks, total);
        void storeAll(root, session.envelope.rcptTo.map((r) => r.address), message).then((replies) => callback(null, replies));
      });
    },
  });
  greetAtOnce(server);
  server.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('error', () => {
    // Per-connection errors (client resets) are not server failures; smtp-server logs nothing.
  });

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;

  // smtp-server's own entry point for a connected socket (what its listener calls after accept);
  // not in its type definitions.
  const serve = server as unknown as { connect(socket: Duplex, options: { id: string }): void };
  return {
    port,
    accept(session) {
      sockets.add(session);
      session.once('close', () => sockets.delete(session));
      serve.connect(session, { id: randomBytes(8).toString('hex') });
    },
    pathOf: (addr: string) => maildirPath(root, addr),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** One LMTP reply per recipient, in RCPT order (RFC 2033 §4.2). */
async function storeAll(root: string, recipients: string[], message: Buffer): Promise<(string | Error)[]> {
  return Promise.all(
    recipients.map(async (rcpt) => {
      try {
        const outcome = await deliverOnce(root, rcpt, message);
        return outcome === 'duplicate' ? `Ok: already delivered to ${rcpt}` : `Ok: delivered to ${rcpt}`;
      } catch (err) {
        if (err instanceof MaildirError && err.code === 'ERR_MAILDIR_BAD_ADDRESS') return replyError(553, 'Bad destination mailbox address');
        // 451 maps to 4.3.0: local error in processing; the sender keeps the message queued.
        return replyError(451, 'Temporary failure storing the message, try again later');
      }
    }),
  );
}
