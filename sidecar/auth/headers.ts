// Header surgery on the raw message: only the header block is looked at and every byte that is
// kept is copied as it came (no re-encoding, no re-folding); the body is never touched.

/** Byte range of one header field (name through its last continuation line and CRLF). */
interface Field {
  start: number;
  end: number;
  name: string;
  /** The field body, unfolded is not needed: raw text after the colon. */
  value: string;
}

/** End of the header block: the index just after the blank line, or the buffer length. */
function headerEnd(msg: Buffer): { fieldsEnd: number } {
  // The header block ends at the first empty line (RFC 5322 §2.1); accept bare LF too.
  if (msg[0] === 0x0a || (msg[0] === 0x0d && msg[1] === 0x0a)) return { fieldsEnd: 0 };
  for (let i = 0; i < msg.length; i++) {
    if (msg[i] !== 0x0a) continue;
    if (msg[i + 1] === 0x0a) return { fieldsEnd: i + 1 };
    if (msg[i + 1] === 0x0d && msg[i + 2] === 0x0a) return { fieldsEnd: i + 1 };
  }
  return { fieldsEnd: msg.length };
}

function parseFields(msg: Buffer, fieldsEnd: number): Field[] {
  const text = msg.toString('latin1', 0, fieldsEnd); // 1 char per byte: indexes are byte offsets
  const fields: Field[] = [];
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    end = end < 0 ? text.length : end + 1;
    // RFC 5322 §2.2.3: a line starting with WSP continues the previous field.
    while (end < text.length && (text[end] === ' ' || text[end] === '\t')) {
      const next = text.indexOf('\n', end);
      end = next < 0 ? text.length : next + 1;
    }
    const raw = text.slice(pos, end);
    const colon = raw.indexOf(':');
    fields.push({ start: pos, end, name: colon > 0 ? raw.slice(0, colon).trim().toLowerCase() : '', value: colon > 0 ? raw.slice(colon + 1) : '' });
    pos = end;
  }
  return fields;
}

/**
 * The authserv-id of an Authentication-Results field body (RFC 8601 §2.2: `[CFWS] authserv-id`,
 * a token or quoted-string), or '' when there is none.
 */
export function authservIdOf(value: string): string {
  let i = 0;
  let depth = 0;
  // Skip CFWS: whitespace, folding and (nested) comments.
  while (i < value.length) {
    const c = value[i];
    if (depth > 0) {
      if (c === '\\') i++;
      else if (c === '(') depth++;
      else if (c === ')') depth--;
      i++;
    } else if (c === '(') {
      depth = 1;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
    } else break;
  }
  if (value[i] === '"') {
    let out = '';
    for (i++; i < value.length && value[i] !== '"'; i++) {
      if (value[i] === '\\') i++;
      out += value[i] ?? '';
    }
    return out;
  }
  const m = /^[^\s;()"]+/.exec(value.slice(i));
  return m ? m[0] : '';
}

/** Headers of ours that a sender must not be able to supply: stripped from every incoming message. */
export const OWN_HEADERS = ['x-mailmesh-quarantine'];

/**
 * Remove every Authentication-Results field whose authserv-id equals ours (case-insensitively,
 * RFC 8601 §5: a forged claim in our name must not reach the user), and any incoming copy of our
 * own {@link OWN_HEADERS}. Other Authentication-Results fields are kept as they are.
 */
export function stripAuthResults(message: Buffer, authservId: string): Buffer {
  const { fieldsEnd } = headerEnd(message);
  const ours = authservId.toLowerCase();
  const drop = parseFields(message, fieldsEnd).filter(
    (f) => (f.name === 'authentication-results' && authservIdOf(f.value).toLowerCase() === ours) || OWN_HEADERS.includes(f.name),
  );
  if (drop.length === 0) return message;
  const parts: Buffer[] = [];
  let pos = 0;
  for (const f of drop) {
    parts.push(message.subarray(pos, f.start));
    pos = f.end;
  }
  parts.push(message.subarray(pos));
  return Buffer.concat(parts);
}

/** Prepend header fields (each `Name: value`, without a line end) above the existing ones. */
export function prependHeaders(message: Buffer, fields: string[]): Buffer {
  if (fields.length === 0) return message;
  return Buffer.concat([Buffer.from(fields.map((f) => `${f}\r\n`).join(''), 'utf8'), message]);
}

/**
 * The one call the front door makes after deciding: strip forged Authentication-Results claiming
 * `authservId`, then prepend ours (RFC 8601 §5: above the other trace fields) and any extra
 * header fields from `decide()` (e.g. the quarantine marker).
 *
 * @example
 * const out = addAuthResults(message, v.authservId, v.headerValue, decision.headers ?? []);
 */
export function addAuthResults(message: Buffer, authservId: string, headerValue: string, extra: string[] = []): Buffer {
  return prependHeaders(stripAuthResults(message, authservId), [`Authentication-Results: ${headerValue}`, ...extra]);
}
