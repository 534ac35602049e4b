import type { ResponseBoundary } from '../proxy/splice.ts';

/** One response the backend owes the client. */
interface Pending {
  multi: boolean;
  inBody: boolean;
}

/**
 * Tracks POP3 responses (RFC 1939 §3): every command gets a status line, and +OK to RETR, TOP,
 * CAPA and argument-less LIST/UIDL is followed by a multi-line body ending in a lone ".".
 * The proxy may inject `-ERR` only when every command forwarded has been fully answered.
 */
export class Pop3ResponseBoundary implements ResponseBoundary {
  private readonly pending: Pending[] = [];
  private clientLine = '';
  private serverLine = '';
  private serverLen = 0;
  private lineStart = true;

  fromClient(chunk: Buffer): void {
    let i = 0;
    for (;;) {
      const nl = chunk.indexOf(10, i);
      if (nl < 0) {
        // Only the command word and whether arguments follow matter: keep a short prefix.
        this.clientLine = (this.clientLine + chunk.toString('latin1', i, Math.min(chunk.length, i + 64))).slice(0, 64);
        return;
      }
      const line = (this.clientLine + chunk.toString('latin1', i, Math.min(nl, i + 64))).slice(0, 64).trimEnd();
      this.clientLine = '';
      const [word, arg] = line.split(' ');
      const cmd = (word ?? '').toUpperCase();
      const multi = cmd === 'RETR' || cmd === 'TOP' || cmd === 'CAPA' || ((cmd === 'LIST' || cmd === 'UIDL') && !arg);
      this.pending.push({ multi, inBody: false });
      i = nl + 1;
    }
  }

  fromBackend(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      const nl = chunk.indexOf(10, i);
      if (nl < 0) {
        this.serverLine = (this.serverLine + chunk.toString('latin1', i, Math.min(chunk.length, i + 4))).slice(0, 4);
        this.serverLen += chunk.length - i;
        this.lineStart = false;
        return;
      }
      const line = (this.serverLine + chunk.toString('latin1', i, Math.min(nl, i + 4))).slice(0, 4);
      const length = this.serverLen + (nl - i);
      this.serverLine = '';
      this.serverLen = 0;
      this.lineStart = true;
      this.line(line.replace(/\r$/, ''), length);
      i = nl + 1;
    }
  }

  private line(start: string, rawLength: number): void {
    const head = this.pending[0];
    if (!head) return;
    if (head.inBody) {
      // RFC 1939 §3: the terminator is a line holding only "." (byte-stuffed lines start "..").
      if (start === '.' && rawLength <= 2) this.pending.shift();
      return;
    }
    if (head.multi && start.startsWith('+OK')) head.inBody = true;
    else this.pending.shift();
  }

  atBoundary(): boolean {
    return this.pending.length === 0 && this.lineStart;
  }
}
