import { isAscii } from 'node:buffer';
import type { Duplex, Readable } from 'node:stream';
import { DotStuffer, isCrlfMessage } from './dot-stuff.ts';
import { MailClientError } from './errors.ts';
import { ReplyReader, type SmtpReply } from './reply.ts';

/** How {@link MailClient.open} talks to the server. */
export interface MailClientOptions {
  /** LMTP (RFC 2033: LHLO, one reply per recipient after DATA) instead of ESMTP. */
  lmtp: boolean;
  /** Our name in LHLO/EHLO. */
  heloName: string;
  /** Longest wait for any reply or for the socket to drain, in ms. Default 60 s. */
  timeoutMs?: number;
  /** Longest wait for the reply(ies) after the final dot, in ms. Default `timeoutMs`. */
  dataTimeoutMs?: number;
  /**
   * Send each message with `BDAT <size> LAST` (RFC 3030) when the server offers CHUNKING and
   * PIPELINING: MAIL, every RCPT, BDAT and the message leave in one write once the body is
   * complete (a promise is awaited first), with no dot-stuffing, and the server has it in one
   * read instead of answering DATA with 354 first. The replies to BDAT LAST are counted as after
   * DATA: one per accepted recipient over LMTP (as Dovecot sends them, failures included), one
   * when no recipient was accepted. Not used with `holdOnDeferral`, for a stream body, or for a
   * message with bare LF or CR (DATA normalises those). Default false.
   */
  chunking?: boolean;
}

/** What the server announced in its LHLO/EHLO reply (RFC 5321 §4.1.1.1). */
export interface Capabilities {
  pipelining: boolean;
  /** BDAT (RFC 3030). */
  chunking: boolean;
  eightBitMime: boolean;
  smtpUtf8: boolean;
  enhancedStatusCodes: boolean;
  /** The SIZE limit in octets (RFC 1870), 0 when announced without a limit, undefined when absent. */
  size: number | undefined;
  /** Every keyword line as sent, upper-cased. */
  keywords: string[];
}

/** One mail transaction. */
export interface SendRequest {
  /** Envelope sender without angle brackets; `''` for the null sender (bounces). */
  from: string;
  /** Envelope recipients, in order; results come back in the same order. */
  recipients: string[];
  /** The message (header + body). Bare LF is sent as CRLF; dot-stuffing is done here.
   * A promise (a relay still receiving the message from its own sender): MAIL, RCPT and DATA go
   * out at once and the body follows when it resolves, so only the body and the final reply are
   * left when it arrives; `undefined` withdraws the message (after a 354 the connection is
   * dropped, so nothing is delivered) and every accepted recipient gets `451 4.3.0`. */
  body: Buffer | Readable | Promise<Buffer | undefined>;
  /** Size for the SIZE parameter; default the Buffer's length (unknown for a stream or promise). */
  size?: number;
  /** Whether the body has 8-bit octets; computed for a Buffer, assumed true otherwise. */
  eightBit?: boolean;
  /** Force the SMTPUTF8 parameter (RFC 6531 §3.4), e.g. for UTF-8 headers; default: only when
   * an envelope address is not ASCII. */
  smtpUtf8?: boolean;
  /** Send no DATA when any recipient is deferred (4xx) at RCPT: the recipients the server accepted
   * then get `451 4.3.0` too and nothing is queued. For a relay that answers its own sender with
   * one reply for the whole message: if the server queued the accepted ones, the sender's retry of
   * that one 4xx would queue them a second time. */
  holdOnDeferral?: boolean;
}

/** The outcome for one recipient. */
export interface RecipientResult {
  address: string;
  /** The reply code that decided this recipient (RCPT's when refused there, else the DATA one). */
  code: number;
  /** RFC 3463 enhanced status code when the server sent one. */
  enhanced: string | undefined;
  message: string;
  /** True when the server took responsibility for this recipient's copy (2xx after DATA). */
  accepted: boolean;
}

/** The outcome of {@link MailClient.send}. */
export interface SendResult {
  recipients: RecipientResult[];
}

