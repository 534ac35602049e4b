import net from 'node:net';
import { lstat, unlink } from 'node:fs/promises';
import type { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { Reply } from './reply.ts';

/** An smtp-server callback error carrying an SMTP reply. smtp-server prints `responseCode
 * message` and, with its defaults, adds no enhanced code of its own, so the RFC 3463 code goes at
 * the start of the message. */
export function replyError(r: Reply): Error & { responseCode: number } {
  return Object.assign(new Error(`${r.enhanced} ${r.message}`), { responseCode: r.code });
}

/** RFC 1870 §6.3: a message over the SIZE limit is refused with 552 5.3.4. */
export const tooBig = (maxSize: number): Reply => ({ code: 552, enhanced: '5.3.4', message: `message exceeds the size limit of ${maxSize} bytes` });

/** The reply for an accepted message: smtp-server sends `250 <text>`. */
export const okText = (r: Reply): string => `${r.enhanced} ${r.message}`;

/** Bind an smtp-server on TCP `host:port`; resolves with the bound port (for port 0) and a close function. */
export async function listen(server: SMTPServer, host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  await bindOnce(server, (cb) => server.listen(port, host, cb));
  return { port: (server.server.address() as { port: number }).port, close: closer(server) };
}

const closer = (server: SMTPServer) => () => new Promise<void>((resolve) => server.close(() => resolve()));

function bindOnce(server: SMTPServer, bind: (cb: () => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    bind(() => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Bind an smtp-server on a Unix-domain socket at `path`, mode 0666 like Dovecot's LMTP socket
 * (who may connect is decided by the directory's permissions; the mode is set at bind, so there is
 * no moment with another one). A socket file left by a process that died (connecting to it is
 * refused) is replaced; one that anything else answers or guards (a live listener, even with a
 * full backlog; another owner's socket) is not: `EADDRINUSE`. Node removes the file on close.
 */
export async function listenUnix(server: SMTPServer, path: string): Promise<{ close(): Promise<void> }> {
  const bind = () => bindOnce(server, (cb) => server.listen({ path, readableAll: true, writableAll: true }, cb));
  try {
    await bind();
  } catch (err) {
    const stale = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' && (await lstat(path).then((st) => st.isSocket(), () => false)) && (await refused(path));
    if (!stale) throw err;
    await unlink(path);
    await bind();
  }
  return { close: closer(server) };
}

/** Whether connecting to the Unix socket at `path` is refused: nothing listens on it any more. */
function refused(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(false);
    });
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/**
 * Greet every client at once, on a listener whose clients are our own (Postfix's LMTP client at
 * the egress and the outbound filter, a mesh peer at the embedded store). smtp-server waits 100 ms
 * before each greeting to catch clients that talk first, a spam heuristic for a public port (the
 * front door keeps it); on an internal listener it only delays deliveries, and Postfix opens a new
 * connection per delivery whenever its connection cache is idle (a remote delivery waited 100 ms
 * more at the egress). smtp-server has no option for the pause, so `connect` runs smtp-server's
 * own `connect`/`init` steps without it: the same connection class, limits and handlers. Written
 * against smtp-server 3.21; test/mail/greeting.test.ts fails if a new version changes these steps.
 */
export function greetAtOnce(server: SMTPServer): void {
  server.connect = (socket, socketOptions) => {
    const connection = new SMTPConnection(server, socket, socketOptions);
    server.connections.add(connection);
    connection.on('error', (err: Error) => server._onError(err));
    connection.on('connect', (data) => server._onClientConnect(data));
    connection._setListeners(() => {
      if (server.options.maxClients && server.connections.size > server.options.maxClients) {
        return connection.send(421, `${connection.name} Too many connected clients, try again in a moment`, false);
      }
      connection.connectionReady();
    });
  };
}
