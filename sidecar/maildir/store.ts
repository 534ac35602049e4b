import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { MaildirError } from './errors.ts';
import { maildirPath } from './paths.ts';

/** The outcome of {@link deliverOnce}. */
export type StoreOutcome = 'delivered' | 'duplicate';

let seq = 0;
/** The host part of a Maildir name: `/` and `:` are not allowed there (Maildir spec). */
const HOST = hostname().replace(/\//g, '\\057').replace(/:/g, '\\072');

/**
 * The idempotency key of one (message, recipient) pair: SHA-256 over the message bytes as
 * received and the lower-cased recipient. A sender's retry of the same message gives the same key.
 */
export function deliveryKey(message: Uint8Array, recipient: string): string {
  return createHash('sha256').update(message).update('\0').update(recipient.toLowerCase()).digest('hex');
}

/** Per-key chains so two concurrent deliveries of the same copy cannot both write. */
const inFlight = new Map<string, Promise<unknown>>();

/**
 * Store one copy of `message` in `recipient`'s Maildir unless this exact copy was stored before.
 * Maildir protocol: write to `tmp/`, fsync, rename into `new/`, fsync the directory; then record
 * the key in `root/.delivered/<key>` (created with O_EXCL, so it survives a restart). A crash
 * between the rename and the record can at worst give a duplicate on retry, never a loss.
 * Throws {@link MaildirError} `ERR_MAILDIR_WRITE` when the copy could not be stored.
 */
export async function deliverOnce(root: string, recipient: string, message: Uint8Array): Promise<StoreOutcome> {
  const key = deliveryKey(message, recipient);
  const previous = inFlight.get(key) ?? Promise.resolve();
  const run = previous.catch(() => {}).then(() => store(root, recipient, message, key));
  inFlight.set(key, run);
  try {
    return await run;
  } finally {
    if (inFlight.get(key) === run) inFlight.delete(key);
  }
}

async function store(root: string, recipient: string, message: Uint8Array, key: string): Promise<StoreOutcome> {
  const marker = join(root, '.delivered', key);
  if (await exists(marker)) return 'duplicate';
  const dir = maildirPath(root, recipient);
  try {
    await Promise.all(['tmp', 'new', 'cur'].map((d) => mkdir(join(dir, d), { recursive: true, mode: 0o700 })));
    await mkdir(join(root, '.delivered'), { recursive: true, mode: 0o700 });
    const now = Date.now();
    const usec = (now % 1000) * 1000 + (seq % 1000);
    // Unique name (Maildir spec): time.MusecPpid_seq.host, plus Dovecot's ,S=size.
    const name = `${Math.floor(now / 1000)}.M${usec}P${process.pid}_${++seq}.${HOST},S=${message.length}`;
    const tmp = join(dir, 'tmp', name);
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await fh.writeFile(message);
      await fh.sync();
    } catch (err) {
      await fh.close();
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await fh.close();
    await rename(tmp, join(dir, 'new', name));
    await syncDir(join(dir, 'new'));
    const mh = await open(marker, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await mh.writeFile(`${recipient}\n${join('new', name)}\n`);
      await mh.sync();
    } finally {
      await mh.close();
    }
    await syncDir(join(root, '.delivered'));
    return 'delivered';
  } catch (err) {
    if (err instanceof MaildirError) throw err;
    throw new MaildirError('ERR_MAILDIR_WRITE', `could not store a copy for ${recipient}: ${(err as Error).message}`, { cause: err });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** fsync a directory so a rename in it survives a power loss. */
async function syncDir(path: string): Promise<void> {
  const dh = await open(path, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
