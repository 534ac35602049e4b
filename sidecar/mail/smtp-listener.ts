import type { SMTPServer } from 'smtp-server';
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

/** Bind an smtp-server; resolves with the bound port (for port 0) and a close function. */
export async function listen(server: SMTPServer, host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
