import type { Duplex } from 'node:stream';
import tls from 'node:tls';

/**
 * Start the server side of TLS on an accepted connection (implicit TLS, or after
 * STARTTLS/STLS). The context is fetched per handshake, so a rotated certificate is used by the
 * next connection without restarting the listener. Resolves once the handshake completed.
 */
export function upgradeToTls(socket: Duplex, secureContext: tls.SecureContext, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext });
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new Error('TLS handshake timed out'));
    }, timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      secure.destroy();
      reject(err);
    };
    secure.once('error', fail);
    secure.once('close', () => fail(new Error('connection closed during TLS handshake')));
    secure.once('secure', () => {
      clearTimeout(timer);
      secure.off('error', fail);
      secure.removeAllListeners('close');
      resolve(secure);
    });
  });
}
