import type tls from 'node:tls';
import type { Connection } from '../proxy/listen.ts';
import { ProxyError } from '../proxy/errors.ts';
import { ClientLine } from '../proxy/client-line.ts';
import { LineReader } from '../proxy/reader.ts';
import { decodeSaslPlain, encodeSaslPlain } from '../proxy/sasl-plain.ts';
import { splice } from '../proxy/splice.ts';
import { upgradeToTls } from '../proxy/tls.ts';
import type { MailProxyOptions } from '../proxy/types.ts';
import { pop3BackendLogin } from './backend-login.ts';
import { Pop3ResponseBoundary } from './boundary.ts';
import { pop3Capabilities, pop3LoginAllowed } from './capability.ts';

/** Longest login name accepted (RFC 5321 §4.5.3.1.3: a path is at most 256 octets). */
export const POP3_MAX_LOGIN_LENGTH = 256;

/** Sent when a mailbox moved to another shard: RFC 3206 §4 SYS/TEMP tells the client to retry. */
export const POP3_MOVED_ERR = '-ERR [SYS/TEMP] Mailbox moved, reconnect.';

/** The reply Dovecot gives for a wrong password (RFC 3206 §4 AUTH), reused for unknown users. */
const AUTH_FAILED = '-ERR [AUTH] Authentication failed.';
const PRIVACY = '-ERR [AUTH] Plaintext authentication disallowed on non-secure connections.';
/** USER and PASS arguments are replayed to the backend as they came; a CR (a line ends only at LF
 * here) or a NUL in them could split one command into two on a lenient server (RFC 1939 §3:
 * arguments are printable text). */
// eslint-disable-next-line no-control-regex -- the point is to find control characters
const CONTROL_CHARS = /[\x00\r\n]/;

/**
 * One POP3 client connection (RFC 1939) before and after login: CAPA (RFC 2449), STLS
 * (RFC 2595), USER/PASS and AUTH PLAIN (RFC 5034) handled here; the login name picks the
 * backend; the login is replayed there after XCLIENT; then the streams are spliced.
 */
