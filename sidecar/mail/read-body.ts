import type { Readable } from 'node:stream';

/**
 * Read a DATA stream into memory, keeping at most `limit` bytes: past the limit the rest is
 * drained and dropped, so memory per session is bounded by the SIZE limit whatever the client
 * sends. Returns `undefined` when the message was over the limit (the caller answers 552).
 * Plain 'data'/'end' events, not an async iterator: this runs once per message on the hot path.
 */
export function readBounded(stream: Readable, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let over = false;
    stream.on('data', (b: Buffer) => {
      total += b.length;
      if (total > limit) {
        over = true;
        chunks.length = 0;
        return;
      }
      chunks.push(b);
    });
    let ended = false;
    stream.once('error', reject);
    stream.once('end', () => {
      ended = true;
      // One chunk (a small message read at once): no copy.
      resolve(over ? undefined : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total));
    });
    // A session cut mid-DATA: no 'end' will come.
    stream.once('close', () => {
      if (!ended) reject(new Error('the message stream closed before its end'));
    });
  });
}
