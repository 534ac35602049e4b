import type { Duplex } from 'node:stream';
import { ProxyError } from './errors.ts';

const EMPTY = Buffer.alloc(0);

/**
 * Pull-style reader of CRLF lines and counted bytes from a stream, for the pre-login dialogue
 * only (after login the sockets are spliced). Memory is bounded: the stream is paused once the
 * buffer holds `highWater` bytes and nothing waits for more, and a line longer than the caller's
 * limit fails with `ERR_LINE_TOO_LONG` instead of growing the buffer.
 */
export class LineReader {
  private buf: Buffer = EMPTY;
  private wake: (() => void) | undefined;
  private done: ProxyError | undefined;
  private readonly stream: Duplex;
  private readonly highWater: number;
  private readonly closedCode: 'ERR_CLIENT_CLOSED' | 'ERR_BACKEND_CLOSED';
  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.buf.length >= this.highWater) this.stream.pause();
    this.notify();
  };
  private readonly onEnd = (): void => {
    this.done ??= new ProxyError(this.closedCode, 'connection closed');
    this.notify();
  };
  private readonly onError = (err: Error): void => {
    this.done ??= new ProxyError(this.closedCode, `connection failed: ${err.message}`, { cause: err });
    this.notify();
  };

  constructor(stream: Duplex, highWater: number, closedCode: 'ERR_CLIENT_CLOSED' | 'ERR_BACKEND_CLOSED') {
    this.stream = stream;
    this.highWater = highWater;
    this.closedCode = closedCode;
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.on('error', this.onError);
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async more(): Promise<void> {
    if (this.done) throw this.done;
    this.stream.resume();
    await new Promise<void>((resolve) => (this.wake = resolve));
  }

  /** The next line without its CRLF (a bare LF is accepted too), decoded as UTF-8. */
  async readLine(maxLength: number): Promise<string> {
    for (;;) {
      const nl = this.buf.indexOf(10);
      if (nl >= 0) {
        if (nl > maxLength + 1) throw new ProxyError('ERR_LINE_TOO_LONG', `line longer than ${maxLength} bytes`);
        const end = nl > 0 && this.buf[nl - 1] === 13 ? nl - 1 : nl;
        const line = this.buf.toString('utf8', 0, end);
        this.buf = this.buf.subarray(nl + 1);
        return line;
      }
      if (this.buf.length > maxLength + 1) throw new ProxyError('ERR_LINE_TOO_LONG', `line longer than ${maxLength} bytes`);
      await this.more();
    }
  }

  /** Exactly `n` bytes (an IMAP literal). */
  async readBytes(n: number): Promise<Buffer> {
    while (this.buf.length < n) await this.more();
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Drop buffered input: after STARTTLS nothing sent in plaintext may be acted on (RFC 3207 §4.2-style injection). */
  discard(): void {
    this.buf = EMPTY;
  }

  /** Stop reading: detach from the stream (left paused) and return the bytes read but not consumed. */
  detach(): Buffer {
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onEnd);
    this.stream.off('error', this.onError);
    this.stream.pause();
    const rest = this.buf;
    this.buf = EMPTY;
    return rest;
  }
}
