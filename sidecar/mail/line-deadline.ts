import type net from 'node:net';

/**
 * Give every line a client sends (command or DATA line) at most `ms` to arrive complete, like
 * Postfix's `smtpd_per_record_deadline`. smtp-server's `socketTimeout` is an idle timeout only:
 * a client dripping one byte every few milliseconds (slowloris) would otherwise hold one of the
 * `maxClients` slots forever. On expiry the client hears `421 4.4.2` and is disconnected.
 *
 * Watches the plaintext bytes of each accepted socket; after STARTTLS the TLS layer reads the
 * socket itself (no more 'data' events here), so a TLS session is left to the idle timeout;
 * `stopAt` recognises the STARTTLS command so a pipelined handshake is not taken for a line.
 */
export function enforceLineDeadline(server: net.Server, ms: number, stopAt = /(?:^|\n)STARTTLS\r?\n/i): void {
  server.prependListener('connection', (socket: net.Socket) => {
    let timer: NodeJS.Timeout | undefined;
    const expire = () => {
      socket.off('data', onData);
      if (!socket.destroyed) socket.end('421 4.4.2 Line not completed in time, closing connection\r\n');
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    const onData = (chunk: Buffer) => {
      if (stopAt.test(chunk.toString('latin1'))) {
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
