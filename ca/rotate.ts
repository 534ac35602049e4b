import { readFile } from 'node:fs/promises';
import { PRIVATE_MODE, PUBLIC_MODE, writeFilesAtomic } from '../common/files.ts';
import { CaError } from './errors.ts';
import { Issuer } from './issuer.ts';
import { privateKeyFromPem, privateKeyToPem } from './keys.ts';
import { caPaths } from './layout.ts';
import { loadCa, type LoadedCa } from './load.ts';
import { createIssuingCa } from './mint.ts';
import { parseCertificates } from './pem.ts';
import { proveIssuer } from './prove.ts';

/**
 * Replace the issuing CA of a CA directory with a new one signed by the root. This is the one
 * operation besides `initCa` that needs root.key. The new issuer proves itself before its files
 * replace the old ones; leaves from the old issuer keep verifying (same root) until they expire.
 */
export async function rotateIssuer(opts: { dir: string; ttlMs?: number; now?: Date | number }): Promise<LoadedCa> {
  const current = await loadCa(opts.dir, { now: opts.now });
  const paths = caPaths(opts.dir);
  let rootPem: string, rootKeyPem: string;
  try {
    [rootPem, rootKeyPem] = await Promise.all([readFile(paths.rootCert, 'utf8'), readFile(paths.rootKey, 'utf8')]);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CaError(code === 'ENOENT' ? 'ERR_CA_NOT_FOUND' : 'ERR_CA_UNREADABLE', `rotating the issuing CA needs root.pem and root.key in ${opts.dir} (${code ?? (err as Error).message}): bring the offline root key back for the rotation`, { cause: err });
  }
  const [root] = parseCertificates(rootPem, 'root.pem');
  const rootKey = privateKeyFromPem(rootKeyPem, 'root key');
  const inter = createIssuingCa({ root, rootKey, trustDomain: current.trustDomain, algorithm: current.algorithm, ttlMs: opts.ttlMs, now: opts.now });
  const issuer = new Issuer(inter.cert, inter.privateKey, current.trustDomain);
  proveIssuer(issuer, current.bundle, opts.now);
  await writeFilesAtomic([
    { path: paths.issuerKey, data: privateKeyToPem(inter.privateKey), mode: PRIVATE_MODE },
    { path: paths.issuerCert, data: inter.certPem, mode: PUBLIC_MODE },
  ]);
  return { ...current, issuer };
}
