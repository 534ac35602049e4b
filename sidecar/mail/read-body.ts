import type { Readable } from 'node:stream';

/**
 * Read a DATA stream into memory, keeping at most `limit` bytes: past the limit the rest is
 * drained and dropped, so memory per session is bounded by the SIZE limit whatever the client
 * sends. Returns `undefined` when the message was over the limit (the caller answers 552).
 */
export async function readBounded(stream: Readable, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  let over = false;
  for await (const chunk of stream) {
    const b = chunk as Buffer;
    total += b.length;
    if (total > limit) {
      over = true;
      chunks.length = 0;
      continue;
    }
    chunks.push(b);
  }
  return over ? undefined : Buffer.concat(chunks, total);
}
