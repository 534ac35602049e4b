import type { Socket } from 'node:net';

/** Input chunks larger than this are message data, not a group of pipelined commands. */
const COMMAND_GROUP_MAX = 2048;

/**
 * Replies to a group of pipelined commands (RFC 2920: `MAIL`, `RCPT`…, `DATA` in one write) leave
 * in one segment instead of one write each: while the server handles a small chunk of input the
 * socket is corked, and it is uncorked once that work is done (`setImmediate`: after the
 * handlers' synchronous replies and their microtasks). A reply produced later (the end-of-data
 * answer, after the checks and the hand-off) is written the moment it exists.
 * A chunk mentioning STARTTLS is never corked: smtp-server writes `220` and starts the TLS
 * handshake at once, so the `220` must already be on the wire.
 *
 * @example server.server.on('connection', coalesceReplies);
 */
export function coalesceReplies(socket: Socket): void {
  // Each reply is complete when written (and pipelined ones leave together, below): no Nagle
  // wait for the ACK of the previous one.
  socket.setNoDelay(true);
  let corked = false;
  const flush = () => {
    corked = false;
    if (!socket.destroyed) socket.uncork();
  };
  socket.prependListener('data', (chunk: Buffer | string) => {
    if (corked || socket.destroyed || chunk.length > COMMAND_GROUP_MAX) return;
    if (/starttls/i.test(typeof chunk === 'string' ? chunk : chunk.toString('latin1'))) return;
    corked = true;
    socket.cork();
    setImmediate(flush);
  });
}
