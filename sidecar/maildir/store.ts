import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { MaildirError } from './errors.ts';
import { maildirPath } from './paths.ts';

/** The outcome of {@link deliverOnce}. */
export type StoreOutcome = 'delivered' | 'duplicate';

let seq = 0;
/** The host part of a Maildir name: `/` and `:` are not allowed there (Maildir spec). */
const HOST = hostname().replace(/\//g, '\\057').replace(/:/g, '\\072');

/** Header fields the front door prepends per attempt (RFC 8601 Authentication-Results and our
 * quarantine mark): they may differ between a sender's retries (a DNS answer changed), so the
 * idempotency key ignores them when they lead the message. */
const PREPENDED = /^(?:authentication-results|x-mailmesh-quarantine):/i;

/** Offset of the first byte after the leading prepended header fields (folded lines included). */
function afterPrepended(message: Uint8Array): number {
  let pos = 0;
  const buf = Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  while (pos < buf.length) {
    const head = buf.toString('latin1', pos, Math.min(buf.length, pos + 40));
    if (!PREPENDED.test(head)) return pos;
    // Skip this field: up to a CRLF not followed by a folding space or tab (RFC 5322 §2.2.3).
    let end = buf.indexOf('\n', pos);
    while (end >= 0 && end + 1 < buf.length && (buf[end + 1] === 0x20 || buf[end + 1] === 0x09)) end = buf.indexOf('\n', end + 1);
    if (end < 0) return pos;
    pos = end + 1;
  }
  return pos;
}

/**
 * The idempotency key of one (message, recipient) pair: SHA-256 over the message bytes as
 * received — minus the leading header fields our front door adds per attempt — and the
 * lower-cased recipient. A sender's retry of the same message gives the same key.
 */
export function deliveryKey(message: Uint8Array, recipient: string): string {
  return createHash('sha256').update(message.subarray(afterPrepended(message))).update('\0').update(recipient.toLowerCase()).digest('hex');
}

/** Per-key chains so two concurrent deliveries of the same copy cannot both write. */
const inFlight = new Map<string, Promise<unknown>>();

/**
 * Store one copy of `message` in `recipient`'s Maildir unless this exact copy was stored before.
 * Maildir protocol: write to `tmp/`, fsync; record the key in `root/.delivered/<key>` as
 * `pending` with the file's name, fsync; rename into `new/`, fsync the directory; then mark the
 * record `done` (atomic replace). A crash anywhere leaves either no record, or a `pending` record
 * whose file is (rename happened) or is not (rename did not) in the Maildir — a retry checks
 * which, so it neither loses the message nor stores it twice.
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
  const dir = maildirPath(root, recipient);
  const previous = await readMarker(marker);
  if (previous?.state === 'done') return 'duplicate';
  try {
    if (previous?.state === 'pending' && (await storedAs(dir, previous.file))) {
      // The last attempt renamed the copy into place but died before saying so.
      await writeMarker(marker, 'done', recipient, previous.file);
      return 'duplicate';
    }
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
    await writeMarker(marker, 'pending', recipient, name);
    await rename(tmp, join(dir, 'new', name));
    await syncDir(join(dir, 'new'));
    await writeMarker(marker, 'done', recipient, name);
    return 'delivered';
  } catch (err) {
    if (err instanceof MaildirError) throw err;
    throw new MaildirError('ERR_MAILDIR_WRITE', `could not store a copy for ${recipient}: ${(err as Error).message}`, { cause: err });
  }
}

/** A delivery record: `done` or `pending`, and the Maildir file name it is about. Records
 * written before the two-phase protocol (no state line) count as `done`. */
async function readMarker(path: string): Promise<{ state: 'done' | 'pending'; file: string } | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  if (lines[0] === 'pending' || lines[0] === 'done') return { state: lines[0], file: basename(lines[2] ?? '') };
  return { state: 'done', file: basename(lines[1] ?? '') };
}

/** Replace a delivery record atomically (temp file, fsync, rename, fsync the directory). */
async function writeMarker(path: string, state: 'done' | 'pending', recipient: string, file: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${++seq}.tmp`;
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await fh.writeFile(`${state}\n${recipient}\n${join('new', file)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await syncDir(dirname(path));
}

/** Is the file in the Maildir: in `new/`, or moved to `cur/` by a reader (`NAME:2,FLAGS`)? */
async function storedAs(dir: string, file: string): Promise<boolean> {
  if (!file) return false;
  if (await exists(join(dir, 'new', file))) return true;
  const cur = await readdir(join(dir, 'cur')).catch(() => [] as string[]);
  return cur.some((f) => f === file || f.startsWith(`${file}:`));
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
