import type { ResponseBoundary } from '../proxy/splice.ts';

/** The longest literal marker `{4294967295+}` plus CR, with room to spare. */
const TAIL = 24;

/**
 * Tracks IMAP server responses (RFC 9051 §2.2.2, §4.3): lines end with CRLF, and a line ending
 * in `{n}` is followed by n literal bytes and then the rest of the same response. The proxy may
 * inject `* BYE` only between responses. Literal bytes are skipped by count, so a large FETCH
 * costs one indexOf per line, not a byte-by-byte scan.
 */
export class ImapResponseBoundary implements ResponseBoundary {
  private literal = 0;
  private tail = '';
  private lineStart = true;

  fromClient(): void {}

  fromBackend(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.literal > 0) {
        const take = Math.min(this.literal, chunk.length - i);
        this.literal -= take;
        i += take;
        this.lineStart = false;
        continue;
      }
      const nl = chunk.indexOf(10, i);
      if (nl < 0) {
        this.tail = (this.tail + chunk.toString('latin1', Math.max(i, chunk.length - TAIL))).slice(-TAIL);
        this.lineStart = false;
        return;
      }
      const end = (this.tail + chunk.toString('latin1', Math.max(i, nl - TAIL), nl)).slice(-TAIL);
      this.tail = '';
      const m = /\{(\d+)\+?\}\r?$/.exec(end);
      if (m) {
        this.literal = Number(m[1]);
        this.lineStart = false;
      } else {
        this.lineStart = true;
      }
      i = nl + 1;
    }
  }

  atBoundary(): boolean {
    return this.literal === 0 && this.lineStart;
  }
}