export async function runPop3Session(c: Connection, o: MailProxyOptions): Promise<void> {
  const client = new ClientLine(c.socket, o.preauthTimeoutMs, '-ERR Disconnected for inactivity.');
  const write = (line: string) => client.write(line);
  const hangUp = (line: string) => client.hangUp(line);
  let secure = c.secure;
  let reader = new LineReader(client.socket, o.maxLineLength + 4096, 'ERR_CLIENT_CLOSED');
  let user: string | undefined;
  let failures = 0;
  const state = () => ({ secure, tlsAvailable: !!o.tls && !o.implicitTls, allowPlaintextLogin: o.allowPlaintextLogin ?? false });

  const fail = async (reply: string) => {
    await o.failureDelay?.();
    failures++;
    // POP3 has no untagged responses: the last failure's own reply is the final line, then we close.
    if (failures >= o.maxAuthAttempts) hangUp(reply);
    else write(reply);
  };

  /** Returns true when the session was spliced (and has ended). */
  const attempt = async (login: string, commands: string[]): Promise<boolean> => {
    user = undefined;
    if (login.length === 0 || Buffer.byteLength(login) > POP3_MAX_LOGIN_LENGTH) {
      write('-ERR Login name too long.');
      return false;
    }
    const route = await o.route(login);
    if (route.kind === 'unknown') {
      await fail(AUTH_FAILED);
      return false;
    }
    const opened = await client.loginToBackend(
      () => o.connectBackend(route, 'pop3'),
      (backend) => pop3BackendLogin(backend, { endpoints: c.endpoints, commands, maxLineLength: 65536 }),
      (err) => {
        o.log.warn({ err, protocol: 'pop3', client: c.entry.client, route }, 'backend login failed');
        write('-ERR [SYS/TEMP] Mailbox server unavailable, try again later.');
      },
    );
    if (opened === 'ended') return true;
    if (opened === 'unavailable') return false;
    const { backend, result } = opened;
    if (!result.ok) {
      client.dropBackend();
      o.log.info({ protocol: 'pop3', login, client: c.entry.client }, 'login refused by backend');
      await fail(result.reply);
      return false;
    }
    client.stopDeadline();
    const clientLeftover = reader.detach();
    write(result.reply);
    const sp = splice(client.socket, backend, {
      clientLeftover,
      backendLeftover: result.leftover,
      idleTimeoutMs: o.idleTimeoutMs,
      idleMessage: '-ERR [SYS/TEMP] Disconnected for inactivity.',
      boundary: new Pop3ResponseBoundary(),
    });
    c.entry.login = login;
    c.entry.moved = () => sp.closeWith(POP3_MOVED_ERR);
    o.log.info({ protocol: 'pop3', login, client: c.entry.client, route }, 'logged in');
    await sp.closed;
    return true;
  };

  write('+OK mailmesh ready.');
  try {
    while (!client.finished) {
      let line: string;
      try {
        line = await reader.readLine(o.maxLineLength);
      } catch (err) {
        if (err instanceof ProxyError && err.code === 'ERR_LINE_TOO_LONG') hangUp('-ERR Line too long.');
        return;
      }
      if (client.finished) return;
      const sp = line.indexOf(' ');
      const cmd = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
      const arg = sp < 0 ? '' : line.slice(sp + 1);
      switch (cmd) {
        case 'CAPA':
          write('+OK Capability list follows');
          for (const cap of pop3Capabilities(state())) write(cap);
          write('.');
          break;
        case 'QUIT':
          hangUp('+OK Logging out.');
          return;
        case 'NOOP':
          // RFC 1939 §5: NOOP belongs to the TRANSACTION state.
          write('-ERR Unknown command.');
          break;
        case 'STLS': {
          if (!o.tls || o.implicitTls || secure) {
            write(`-ERR ${secure ? 'TLS is already active.' : 'STLS is not available.'}`);
            break;
          }
          write('+OK Begin TLS negotiation now.');
          // RFC 2595 §4: nothing the client pipelined in plaintext survives the upgrade.
          reader.detach();
          const upgraded: tls.TLSSocket = await upgradeToTls(client.socket, o.tls.secureContext(), o.preauthTimeoutMs);
          client.socket = upgraded;
          secure = true;
          user = undefined;
          c.entry.kill = () => upgraded.destroy();
          reader = new LineReader(client.socket, o.maxLineLength + 4096, 'ERR_CLIENT_CLOSED');
          break;
        }
        case 'USER':
          if (!pop3LoginAllowed(state())) {
            write(PRIVACY);
          } else if (!arg || Buffer.byteLength(arg) > POP3_MAX_LOGIN_LENGTH || CONTROL_CHARS.test(arg)) {
            write('-ERR Invalid user name.');
          } else {
            user = arg;
            write('+OK');
          }
          break;
        case 'PASS': {
          if (!pop3LoginAllowed(state())) {
            write(PRIVACY);
            break;
          }
          if (user === undefined) {
            write('-ERR No username given.');
            break;
          }
          if (CONTROL_CHARS.test(arg)) {
            // Replayed verbatim: a bare CR would end the line early on a lenient backend.
            write('-ERR Invalid characters in password.');
            break;
          }
          // RFC 1939 §7: the password is the rest of the line and may contain spaces.
          if (await attempt(user, [`USER ${user}`, `PASS ${arg}`])) return;
          break;
        }
        case 'AUTH': {
          if (!arg) {
            // The pre-RFC 5034 listing form, still sent by some clients.
            write('+OK');
            write('PLAIN');
            write('.');
            break;
          }
          const [mech, ir] = arg.split(' ');
          if (mech.toUpperCase() !== 'PLAIN') {
            write('-ERR Unsupported authentication mechanism.');
            break;
          }
          if (!pop3LoginAllowed(state())) {
            write(PRIVACY);
            break;
          }
          let response = ir;
          if (response === undefined) {
            write('+ ');
            response = await reader.readLine(o.maxLineLength);
            if (response === '*') {
              // RFC 5034 §4: the client cancelled.
              write('-ERR Authentication aborted by client.');
              break;
            }
          }
          const creds = response === '=' ? undefined : decodeSaslPlain(response);
          if (!creds) {
            write('-ERR Invalid SASL PLAIN response.');
            break;
          }
          if (await attempt(creds.login, [`AUTH PLAIN ${encodeSaslPlain(creds)}`])) return;
          break;
        }
        default:
          write('-ERR Unknown command.');
      }
    }
  } finally {
    client.stopDeadline();
  }
}
