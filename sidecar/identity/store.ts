import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PRIVATE_MODE, PUBLIC_MODE, writeFilesAtomic } from '../../common/files.ts';
import { IdentityError } from './errors.ts';
import { buildIdentity, type Identity } from './identity.ts';

/** File names in the state dir (the sidecar's own copy, which survives restarts). */
export const STATE_FILES = { key: 'node.key', chain: 'node.crt', bundle: 'bundle.pem' } as const;

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new IdentityError('ERR_IDENTITY_STATE_UNREADABLE', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Load the identity kept in `stateDir` by a previous run, or undefined when there is none (first
 * start). A key/certificate pair that does not match is an error, not "none": silently joining
 * again would hide a broken disk or an operator's mistake.
 */
export async function loadIdentity(stateDir: string): Promise<Identity | undefined> {
  const keyPem = await readIfExists(join(stateDir, STATE_FILES.key));
  const chainPem = await readIfExists(join(stateDir, STATE_FILES.chain));
  if (keyPem === undefined || chainPem === undefined) return undefined;
  const bundlePem = (await readIfExists(join(stateDir, STATE_FILES.bundle))) ?? '';
  return buildIdentity({ keyPem, chainPem, bundlePem });
}

/**
 * Write key (0600), chain and bundle into `dir` together, atomically per file; used for the state
 * dir and for the PEM files Postfix/Dovecot read. The key is written first so a reader never sees
 * a certificate whose key is not there yet.
 */
export async function writeIdentityFiles(dir: string, identity: Identity, names: { key: string; chain: string; bundle: string } = STATE_FILES): Promise<void> {
  await writeFilesAtomic([
    { path: join(dir, names.key), data: identity.keyPem, mode: PRIVATE_MODE },
    { path: join(dir, names.chain), data: identity.chainPem, mode: PUBLIC_MODE },
    { path: join(dir, names.bundle), data: identity.bundlePem, mode: PUBLIC_MODE },
  ]);
}
