import type { Duplex } from 'node:stream';
import type { Endpoints } from '../proxy/address.ts';
import { ProxyError } from '../proxy/errors.ts';
import { LineReader } from '../proxy/reader.ts';

/** Inputs of {@link pop3BackendLogin}. */
export interface Pop3BackendLoginInput {
  endpoints: Endpoints;
  /** Commands to replay (`USER x`, `PASS y`, or `AUTH PLAIN b64`); each must get +OK. */
  commands: string[];
  maxLineLength: number;
}

/** What the backend answered. */
export interface Pop3BackendLoginResult {
  ok: boolean;
  /** The backend's reply to the last command sent, for the client. */
  reply: string;
  leftover: Buffer;
}

/**
 * Log in to a backend POP3 server for a client: read the greeting; when it advertises
 * `[XCLIENT]` (Dovecot does so to `login_trusted_networks`), pass the client address with
 * `XCLIENT ADDR= PORT=`; then replay the login commands. The client reads the backend's own
 * reply to the final command (+OK, or -ERR [AUTH] …).
 */
export async function pop3BackendLogin(backend: Duplex, i: Pop3BackendLoginInput): Promise<Pop3BackendLoginResult> {
  const reader = new LineReader(backend, 65536, 'ERR_BACKEND_CLOSED');
  try {
    const greeting = await reader.readLine(i.maxLineLength);
    if (!greeting.startsWith('+OK')) throw new ProxyError('ERR_BACKEND_PROTOCOL', `unexpected backend greeting: ${greeting.slice(0, 80)}`);
    if (/\[XCLIENT\]/i.test(greeting)) {
      backend.write(`XCLIENT ADDR=${i.endpoints.remoteIp} PORT=${i.endpoints.remotePort}\r\n`);
      const r = await reader.readLine(i.maxLineLength);
      if (!r.startsWith('+OK')) throw new ProxyError('ERR_BACKEND_PROTOCOL', `backend refused XCLIENT: ${r.slice(0, 80)}`);
    }
    let reply = '';
    for (const cmd of i.commands) {
      backend.write(`${cmd}\r\n`);
      reply = await reader.readLine(i.maxLineLength);
      if (reply.startsWith('+ ') || reply === '+') {
        // RFC 5034 §4: "*" cancels an exchange the backend wants to continue.
        backend.write('*\r\n');
        reply = await reader.readLine(i.maxLineLength);
      }
      if (!reply.startsWith('+OK')) return { ok: false, reply, leftover: reader.detach() };
    }
    return { ok: true, reply, leftover: reader.detach() };
  } catch (err) {
    reader.detach();
    throw err;
  }
}
