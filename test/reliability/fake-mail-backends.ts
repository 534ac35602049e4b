// Minimal IMAP and POP3 backends for the proxy fuzzers. They record every command they parse,
// per connection, and split lines the LENIENT way (CR, LF or CRLF all end a line, outside IMAP
// literals), so a CR smuggled into a login by the proxy would show up here as a separate command.
import net from 'node:net';

/** The one account that logs in. */
export const GOOD_USER = 'alice@mail.test';
export const GOOD_PASS = 'secret';

/** A running fake backend. */
export interface FakeBackend {
  port: number;
  /** Commands received, one array per connection, in order. */
  connections: string[][];
  close(): Promise<void>;
}

function plainOk(b64: string): boolean {
  const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
  return parts.length === 3 && (parts[0] || parts[1]) === GOOD_USER && parts[2] === GOOD_PASS;
}

async function listen(onConnection: (s: net.Socket, commands: string[]) => void): Promise<FakeBackend> {
  const sockets = new Set<net.Socket>();
  const connections: string[][] = [];
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    const commands: string[] = [];
    connections.push(commands);
    onConnection(s, commands);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Index of the first line end (CR or LF) at or after `from`, and its length (1 or 2). */
function lineEnd(buf: Buffer, from: number): { at: number; len: number } | undefined {
  for (let i = from; i < buf.length; i++) {
    if (buf[i] === 10) return { at: i, len: 1 };
    if (buf[i] === 13) return { at: i, len: buf[i + 1] === 10 ? 2 : 1 };
  }
  return undefined;
}

/**
 * IMAP: `* OK` greeting with LITERAL+, literals `{n}` / `{n+}` read by count, `ID`, `LOGIN`,
 * `AUTHENTICATE PLAIN <ir>`, and after login `tag OK` to anything (LOGOUT closes).
 */
export function startFakeImap(): Promise<FakeBackend> {
  return listen((s, commands) => {
    s.write('* OK [CAPABILITY IMAP4rev1 LITERAL+ ID SASL-IR AUTH=PLAIN] fake ready\r\n');
    let buf = Buffer.alloc(0);
    let loggedIn = false;
    let line = '';
    let args: string[] = [];
    let literal = 0;
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (literal > 0) {
          if (buf.length < literal) return;
          args.push(buf.subarray(0, literal).toString('utf8'));
          line += '\u0000LIT\u0000';
          buf = buf.subarray(literal);
          literal = 0;
        }
        const e = lineEnd(buf, 0);
        if (!e) return;
        const seg = buf.subarray(0, e.at).toString('utf8');
        buf = buf.subarray(e.at + e.len);
        const m = /\{(\d+)(\+?)\}$/.exec(seg);
        line += seg;
        if (m) {
          literal = Number(m[1]);
          if (!m[2]) s.write('+ go\r\n');
          if (literal > 0) continue;
        }
        const full = line;
        const litArgs = args;
        line = '';
        args = [];
        commands.push(full);
        const [tag, name = ''] = full.split(' ');
        const cmd = name.toUpperCase();
        if (loggedIn) {
          if (cmd === 'LOGOUT') {
            s.end(`* BYE bye\r\n${tag} OK LOGOUT done\r\n`);
            return;
          }
          s.write(`${tag} OK ${cmd} done\r\n`);
        } else if (cmd === 'ID') {
          s.write(`* ID NIL\r\n${tag} OK ID done\r\n`);
        } else if (cmd === 'LOGIN') {
          const q = /^\S+ LOGIN "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$/i.exec(full);
          const user = q ? q[1].replace(/\\(.)/g, '$1') : litArgs[0];
          const pass = q ? q[2].replace(/\\(.)/g, '$1') : (litArgs[1] ?? /"((?:[^"\\]|\\.)*)"$/.exec(full)?.[1]);
          loggedIn = user === GOOD_USER && pass === GOOD_PASS;
          s.write(loggedIn ? `${tag} OK [CAPABILITY IMAP4rev1] Logged in\r\n` : `${tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n`);
        } else if (cmd === 'AUTHENTICATE') {
          loggedIn = plainOk(full.split(' ')[3] ?? '');
          s.write(loggedIn ? `${tag} OK [CAPABILITY IMAP4rev1] Logged in\r\n` : `${tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n`);
        } else {
          s.write(`${tag} BAD not before login\r\n`);
        }
      }
    });
  });
}

/** POP3: `+OK` greeting, USER/PASS, AUTH PLAIN <ir>; after login `+OK` to anything (QUIT closes). */
export function startFakePop3(): Promise<FakeBackend> {
  return listen((s, commands) => {
    s.write('+OK fake ready\r\n');
    let buf = Buffer.alloc(0);
    let user: string | undefined;
    let loggedIn = false;
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (let e = lineEnd(buf, 0); e; e = lineEnd(buf, 0)) {
        const line = buf.subarray(0, e.at).toString('utf8');
        buf = buf.subarray(e.at + e.len);
        if (line === '' && e.len === 1 && commands.length > 0) continue; // the LF of a CR-LF split across chunks
        commands.push(line);
        const sp = line.indexOf(' ');
        const cmd = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
        const arg = sp < 0 ? '' : line.slice(sp + 1);
        if (cmd === 'QUIT') {
          s.end('+OK bye\r\n');
          return;
        }
        // RFC 1939 / 2449: these answer with a multi-line response ending in "." after login.
        if (loggedIn) s.write(/^(CAPA|UIDL|LIST|TOP|RETR)$/.test(cmd) ? '+OK list follows\r\n.\r\n' : '+OK done\r\n');
        else if (cmd === 'USER') {
          user = arg;
          s.write('+OK\r\n');
        } else if (cmd === 'PASS') {
          loggedIn = user === GOOD_USER && arg === GOOD_PASS;
          s.write(loggedIn ? '+OK Logged in.\r\n' : '-ERR [AUTH] Authentication failed.\r\n');
        } else if (cmd === 'AUTH') {
          loggedIn = plainOk(arg.split(' ')[1] ?? '');
          s.write(loggedIn ? '+OK Logged in.\r\n' : '-ERR [AUTH] Authentication failed.\r\n');
        } else s.write('-ERR not before login\r\n');
      }
    });
  });
}
