import type { Duplex } from 'node:stream';
import { MailClientError } from './errors.ts';

/** One complete (possibly multiline) SMTP reply. */
export interface SmtpReply {
  /** The three-digit reply code (RFC 5321 §4.2). */
  code: number;
  /** The RFC 3463 enhanced status code (`5.1.1`), or `undefined` when the server sent none. */
  enhanced: string | undefined;
  /** The text of every line, without code, separator or enhanced code. */
  lines: string[];
  /** `lines` joined with a space: the human-readable part. */
  message: string;
}

/** Longest reply line we accept; RFC 5321 §4.5.3.1.5 allows 512 octets, we are lenient. */
const MAX_LINE = 4096;
/** Longest multiline reply, in lines: a guard against a server that never ends its reply. */
const MAX_LINES = 1000;

/** RFC 5321 §4.2: `Reply-code [ SP / "-" text ] CRLF`. */
const LINE = /^([2-5]\d\d)([ -]|$)(.*)$/s;
/** RFC 3463 §2: `class.subject.detail`, class 2, 4 or 5, sent first in the text (RFC 2034 §4). */
const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)/;

/**
 * Parse the text lines of one reply into an {@link SmtpReply}. The enhanced status code is taken
 * only when its class matches the reply code's first digit (RFC 3463 §2), and is stripped from
 * every line's text.
 */
export function parseReply(code: number, rawLines: string[]): SmtpReply {
  let enhanced: string | undefined;
  const first = ENHANCED.exec(rawLines[0] ?? '');
  if (first && Number(first[1]) === Math.floor(code / 100)) enhanced = `${first[1]}.${first[2]}.${first[3]}`;
  const lines = rawLines.map((l) => {
    if (!enhanced) return l;
    const m = ENHANCED.exec(l);
    return m && `${m[1]}.${m[2]}.${m[3]}` === enhanced ? l.slice(m[0].length) : l;
  });
  return { code, enhanced, lines, message: lines.join(' ').trim() };
}

/**
 * Reads SMTP replies from a socket, in order. Each {@link next} call returns the next complete
 * reply; a reply that arrives before anyone asks for it is kept (pipelined replies, RFC 2920).
 * Once the socket fails, closes or sends garbage, every pending and future call rejects.
 */
export class ReplyReader {
  private buf = '';
  private pendingLines: string[] = [];
  private pendingCode = 0;
  private readonly ready: SmtpReply[] = [];
  private readonly waiters: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  private failure: MailClientError | undefined;
  private readonly socket: Duplex;
  private readonly onTimeout: () => void;

  /** `onTimeout` runs when a {@link next} call times out (the client destroys the socket). */
  constructor(socket: Duplex, onTimeout: () => void) {
    this.socket = socket;
    this.onTimeout = onTimeout;
    socket.on('data', (chunk: Buffer | string) => this.onData(chunk));
    socket.on('error', (err: Error) => this.fail(new MailClientError('ERR_SMTP_CONNECTION', `connection failed: ${err.message}`, { cause: err })));
    socket.on('close', () => this.fail(new MailClientError('ERR_SMTP_CONNECTION', 'connection closed by the server')));
    socket.on('end', () => this.fail(new MailClientError('ERR_SMTP_CONNECTION', 'connection closed by the server')));
  }

  /** The error that broke the reader, if any. */
  get error(): MailClientError | undefined {
    return this.failure;
  }

  /** The next reply, or a rejection with `ERR_SMTP_TIMEOUT` after `timeoutMs`. */
  next(timeoutMs: number): Promise<SmtpReply> {
    const ready = this.ready.shift();
    if (ready) return Promise.resolve(ready);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.fail(new MailClientError('ERR_SMTP_TIMEOUT', `no reply within ${timeoutMs} ms`));
          this.onTimeout();
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Mark the reader broken and reject everyone waiting. The first failure wins. */
  fail(err: MailClientError): void {
    if (!this.failure) this.failure = err;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(this.failure);
    }
  }

  private onData(chunk: Buffer | string): void {
    if (this.failure) return;
    // latin1 keeps every byte as one char; reply text is ASCII (UTF-8 only with SMTPUTF8, and we
    // never interpret it beyond display).
    this.buf += typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      if (!this.onLine(line)) return;
    }
    if (this.buf.length > MAX_LINE) this.protocolError('reply line too long');
  }

  private onLine(line: string): boolean {
    const m = LINE.exec(line);
    if (!m) return this.protocolError(`not an SMTP reply: ${JSON.stringify(line.slice(0, 80))}`);
    const code = Number(m[1]);
    if (this.pendingLines.length > 0 && code !== this.pendingCode) return this.protocolError('reply code changed inside a multiline reply');
    this.pendingCode = code;
    this.pendingLines.push(m[3]);
    if (this.pendingLines.length > MAX_LINES) return this.protocolError('reply has too many lines');
    if (m[2] === '-') return true;
    const reply = parseReply(code, this.pendingLines);
    this.pendingLines = [];
    const waiter = this.waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.resolve(reply);
    } else {
      this.ready.push(reply);
    }
    return true;
  }

  private protocolError(what: string): false {
    this.fail(new MailClientError('ERR_SMTP_PROTOCOL', what));
    this.socket.destroy();
    return false;
  }
}
