import type { LineReader } from '../proxy/reader.ts';

/** A token of a pre-login IMAP command (RFC 9051 §4: atoms, strings, parenthesized lists). */
export type ImapToken = { kind: 'atom'; value: string } | { kind: 'string'; value: string } | { kind: 'open' } | { kind: 'close' };

/** A parsed command, or why it was refused. */
export type ImapCommandResult =
  | { kind: 'command'; tag: string; name: string; args: ImapToken[] }
  | { kind: 'bad'; tag: string; text: string; fatal: boolean };

/** Bounds of {@link readImapCommand}. */
export interface ImapParseLimits {
  maxLineLength: number;
  maxLiteral: number;
}

/** At most this many literals in one pre-login command (LOGIN needs two). */
const MAX_LITERALS = 4;
/** RFC 9051 §9: tag = 1*<any ASTRING-CHAR except "+">: printable 7-bit ASCII (CHAR is %x01-7F)
 * without SP, CTLs, list-wildcards, quoted-specials, "(", ")" and "{". Non-ASCII bytes are not
 * tag characters (and must not be echoed back as one). */
const TAG_RE = /^[!#$&'\-./0-9:;<=>?@A-Z[\]^_`a-z|}~,]+$/;
/** RFC 9051 §9 literal / RFC 7888 literal+: `{n}` or `{n+}` ending the line. */
const LITERAL_RE = /^\{(\d{1,10})(\+?)\}$/;

/**
 * Tokenize one line segment. Returns the literal announced at its end, if any, or an error text.
 */
function tokenize(seg: string, out: ImapToken[]): { literal?: { size: number; sync: boolean }; error?: string } {
  let i = 0;
  while (i < seg.length) {
    const c = seg[i];
    if (c === ' ') {
      i++;
    } else if (c === '(') {
      out.push({ kind: 'open' });
      i++;
    } else if (c === ')') {
      out.push({ kind: 'close' });
      i++;
    } else if (c === '"') {
      // RFC 9051 §9: quoted = DQUOTE *QUOTED-CHAR DQUOTE; only \\ and \" are escapes.
      let v = '';
      let j = i + 1;
      for (;;) {
        if (j >= seg.length) return { error: 'Unterminated quoted string.' };
        const d = seg[j];
        if (d === '"') break;
        if (d === '\\') {
          const e = seg[j + 1];
          if (e !== '\\' && e !== '"') return { error: 'Invalid escape in quoted string.' };
          v += e;
          j += 2;
        } else {
          v += d;
          j++;
        }
      }
      out.push({ kind: 'string', value: v });
      i = j + 1;
    } else if (c === '{') {
      const m = LITERAL_RE.exec(seg.slice(i));
      if (!m) return { error: 'Invalid literal.' };
      return { literal: { size: Number(m[1]), sync: m[2] !== '+' } };
    } else {
      let j = i;
      while (j < seg.length && !' ()"{'.includes(seg[j])) j++;
      const value = seg.slice(i, j);
      // eslint-disable-next-line no-control-regex -- RFC 9051 §9 ATOM-CHAR excludes CTLs
      if (/[\x00-\x1f\x7f\\]/.test(value)) return { error: 'Invalid characters in atom.' };
      out.push({ kind: 'atom', value });
      i = j;
    }
  }
  return {};
}

/**
 * Read one complete pre-login command from the client, including its literals (RFC 9051 §4.3,
 * §7.5: a synchronizing literal `{n}` is sent only after our `+` continuation, which
 * `sendContinuation` writes; RFC 7888 `{n+}` follows at once). Line length and literal sizes
 * are bounded: a refused synchronizing literal is a plain BAD (the client sends nothing), a
 * refused non-synchronizing one is fatal because its bytes are already on the way (RFC 7888 §4).
 * A line over the limit throws `ERR_LINE_TOO_LONG` from the reader.
 */
export async function readImapCommand(reader: LineReader, limits: ImapParseLimits, sendContinuation: () => void): Promise<ImapCommandResult> {
  let line = await reader.readLine(limits.maxLineLength);
  const sp = line.indexOf(' ');
  const tag = sp < 0 ? line : line.slice(0, sp);
  if (line.length === 0) return { kind: 'bad', tag: '*', text: 'Empty command.', fatal: false };
  if (!TAG_RE.test(tag)) return { kind: 'bad', tag: '*', text: 'Invalid tag.', fatal: false };
  if (sp < 0) return { kind: 'bad', tag, text: 'Missing command.', fatal: false };
  line = line.slice(sp + 1);
  const nsp = line.indexOf(' ');
  const name = (nsp < 0 ? line : line.slice(0, nsp)).toUpperCase();
  if (!/^[A-Z]+$/.test(name)) return { kind: 'bad', tag, text: 'Invalid command name.', fatal: false };
  let seg = nsp < 0 ? '' : line.slice(nsp + 1);
  const args: ImapToken[] = [];
  for (let literals = 0; ; literals++) {
    const r = tokenize(seg, args);
    if (r.error) return { kind: 'bad', tag, text: r.error, fatal: false };
    if (!r.literal) return { kind: 'command', tag, name, args };
    if (literals >= MAX_LITERALS) return { kind: 'bad', tag, text: 'Too many literals.', fatal: !r.literal.sync };
    if (r.literal.size > limits.maxLiteral) {
      return { kind: 'bad', tag, text: `Literal too big (max ${limits.maxLiteral} bytes).`, fatal: !r.literal.sync };
    }
    if (r.literal.sync) sendContinuation();
    const bytes = await reader.readBytes(r.literal.size);
    args.push({ kind: 'string', value: bytes.toString('utf8') });
    seg = await reader.readLine(limits.maxLineLength);
  }
}

/** The string value of an astring argument (atom, quoted or literal), or undefined. */
export function astring(t: ImapToken | undefined): string | undefined {
  return t && (t.kind === 'atom' || t.kind === 'string') ? t.value : undefined;
}

/**
 * Encode a string for a command we send to the backend: quoted when it is plain 7-bit text
 * (RFC 9051 §4.3 quoted), otherwise an RFC 7888 non-synchronizing literal (Dovecot advertises
 * LITERAL+ before login).
 */
export function encodeAstring(value: string): string {
  // eslint-disable-next-line no-control-regex -- RFC 9051 §9 QUOTED-CHAR: 7-bit, no CR/LF/NUL
  if (/^[\x01-\x09\x0b\x0c\x0e-\x7f]*$/.test(value)) return `"${value.replace(/[\\"]/g, '\\$&')}"`;
  return `{${Buffer.byteLength(value, 'utf8')}+}\r\n${value}`;
}
