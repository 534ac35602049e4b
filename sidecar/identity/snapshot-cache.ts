import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/log.ts';
import { PRIVATE_MODE, writeFileAtomic } from '../../common/files.ts';

/** The cached snapshot's file name in the state dir. */
export const SNAPSHOT_FILE = 'snapshot.jws';

// RFC 7515 §7.1: BASE64URL(header) '.' BASE64URL(payload) '.' BASE64URL(signature).
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$/;

/**
 * Keep the last snapshot the control plane pushed (a JWS compact string, still signed) so that a
 * restart while the control plane is down can serve with it. Written atomically: a crash mid-write
 * leaves the previous snapshot.
 */
export async function saveSnapshot(stateDir: string, jws: string): Promise<void> {
  await writeFileAtomic(join(stateDir, SNAPSHOT_FILE), jws.trim() + '\n', PRIVATE_MODE);
}

/**
 * Load the cached snapshot and verify it with the control plane's key (`verify` is injected:
 * the caller knows the key and the payload type). A missing, corrupted or badly signed cache
 * yields undefined with a log line: it is never used unverified.
 *
 * @example const snap = await loadCachedSnapshot(dir, (jws) => verifySnapshot(jws, key));
 */
export async function loadCachedSnapshot<T>(stateDir: string, verify: (jws: string) => Promise<T>, log?: Logger): Promise<T | undefined> {
  const path = join(stateDir, SNAPSHOT_FILE);
  let text: string;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log?.warn({ path, err: (err as Error).message }, 'cached snapshot unreadable; ignored');
    return undefined;
  }
  if (!COMPACT_JWS.test(text)) {
    log?.warn({ path, code: 'ERR_SNAPSHOT_CACHE_INVALID' }, 'cached snapshot is not a JWS compact string; ignored');
    return undefined;
  }
  try {
    return await verify(text);
  } catch (err) {
    log?.warn({ path, code: 'ERR_SNAPSHOT_CACHE_INVALID', reason: (err as { code?: string }).code ?? (err as Error).message }, 'cached snapshot failed verification; ignored');
    return undefined;
  }
}
