import { PostfixError } from './errors.ts';

/** Encode one netstring: `<length>:<bytes>,` (D. J. Bernstein's netstrings, used by socketmap). */
export function encodeNetstring(payload: string | Buffer): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([Buffer.from(`${data.length}:`, 'latin1'), data, Buffer.from(',', 'latin1')]);
}

/**
 * Incremental netstring decoder: feed it bytes as they arrive, get complete payloads back.
 * Throws {@link PostfixError} `ERR_NETSTRING` on malformed input or a length above `maxLength`
 * (checked before the payload is buffered, so a peer cannot make us hold more than that).
 */
export class NetstringDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private readonly maxLength: number;
  private readonly maxDigits: number;

  constructor(maxLength: number) {
    this.maxLength = maxLength;
    this.maxDigits = String(maxLength).length;
  }

  /** Add bytes; returns every payload completed by them, in order. */
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Buffer[] = [];
    for (;;) {
      const colon = this.buf.indexOf(0x3a);
      const head = colon < 0 ? this.buf : this.buf.subarray(0, colon);
      if (head.length > this.maxDigits || !/^\d*$/.test(head.toString('latin1'))) throw new PostfixError('ERR_NETSTRING', 'malformed netstring length');
      if (colon < 0) return out;
      if (colon === 0 || (head.length > 1 && head[0] === 0x30)) throw new PostfixError('ERR_NETSTRING', 'malformed netstring length');
      const len = Number(head.toString('latin1'));
      if (len > this.maxLength) throw new PostfixError('ERR_NETSTRING', `netstring of ${len} bytes exceeds the limit of ${this.maxLength}`);
      const end = colon + 1 + len;
      if (this.buf.length < end + 1) return out;
      if (this.buf[end] !== 0x2c) throw new PostfixError('ERR_NETSTRING', 'netstring not terminated by a comma');
      out.push(this.buf.subarray(colon + 1, end));
      this.buf = this.buf.subarray(end + 1);
    }
  }
}