/** An address we put on a command line: no CR, LF, NUL, angle brackets or spaces (injection). */
const SAFE_ADDRESS = /^[^\r\n\0<> ]*$/;
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * An SMTP or LMTP client over a socket someone else connected (a TCP socket to Postfix or
 * Dovecot, or a pooled mesh TLS socket). One instance carries many transactions; after a timeout,
 * a closed socket or a protocol error {@link usable} turns false and the pool must drop it.
 *
 * @example
 * const socket = net.connect(24, '127.0.0.1');
 * await once(socket, 'connect');
 * const client = await MailClient.open(socket, { lmtp: true, heloName: 'node-1' });
 * const { recipients } = await client.send({ from: 'a@x.test', recipients: ['b@y.test'], body });
 * await client.quit();
 */
export class MailClient {
  /** What the server supports. */
  readonly capabilities: Capabilities;
  /** The greeting line's text. */
  readonly greeting: string;
  private readonly socket: Duplex;
  private readonly reader: ReplyReader;
  private readonly lmtp: boolean;
  private readonly timeoutMs: number;
  private readonly dataTimeoutMs: number;
  private readonly chunking: boolean;
  /** A transaction may be open on the server (MAIL sent, DATA not completed): RSET first. */
  private dirty = false;
  private broken = false;
  private busy = false;

  private constructor(socket: Duplex, reader: ReplyReader, opts: Required<MailClientOptions>, greeting: string, caps: Capabilities) {
    this.socket = socket;
    this.reader = reader;
    this.lmtp = opts.lmtp;
    this.timeoutMs = opts.timeoutMs;
    this.dataTimeoutMs = opts.dataTimeoutMs;
    this.chunking = opts.chunking;
    this.greeting = greeting;
    this.capabilities = caps;
  }

