import type tls from 'node:tls';
import type { Connection } from '../proxy/listen.ts';
import { ProxyError } from '../proxy/errors.ts';
import { ClientLine } from '../proxy/client-line.ts';
import { LineReader } from '../proxy/reader.ts';
import { decodeSaslPlain, encodeSaslPlain } from '../proxy/sasl-plain.ts';
import { splice } from '../proxy/splice.ts';
import { upgradeToTls } from '../proxy/tls.ts';
import type { MailProxyOptions } from '../proxy/types.ts';
import { imapBackendLogin } from './backend-login.ts';
import { ImapResponseBoundary } from './boundary.ts';
import { imapCapabilities, loginAllowed } from './capability.ts';
import { astring, encodeAstring, readImapCommand } from './parse.ts';

/** Longest login name accepted (RFC 5321 §4.5.3.1.3: a path is at most 256 octets). */
export const MAX_LOGIN_LENGTH = 256;

/** Sent when a mailbox moved to another shard: RFC 5530 §3 UNAVAILABLE is a temporary failure, so clients reconnect. */
export const IMAP_MOVED_BYE = '* BYE [UNAVAILABLE] Mailbox moved, reconnect.';

const AUTH_FAILED = 'NO [AUTHENTICATIONFAILED] Authentication failed.';

/** A login the client asked for, ready to replay to the backend. */
interface LoginAttempt {
  tag: string;
  login: string;
  command: string;
}

/**
 * One IMAP client connection before and after login: answers the pre-login commands itself
 * (RFC 9051 §6.1, §6.2), reads the login name from LOGIN or AUTHENTICATE PLAIN, routes it,
 * logs in to the backend with the client's own command and tag, then splices the two.
 */
