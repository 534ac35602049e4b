import type net from 'node:net';

const LF = 0x0a;
const CR = 0x0d;
const STARTTLS = Buffer.from('STARTTLS', 'latin1');

/** Whether `chunk` holds a complete `STARTTLS` command line (any case, CRLF or LF). Hops from line
 * end to line end with native `indexOf`: a DATA chunk costs no string copy and no regex scan. */
export function hasStartTls(chunk: Buffer): boolean {
  for (let nl = chunk.indexOf(LF); nl !== -1; nl = chunk.indexOf(LF, nl + 1)) {
    const end = nl > 0 && chunk[nl - 1] === CR ? nl - 1 : nl;
    const start = end - STARTTLS.length;
    if (start < 0 || (start > 0 && chunk[start - 1] !== LF)) continue;
    let k = 0;
    // ASCII letters only: clearing bit 0x20 upper-cases them.
    while (k < STARTTLS.length && (chunk[start + k] & 0xdf) === STARTTLS[k]) k++;
    if (k === STARTTLS.length) return true;
  }
  return false;
}

/**
 * Give every line a client sends (command or DATA line) at most `ms` to arrive complete, like
 * Postfix's `smtpd_per_record_deadline`. smtp-server's `socketTimeout` is an idle timeout only:
 * a client dripping one byte every few milliseconds (slowloris) would otherwise hold one of the
 * `maxClients` slots forever. On expiry the client hears `421 4.4.2` and is disconnected.
 *
 * Watches the plaintext bytes of each accepted socket; after STARTTLS the TLS layer reads the
 * socket itself (no more `data` events here), so a TLS session is left to the idle timeout.
 * A STARTTLS command line is recognised so a pipelined handshake is not taken for a line.
 */
export function enforceLineDeadline(server: net.Server, ms: number): void {
  server.prependListener('connection', (socket: net.Socket) => {
    let timer: NodeJS.Timeout | undefined;
    const expire = () => {
      socket.off('data', onData);
      if (!socket.destroyed) socket.end('421 4.4.2 Line not completed in time, closing connection\r\n');
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    const onData = (chunk: Buffer) => {
      if (hasStartTls(chunk)) {
        // What follows STARTTLS is a TLS handshake, not a line (a client may pipeline it).
        // Once TLS wraps the socket no more plaintext 'data' events arrive here.
        clearTimeout(timer);
        timer = undefined;
        return;
      }
      const nl = chunk.lastIndexOf(10);
      if (nl === chunk.length - 1) {
        clearTimeout(timer);
        timer = undefined;
      } else if (nl >= 0 || !timer) {
        // A new line started in this chunk (or the first byte of one): its deadline starts now.
        clearTimeout(timer);
        timer = setTimeout(expire, ms);
        timer.unref();
      }
    };
    socket.on('data', onData);
    socket.once('close', () => clearTimeout(timer));
  });
}
