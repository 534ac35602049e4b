const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/**
 * True when every line of `bytes` ends in CRLF (each LF preceded by CR, each CR followed by LF;
 * none ends the chunk: the next may start with its LF), and, unless `dotsAllowed`, no line after
 * the first starts with a dot. Native `indexOf` hops from line end to line end: no copy of the
 * chunk, no string on the V8 heap (a 10 KB message has about a hundred lines).
 */
function crlfLines(bytes: Buffer, dotsAllowed: boolean): boolean {
  let lines = 0;
  for (let p = bytes.indexOf(LF); p !== -1; p = bytes.indexOf(LF, p + 1)) {
    if (p === 0 || bytes[p - 1] !== CR || (!dotsAllowed && bytes[p + 1] === DOT)) return false;
    lines++;
  }
  // As many CRs as CRLFs: no bare CR anywhere.
  let crs = 0;
  for (let p = bytes.indexOf(CR); p !== -1 && crs <= lines; p = bytes.indexOf(CR, p + 1)) crs++;
  return crs === lines;
}

/**
 * True when a whole message can go out as it is in a BDAT chunk (RFC 3030: no dot-stuffing, no
 * end-of-data line): every line, the last included, ends in CRLF. Anything else (bare LF or CR)
 * must be normalised first, as {@link DotStuffer} does for DATA.
 */
export function isCrlfMessage(message: Buffer): boolean {
  return message.length === 0 || (message[message.length - 1] === LF && crlfLines(message, true));
}

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
      if (crlfLines(bytes, false)) {
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
