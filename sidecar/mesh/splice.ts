import type { Duplex } from 'node:stream';

/**
 * Join two byte streams in both directions, the way a TCP proxy does: `pipe` gives back-pressure
 * (a slow backend pauses the TLS reader and vice versa); the end of one direction half-closes the
 * other side's write half (LMTP `QUIT` then server close, IMAP `LOGOUT`), and the other direction
 * keeps flowing until it ends too. An error or abortive close on either side destroys both, so
 * neither leaks. Both streams must be created with `allowHalfOpen: true`.
 *
 * @example splice(tlsSocket, net.connect(backendPort, '127.0.0.1'));
 */
export function splice(a: Duplex, b: Duplex, onDone?: () => void): void {
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    onDone?.();
  };
  const abort = () => {
    a.destroy();
    b.destroy();
    finish();
  };
  a.pipe(b);
  b.pipe(a);
  a.on('error', abort);
  b.on('error', abort);
  // A clean close of one side (both its directions ended): the other side has been told `end`;
  // once that has flushed nothing more can flow, so release it. An abortive close (reset,
  // destroy without end): take the other side down at once.
  const onClose = (other: Duplex) => () => {
    if (other.destroyed) return finish();
    if (other.writableFinished) {
      other.destroy();
      return finish();
    }
    if (other.writableEnded) {
      other.once('finish', () => {
        other.destroy();
        finish();
      });
      return;
    }
    abort();
  };
  a.on('close', onClose(b));
  b.on('close', onClose(a));
}
