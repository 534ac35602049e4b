import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';

/** File mode for private keys and secrets. */
export const PRIVATE_MODE = 0o600;
/** File mode for certificates and other public material. */
export const PUBLIC_MODE = 0o644;

/**
 * Write a file atomically: the data goes to a temporary file in the same directory, is fsynced,
 * then renamed over the target, so a reader (Postfix, Dovecot, a restarting sidecar) sees the old
 * content or the new one, never a torn file. The mode is set when the temp file is created, so a
 * key is never readable by others, not even for an instant.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = PUBLIC_MODE): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** Write several files so that either all of them land or none does (best effort: temp files are
 * written and synced first, then renamed one after another). Used where a partial set would
 * confuse an operator, e.g. `ca init` or a key + certificate pair. */
export async function writeFilesAtomic(files: { path: string; data: string | Uint8Array; mode?: number }[]): Promise<void> {
  const staged: { tmp: string; path: string }[] = [];
  try {
    for (const f of files) {
      await mkdir(dirname(f.path), { recursive: true });
      const tmp = join(dirname(f.path), `.${basename(f.path)}.${randomBytes(6).toString('hex')}.tmp`);
      const fh = await open(tmp, 'wx', f.mode ?? PUBLIC_MODE);
      try {
        await fh.writeFile(f.data);
        await fh.chmod(f.mode ?? PUBLIC_MODE);
        await fh.sync();
      } finally {
        await fh.close();
      }
      staged.push({ tmp, path: f.path });
    }
  } catch (err) {
    await Promise.all(staged.map((s) => unlink(s.tmp).catch(() => {})));
    throw err;
  }
  for (const s of staged) await rename(s.tmp, s.path);
}
