import type { Duplex } from 'node:stream';
import type { Endpoints } from '../proxy/address.ts';
import { ProxyError } from '../proxy/errors.ts';
import { LineReader } from '../proxy/reader.ts';

/** Inputs of {@link imapBackendLogin}. */
export interface ImapBackendLoginInput {
  /** The client's endpoints, passed to Dovecot with ID. */
  endpoints: Endpoints;
  /** The client's tag: the backend's tagged reply to it goes to the client unchanged. */
  tag: string;
  /** The login command line to send, already carrying `tag` (LOGIN or AUTHENTICATE PLAIN with SASL-IR). */
  command: string;
  maxLineLength: number;
}

/** What the backend answered. */
export interface ImapBackendLoginResult {
  ok: boolean;
  /** Response lines for the client (untagged ones, then the tagged reply), without CRLF. */
  lines: string[];
  /** Backend bytes read after the tagged reply. */
  leftover: Buffer;
}

/**
 * Log in to a backend IMAP server on behalf of a client: read its greeting, tell it the real
 * client address with ID (RFC 2971; Dovecot takes `x-originating-ip`/`x-connected-ip` and the
 * ports only from `login_trusted_networks`), then replay the client's login with the client's
 * tag, so the client reads the backend's own tagged OK/NO (with its post-login CAPABILITY).
 * Throws `ProxyError` (ERR_BACKEND_PROTOCOL / ERR_BACKEND_CLOSED) when the backend misbehaves.
 */
export async function imapBackendLogin(backend: Duplex, i: ImapBackendLoginInput): Promise<ImapBackendLoginResult> {
  const reader = new LineReader(backend, 65536, 'ERR_BACKEND_CLOSED');
  try {
    const greeting = await reader.readLine(i.maxLineLength);
    // RFC 9051 §7.1.1: only an OK greeting leaves the connection not-authenticated.
    if (!greeting.startsWith('* OK')) throw new ProxyError('ERR_BACKEND_PROTOCOL', `unexpected backend greeting: ${greeting.slice(0, 80)}`);
    const idTag = i.tag === 'mm0' ? 'mm1' : 'mm0';
    const e = i.endpoints;
    backend.write(
      `${idTag} ID ("x-originating-ip" "${e.remoteIp}" "x-originating-port" "${e.remotePort}" ` +
        `"x-connected-ip" "${e.localIp}" "x-connected-port" "${e.localPort}")\r\n`,
    );
    for (;;) {
      const line = await reader.readLine(i.maxLineLength);
      if (line.startsWith(`${idTag} `)) break;
    }
    backend.write(`${i.command}\r\n`);
    const lines: string[] = [];
    for (;;) {
      const line = await reader.readLine(i.maxLineLength);
      if (line.startsWith('+')) {
        // A continuation means the backend wants more than the replayed command: abort the
        // exchange (RFC 9051 §6.2.2 "*") and report its tagged reply as a failure.
        backend.write('*\r\n');
        continue;
      }
      lines.push(line);
      if (line.startsWith(`${i.tag} `)) {
        const status = line.slice(i.tag.length + 1).split(' ', 1)[0].toUpperCase();
        return { ok: status === 'OK', lines, leftover: reader.detach() };
      }
    }
  } catch (err) {
    reader.detach();
    throw err;
  }
}
