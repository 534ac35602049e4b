import type { X509Certificate } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import { PRIVATE_MODE, PUBLIC_MODE, writeFilesAtomic } from '../common/files.ts';
import { CaError } from './errors.ts';
import { Issuer } from './issuer.ts';
import { privateKeyFromPem, privateKeyToPem } from './keys.ts';
import { caPaths } from './layout.ts';
import { loadCa, type LoadedCa } from './load.ts';
import { createIssuingCa } from './mint.ts';
import { parseCertificates } from './pem.ts';
import { proveIssuer } from './prove.ts';
import { bumpGeneration, readMetadata, readOptional, rotationPaths } from './rotation.ts';

/** What {@link rotateIssuer} did. */
export interface RotateIssuerResult extends LoadedCa {
  /** The issuing CA that was current before (now `issuer-previous.pem`). */
  previous: X509Certificate;
  /** True when a staged `issuer-next.pem` (from `ca rotate --root`) became current; false when a
   * new issuing CA was made under `root.pem`. */
  promoted: boolean;
  /** The CA generation after this rotation (ca.json). */
  generation: number;
}

/**
 * Replace the issuing CA of a CA directory. If `ca rotate --root` staged an issuing CA under the
 * new root (`issuer-next.pem`), that one becomes current (it needs no root key); otherwise a new
 * one is made under `root.pem`, which needs `root.key` (bring the offline root back for this).
 * The new issuer proves itself against bundle.pem before any file changes; then issuer.pem and
 * issuer.key are replaced atomically (key 0600), the old certificate is kept as
 * `issuer-previous.pem` (its leaves stay valid until they expire and peers still complete their
 * chains with it), and the generation in ca.json goes up by one.
 *
 * @example const r = await rotateIssuer({ dir: './ca' }); // then SIGHUP the control plane
 */
export async function rotateIssuer(opts: { dir: string; ttlMs?: number; now?: Date | number }): Promise<RotateIssuerResult> {
  const current = await loadCa(opts.dir, { now: opts.now });
  const meta = await readMetadata(opts.dir);
  const paths = caPaths(opts.dir);
  const rot = rotationPaths(opts.dir);
  const [nextPem, nextKeyPem] = await Promise.all([readOptional(rot.issuerNext), readOptional(rot.issuerNextKey)]);
  let issuer: Issuer;
  let promoted: boolean;
  if (nextPem !== undefined || nextKeyPem !== undefined) {
    if (nextPem === undefined || nextKeyPem === undefined) {
      throw new CaError('ERR_CA_UNREADABLE', `only one of issuer-next.pem and issuer-next.key is in ${opts.dir}: restore the pair, or remove both and run mailmesh ca rotate --root again`);
    }
    issuer = Issuer.fromPem(nextPem, nextKeyPem, current.trustDomain);
    promoted = true;
  } else {
    let rootPem: string, rootKeyPem: string;
    try {
      [rootPem, rootKeyPem] = await Promise.all([readFile(paths.rootCert, 'utf8'), readFile(paths.rootKey, 'utf8')]);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new CaError(code === 'ENOENT' ? 'ERR_CA_NOT_FOUND' : 'ERR_CA_UNREADABLE', `rotating the issuing CA needs root.pem and root.key in ${opts.dir} (${code ?? (err as Error).message}): bring the offline root key back for the rotation`, { cause: err });
    }
    const [root] = parseCertificates(rootPem, 'root.pem');
    if (!current.bundle.roots.some((r) => r.fingerprint256 === root.fingerprint256)) {
      throw new CaError('ERR_ROOT_UNKNOWN', `root.pem (${root.fingerprint256}) is not in bundle.pem: nodes would refuse the new issuing CA; add the root to the bundle first`);
    }
    const rootKey = privateKeyFromPem(rootKeyPem, 'root key');
    const inter = createIssuingCa({ root, rootKey, trustDomain: current.trustDomain, algorithm: current.algorithm, ttlMs: opts.ttlMs, now: opts.now });
    issuer = new Issuer(inter.cert, inter.privateKey, current.trustDomain);
    promoted = false;
  }
  if (issuer.cert.fingerprint256 === current.issuer.cert.fingerprint256) {
    throw new CaError('ERR_ROTATION_PENDING', `issuer-next.pem in ${opts.dir} is already the current issuing CA (an interrupted rotation): remove issuer-next.pem and issuer-next.key`);
  }
  // A new issuing CA proves itself before use (STYLE.md): a throwaway leaf verifies against the bundle.
  proveIssuer(issuer, current.bundle, opts.now);
  const { meta: nextMeta, text } = bumpGeneration(meta, opts.now);
  await writeFilesAtomic([
    { path: paths.issuerKey, data: privateKeyToPem(issuer.key), mode: PRIVATE_MODE },
    { path: paths.issuerCert, data: issuer.certPem, mode: PUBLIC_MODE },
    { path: rot.issuerPrevious, data: current.issuer.certPem, mode: PUBLIC_MODE },
    { path: paths.metadata, data: text, mode: PUBLIC_MODE },
  ]);
  if (promoted) await Promise.all([unlink(rot.issuerNext), unlink(rot.issuerNextKey)]);
  return { ...current, issuer, previous: current.issuer.cert, promoted, generation: nextMeta.generation! };
}