export async function runImapSession(c: Connection, o: MailProxyOptions): Promise<void> {
  const client = new ClientLine(c.socket, o.preauthTimeoutMs, '* BYE Disconnected for inactivity.');
  const write = (line: string) => client.write(line);
  const hangUp = (line: string) => client.hangUp(line);
  let secure = c.secure;
  let reader = new LineReader(client.socket, o.maxLineLength + o.maxLiteral + 4096, 'ERR_CLIENT_CLOSED');
  let failures = 0;
  const state = () => ({ secure, tlsAvailable: !!o.tls && !o.implicitTls, allowPlaintextLogin: o.allowPlaintextLogin ?? false });

  const fail = async (tag: string, lines: string[]) => {
    await o.failureDelay?.();
    for (const l of lines) write(l);
    failures++;
    if (failures >= o.maxAuthAttempts) hangUp('* BYE Too many invalid authentication attempts.');
  };

  /** Returns true when the session is now spliced (and has ended). */
  const attempt = async (a: LoginAttempt): Promise<boolean> => {
    if (a.login.length === 0 || Buffer.byteLength(a.login) > MAX_LOGIN_LENGTH) {
      write(`${a.tag} BAD Login name too long.`);
      return false;
    }
    const route = await o.route(a.login);
    if (route.kind === 'unknown') {
      // No backend connection: the answer is the one Dovecot gives for a wrong password, after the same delay.
      await fail(a.tag, [`${a.tag} ${AUTH_FAILED}`]);
      return false;
    }
    const opened = await client.loginToBackend(
      () => o.connectBackend(route, 'imap'),
      (backend) => imapBackendLogin(backend, { endpoints: c.endpoints, tag: a.tag, command: a.command, maxLineLength: 65536 }),
      (err) => {
        o.log.warn({ err, protocol: 'imap', client: c.entry.client, route }, 'backend login failed');
        // RFC 5530 §3 UNAVAILABLE: temporary, the client should try again later.
        write(`${a.tag} NO [UNAVAILABLE] Mailbox server unavailable, try again later.`);
      },
    );
    if (opened === 'ended') return true;
    if (opened === 'unavailable') return false;
    const { backend, result } = opened;
    if (!result.ok) {
      client.dropBackend();
      o.log.info({ protocol: 'imap', login: a.login, client: c.entry.client }, 'login refused by backend');
      await fail(a.tag, result.lines);
      return false;
    }
    client.stopDeadline();
    const clientLeftover = reader.detach();
    for (const l of result.lines) write(l);
    const sp = splice(client.socket, backend, {
      clientLeftover,
      backendLeftover: result.leftover,
      idleTimeoutMs: o.idleTimeoutMs,
      idleMessage: '* BYE Disconnected for inactivity.',
      boundary: new ImapResponseBoundary(),
    });
    c.entry.login = a.login;
    c.entry.moved = () => sp.closeWith(IMAP_MOVED_BYE);
    o.log.info({ protocol: 'imap', login: a.login, client: c.entry.client, route }, 'logged in');
    await sp.closed;
    return true;
  };

  write(`* OK [CAPABILITY ${imapCapabilities(state())}] mailmesh ready.`);
  try {
    while (!client.finished) {
      let cmd;
      try {
        cmd = await readImapCommand(reader, o, () => write('+ Ready for literal data.'));
      } catch (err) {
        if (err instanceof ProxyError && err.code === 'ERR_LINE_TOO_LONG') hangUp('* BYE Line too long.');
        return;
      }
      if (client.finished) return;
      if (cmd.kind === 'bad') {
        write(`${cmd.tag} BAD ${cmd.text}`);
        if (cmd.fatal) hangUp('* BYE Cannot resynchronize after a refused literal.');
        continue;
      }
      const { tag, name, args } = cmd;
      switch (name) {
        case 'CAPABILITY':
          write(`* CAPABILITY ${imapCapabilities(state())}`);
          write(`${tag} OK Pre-login capabilities listed, post-login capabilities have more.`);
          break;
        case 'NOOP':
          write(`${tag} OK NOOP completed.`);
          break;
        case 'ID':
          // RFC 2971 §3.1: the server answers with its own ID; the client's is not forwarded.
          write('* ID ("name" "mailmesh")');
          write(`${tag} OK ID completed.`);
          break;
        case 'LOGOUT':
          write('* BYE Logging out.');
          hangUp(`${tag} OK Logout completed.`);
          return;
        case 'STARTTLS': {
          if (!o.tls || o.implicitTls || secure) {
            write(`${tag} BAD ${secure ? 'TLS is already active.' : 'STARTTLS is not available.'}`);
            break;
          }
          write(`${tag} OK Begin TLS negotiation now.`);
          // RFC 9051 §6.2.1: anything the client pipelined after STARTTLS in plaintext is dropped.
          reader.detach();
          const upgraded: tls.TLSSocket = await upgradeToTls(client.socket, o.tls.secureContext(), o.preauthTimeoutMs);
          client.socket = upgraded;
          secure = true;
          c.entry.kill = () => upgraded.destroy();
          reader = new LineReader(client.socket, o.maxLineLength + o.maxLiteral + 4096, 'ERR_CLIENT_CLOSED');
          break;
        }
        case 'LOGIN': {
          const user = astring(args[0]);
          const pass = astring(args[1]);
          if (user === undefined || pass === undefined || args.length !== 2) {
            write(`${tag} BAD Invalid arguments: LOGIN user password.`);
            break;
          }
          if (!loginAllowed(state())) {
            // RFC 5530 §3 PRIVACYREQUIRED; RFC 9051 §6.2.3 LOGINDISABLED was advertised.
            write(`${tag} NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections.`);
            break;
          }
          if (await attempt({ tag, login: user, command: `${tag} LOGIN ${encodeAstring(user)} ${encodeAstring(pass)}` })) return;
          break;
        }
        case 'AUTHENTICATE': {
          const mech = astring(args[0])?.toUpperCase();
          if (mech !== 'PLAIN') {
            write(`${tag} NO Unsupported authentication mechanism.`);
            break;
          }
          if (!loginAllowed(state())) {
            write(`${tag} NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections.`);
            break;
          }
          let response = astring(args[1]);
          if (response === undefined) {
            // RFC 9051 §6.2.2: empty continuation, then the client's base64 line.
            write('+ ');
            response = await reader.readLine(o.maxLineLength);
            if (response === '*') {
              write(`${tag} BAD Authentication aborted by client.`);
              break;
            }
          }
          // RFC 4959 §3: "=" is an empty initial response, which PLAIN cannot use.
          const creds = response === '=' ? undefined : decodeSaslPlain(response);
          if (!creds) {
            write(`${tag} BAD Invalid SASL PLAIN response.`);
            break;
          }
          if (await attempt({ tag, login: creds.login, command: `${tag} AUTHENTICATE PLAIN ${encodeSaslPlain(creds)}` })) return;
          break;
        }
        default:
          write(`${tag} BAD Command not permitted before login.`);
      }
    }
  } finally {
    client.stopDeadline();
  }
}
