const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
/** A bare CR (also one ending the chunk: the next may start with its LF), a bare LF, or a line
 * starting with a dot: the chunk needs the byte-by-byte rewrite. */
const NEEDS_REWRITE = /\r(?!\n)|(?<!\r)\n|\n\./;

/**
 * Turns message bytes into the DATA payload, one chunk at a time, so bodies stream with bounded
 * memory:
 * - every line ends in CRLF: a bare LF or bare CR becomes CRLF (RFC 5321 §2.3.8 forbids bare
 *   ones; normalising them also closes the "SMTP smuggling" gap where a receiver reads `\n.\n`
 *   as the end of data);
 * - a line starting with `.` gets one more `.` (RFC 5321 §4.5.2 transparency);
 * - {@link end} terminates the last line if needed and appends `.CRLF`.
 *
 * @example
 * const s = new DotStuffer();
 * socket.write(s.push(Buffer.from('.hi\n'))); // '..hi\r\n'
 * socket.write(s.end());                      // '.\r\n'
 */
export class DotStuffer {
  private atLineStart = true;
  private pendingCr = false;

  /** Transform one chunk. */
  push(chunk: Uint8Array): Buffer {
    // Most mail is already in wire form: CRLF lines, none starting with a dot. Such a chunk goes
    // out as it is (one native scan instead of a copy byte by byte).
    if (chunk.length > 0 && !this.pendingCr && !(this.atLineStart && chunk[0] === DOT)) {
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
      if (!NEEDS_REWRITE.test(bytes.toString('latin1'))) {
        this.atLineStart = bytes[bytes.length - 1] === LF;
        return bytes;
      }
    }
    const out = Buffer.allocUnsafe(chunk.length * 2 + 2);
    let o = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (this.pendingCr) {
        this.pendingCr = false;
        out[o++] = CR;
        out[o++] = LF;
        this.atLineStart = true;
        if (b === LF) continue;
      }
      if (b === CR) {
        this.pendingCr = true;
        continue;
      }
      if (b === LF) {
        out[o++] = CR;
        out[o++] = LF;
        this.atLineStart = true;
        continue;
      }
      if (this.atLineStart && b === DOT) out[o++] = DOT;
      this.atLineStart = false;
      out[o++] = b;
    }
    return out.subarray(0, o);
  }

  /** The bytes that end the DATA payload: a final CRLF when the message lacks one, then `.CRLF`. */
  end(): Buffer {
    const tail = this.pendingCr || !this.atLineStart ? '\r\n.\r\n' : '.\r\n';
    this.pendingCr = false;
    this.atLineStart = true;
    return Buffer.from(tail, 'latin1');
  }
}