  /**
   * Read the greeting and introduce ourselves (LHLO for LMTP, EHLO with a HELO fallback for
   * SMTP). Throws {@link MailClientError} (`ERR_SMTP_REJECTED` with `replyCode` when the server
   * refuses us, or a timeout/connection/protocol code); the socket is destroyed then.
   */
  static async open(socket: Duplex, options: MailClientOptions): Promise<MailClient> {
    const opts = { timeoutMs: 60_000, chunking: false, ...options, dataTimeoutMs: options.dataTimeoutMs ?? options.timeoutMs ?? 60_000 };
    if (!/^[\x21-\x7e]+$/.test(opts.heloName)) throw new TypeError(`heloName must be one printable ASCII word: ${JSON.stringify(opts.heloName)}`);
    const reader = new ReplyReader(socket, () => socket.destroy());
    try {
      const greeting = await reader.next(opts.timeoutMs);
      // RFC 5321 §3.1: 554 (or anything but 220) means "no service here".
      if (greeting.code !== 220) throw new MailClientError('ERR_SMTP_REJECTED', `server refused the session: ${greeting.code} ${greeting.message}`, { replyCode: greeting.code });
      socket.write(`${opts.lmtp ? 'LHLO' : 'EHLO'} ${opts.heloName}\r\n`);
      let hello = await reader.next(opts.timeoutMs);
      let keywords: string[] = [];
      if (hello.code === 250) {
        keywords = hello.lines.slice(1).map((l) => l.trim().toUpperCase());
      } else if (!opts.lmtp && hello.code >= 500) {
        // RFC 5321 §4.1.4: a client may fall back to HELO when EHLO is not recognised.
        socket.write(`HELO ${opts.heloName}\r\n`);
        hello = await reader.next(opts.timeoutMs);
      }
      if (hello.code !== 250) {
        throw new MailClientError('ERR_SMTP_REJECTED', `server refused ${opts.lmtp ? 'LHLO' : 'EHLO'}: ${hello.code} ${hello.message}`, { replyCode: hello.code });
      }
      return new MailClient(socket, reader, opts, greeting.message, parseCapabilities(keywords));
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  /** False once the connection timed out, closed, or misbehaved: drop it from any pool. */
  get usable(): boolean {
    return !this.broken && !this.reader.error && !this.socket.destroyed;
  }

  /**
   * Run one mail transaction. Refusals are values: each recipient gets its own code (RCPT
   * refusal, MAIL/DATA refusal, or the final reply). With LMTP the server answers once per
   * accepted recipient after the final dot (RFC 2033 §4.2); with SMTP one reply covers all
   * (RFC 5321 §4.1.1.4). No DATA is sent when no recipient was accepted.
   * Throws {@link MailClientError} when the connection fails or times out: the caller must treat
   * every recipient as temporarily failed (4xx), and the connection is no longer usable.
   */
  async send(req: SendRequest): Promise<SendResult> {
    if (!this.usable) throw this.reader.error ?? new MailClientError('ERR_SMTP_UNUSABLE', 'connection is no longer usable');
    if (this.busy) throw new Error('MailClient.send called while another transaction is running');
    this.busy = true;
    try {
      // A repeated recipient goes out once: smtp-server merges repeated RCPTs and would then send
      // fewer LMTP replies than RCPTs were accepted, desynchronising the reply stream.
      const first = new Map<string, string>();
      for (const r of req.recipients) if (!first.has(r.toLowerCase())) first.set(r.toLowerCase(), r);
      const unique = [...first.values()];
      if (unique.length === req.recipients.length) return await this.transaction(req);
      const byKey = new Map((await this.transaction({ ...req, recipients: unique })).recipients.map((r) => [r.address.toLowerCase(), r]));
      return { recipients: req.recipients.map((address) => ({ ...byKey.get(address.toLowerCase())!, address })) };
    } catch (err) {
      this.breakConnection();
      throw err;
    } finally {
      this.busy = false;
    }
  }

  /** Abort any open transaction (RSET, RFC 5321 §4.1.1.5) so the connection carries a new one. */
  async reset(): Promise<void> {
    const reply = await this.command('RSET');
    if (reply.code !== 250) {
      this.breakConnection();
      throw new MailClientError('ERR_SMTP_PROTOCOL', `RSET refused: ${reply.code} ${reply.message}`, { replyCode: reply.code });
    }
    this.dirty = false;
  }

  /** Say goodbye (QUIT) and close the socket. Never throws. */
  async quit(): Promise<void> {
    if (this.usable) {
      try {
        // Bounded: a server that never answers QUIT must not hold the caller for a long timeout.
        await this.write('QUIT\r\n');
        await this.reader.next(Math.min(this.timeoutMs, 5000));
      } catch {
        // The server may close before answering; we are leaving anyway.
      }
    }
    this.broken = true;
    this.socket.end();
    this.socket.destroy();
  }

  private async transaction(req: SendRequest): Promise<SendResult> {
    const caps = this.capabilities;
    const results: RecipientResult[] = req.recipients.map((address) => ({ address, code: 0, enhanced: undefined, message: '', accepted: false }));
    const refuseAll = (code: number, enhanced: string | undefined, message: string, which = results) => {
      for (const r of which) Object.assign(r, { code, enhanced, message, accepted: false });
      return { recipients: results };
    };
    if (!SAFE_ADDRESS.test(req.from)) return refuseAll(501, '5.1.7', 'invalid sender address');
    const utf8 = req.smtpUtf8 === true || NON_ASCII.test(req.from) || req.recipients.some((r) => NON_ASCII.test(r));
    // RFC 6531 §3.2: a non-ASCII envelope must not go to a server without SMTPUTF8.
    if (utf8 && !caps.smtpUtf8) return refuseAll(553, '5.6.7', 'server does not support SMTPUTF8 (RFC 6531)');
    if (req.recipients.length === 0) return { recipients: results };

    // BDAT needs the whole message and its size before the first command goes out.
    let bdat: Buffer | undefined;
    if (this.chunking && caps.chunking && caps.pipelining && !req.holdOnDeferral && (Buffer.isBuffer(req.body) || isPromise(req.body))) {
      const body = await req.body;
      if (body === undefined) return refuseAll(451, '4.3.0', 'message withdrawn before it was sent');
      req = { ...req, body };
      if (isCrlfMessage(body)) bdat = body;
    }

    if (this.dirty) await this.reset();
    const params: string[] = [];
    const size = req.size ?? (Buffer.isBuffer(req.body) ? req.body.length : undefined);
    if (caps.size !== undefined && size !== undefined) params.push(`SIZE=${size}`);
    const eightBit = req.eightBit ?? (Buffer.isBuffer(req.body) ? hasEightBit(req.body) : true);
    // RFC 6152 §3: declare 8-bit content; servers without 8BITMIME get it undeclared (as Postfix does).
    if (eightBit && caps.eightBitMime) params.push('BODY=8BITMIME');
    if (utf8) params.push('SMTPUTF8');
    const mail = `MAIL FROM:<${req.from}>${params.length ? ' ' + params.join(' ') : ''}\r\n`;

    const sendable = results.filter((r) => SAFE_ADDRESS.test(r.address) && r.address.length > 0);
    for (const r of results) if (!sendable.includes(r)) Object.assign(r, { code: 501, enhanced: '5.1.3', message: 'invalid recipient address' });
    const rcpts = sendable.map((r) => `RCPT TO:<${r.address}>\r\n`);

    this.dirty = true;
    let mailReply: SmtpReply;
    const rcptReplies: SmtpReply[] = [];
    /** The reply to a DATA sent in the same group (pipelining), read with the others. */
    let pipelinedData: SmtpReply | undefined;
    if (bdat) {
      // RFC 3030 §4.2 with RFC 2920: the whole transaction in one write; the chunk's size, not
      // an end-of-data line, delimits the message, so a refused transaction cannot turn message
      // lines into commands (the server reads and drops the chunk).
      await this.write([mail + rcpts.join('') + `BDAT ${bdat.length} LAST\r\n`, bdat]);
      mailReply = await this.reader.next(this.timeoutMs);
      for (let i = 0; i < rcpts.length; i++) rcptReplies.push(await this.reader.next(this.timeoutMs));
    } else if (caps.pipelining) {
      // RFC 2920 §3.1: MAIL, the RCPTs and DATA (last in the group) go in one write, and the
      // replies come back in order: one round trip before the body instead of two. A server with
      // no accepted recipient refuses that DATA (503/554); a 354 we cannot use (see below) is
      // answered by dropping the connection, which aborts the transaction (RFC 5321 §3.8).
      await this.write(mail + rcpts.join('') + 'DATA\r\n');
      mailReply = await this.reader.next(this.timeoutMs);
      for (let i = 0; i < rcpts.length; i++) rcptReplies.push(await this.reader.next(this.timeoutMs));
      pipelinedData = await this.reader.next(this.timeoutMs);
    } else {
      await this.write(mail);
      mailReply = await this.reader.next(this.timeoutMs);
      if (mailReply.code === 250) {
        for (const line of rcpts) {
          await this.write(line);
          rcptReplies.push(await this.reader.next(this.timeoutMs));
        }
      }
    }
    this.noteClosing(mailReply);
    // A pipelined DATA the server opened although we will not send this body: the only safe way
    // out of the data phase is to drop the connection (a final dot would deliver a message). A
    // BDAT with no accepted recipient gets one refusal, read here to keep replies in step.
    const abandonData = async () => {
      if (pipelinedData?.code === 354) this.breakConnection();
      if (bdat && this.usable) await this.reader.next(this.dataTimeoutMs).catch(() => this.breakConnection());
    };
    if (mailReply.code !== 250) {
      await abandonData();
      return refuseAll(mailReply.code, mailReply.enhanced, mailReply.message, sendable);
    }
    const accepted: RecipientResult[] = [];
    sendable.forEach((r, i) => {
      const reply = rcptReplies[i];
      this.noteClosing(reply);
      // RFC 5321 §4.1.1.3: 250 or 251 accept the recipient.
      if (reply.code === 250 || reply.code === 251) accepted.push(r);
      else Object.assign(r, { code: reply.code, enhanced: reply.enhanced, message: reply.message, accepted: false });
    });
    if (accepted.length === 0 || !this.usable) {
      await abandonData();
      if (!this.usable) refuseAll(421, '4.4.2', 'server closed the connection', accepted);
      return { recipients: results };
    }
    if (req.holdOnDeferral && results.some((r) => r.code >= 400 && r.code < 500)) {
      // The transaction stays open on the server: `dirty` makes the next one start with RSET.
      await abandonData();
      return refuseAll(451, '4.3.0', 'not sent: another recipient of this message was deferred', accepted);
    }

    if (!bdat) {
      const dataReply = pipelinedData ?? (await this.command('DATA'));
      if (dataReply.code !== 354) {
        this.noteClosing(dataReply);
        return refuseAll(dataReply.code, dataReply.enhanced, dataReply.message, accepted);
      }
      const body = await req.body;
      if (body === undefined) {
        this.breakConnection();
        return refuseAll(451, '4.3.0', 'message withdrawn before its body was sent', accepted);
      }
      await this.writeBody(body);
    }
    const finals: SmtpReply[] = [];
    // RFC 2033 §4.2: one reply per accepted RCPT, in RCPT order; SMTP: one reply for all.
    const count = this.lmtp ? accepted.length : 1;
    try {
      for (let i = 0; i < count; i++) finals.push(await this.reader.next(this.dataTimeoutMs));
    } catch (err) {
      // LMTP: the recipients answered before the failure were decided by the server (a 250 means
      // stored); reporting them as failed would make the sender store them again on its retry.
      if (finals.length === 0) throw err;
      this.breakConnection();
      const why = `connection lost before this recipient's reply: ${(err as Error).message}`;
      refuseAll(451, '4.4.2', why, accepted.slice(finals.length));
    }
    this.dirty = false;
    (this.lmtp ? accepted.slice(0, finals.length) : accepted).forEach((r, i) => {
      const reply = finals[this.lmtp ? i : 0];
      this.noteClosing(reply);
      Object.assign(r, { code: reply.code, enhanced: reply.enhanced, message: reply.message, accepted: reply.code >= 200 && reply.code < 300 });
    });
    return { recipients: results };
  }

  private async writeBody(body: Buffer | Readable): Promise<void> {
    const stuffer = new DotStuffer();
    if (Buffer.isBuffer(body)) {
      await this.write([stuffer.push(body), stuffer.end()]);
      return;
    }
    try {
      for await (const chunk of body) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
        await this.write(stuffer.push(bytes));
      }
    } catch (err) {
      // Never send the final dot after a failed source: closing without it makes the server
      // discard the partial message (RFC 5321 §4.1.1.4), so nothing truncated is delivered.
      this.breakConnection();
      throw err;
    }
    await this.write(stuffer.end());
  }

  private async command(line: string): Promise<SmtpReply> {
    await this.write(`${line}\r\n`);
    return this.reader.next(this.timeoutMs);
  }

  /** Write (several parts in one go: one system call, no copy) and wait for the socket to drain
   * when its buffer is full, within the timeout. */
  private async write(data: string | Buffer | (string | Buffer)[]): Promise<void> {
    if (this.reader.error) throw this.reader.error;
    let flushed = true;
    if (Array.isArray(data)) {
      this.socket.cork();
      for (const part of data) flushed = this.socket.write(part);
      this.socket.uncork();
    } else {
      flushed = this.socket.write(data);
    }
    if (flushed) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.socket.off('drain', onDrain);
        this.socket.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(this.reader.error ?? new MailClientError('ERR_SMTP_CONNECTION', 'connection closed while writing'));
      const timer = setTimeout(() => {
        const err = new MailClientError('ERR_SMTP_TIMEOUT', `could not write within ${this.timeoutMs} ms`);
        this.reader.fail(err);
        this.socket.destroy();
        done(err);
      }, this.timeoutMs);
      this.socket.on('drain', onDrain);
      this.socket.on('close', onClose);
    });
  }

  /** RFC 5321 §3.8: 421 means the server is closing the channel. */
  private noteClosing(reply: SmtpReply): void {
    if (reply.code === 421) this.breakConnection();
  }

  private breakConnection(): void {
    this.broken = true;
    this.socket.destroy();
  }
}

/** Parse EHLO/LHLO keyword lines (RFC 5321 §4.1.1.1) into {@link Capabilities}. */
export function parseCapabilities(keywords: string[]): Capabilities {
  const names = new Set(keywords.map((k) => k.split(/\s+/)[0]));
  const sizeLine = keywords.find((k) => k.split(/\s+/)[0] === 'SIZE');
  let size: number | undefined;
  if (sizeLine !== undefined) {
    const n = Number(sizeLine.split(/\s+/)[1] ?? '0');
    size = Number.isFinite(n) && n >= 0 ? n : 0;
  }
  return {
    pipelining: names.has('PIPELINING'),
    chunking: names.has('CHUNKING'),
    eightBitMime: names.has('8BITMIME'),
    smtpUtf8: names.has('SMTPUTF8'),
    enhancedStatusCodes: names.has('ENHANCEDSTATUSCODES'),
    size,
    keywords,
  };
}

const hasEightBit = (buf: Buffer): boolean => !isAscii(buf);

const isPromise = (body: SendRequest['body']): body is Promise<Buffer | undefined> => typeof (body as Promise<unknown>).then === 'function';
