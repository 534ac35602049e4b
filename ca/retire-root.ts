import type { X509Certificate } from 'node:crypto';
import { PUBLIC_MODE, writeFilesAtomic } from '../common/files.ts';
import type { TrustBundle } from './bundle.ts';
import { CaError } from './errors.ts';
import { caPaths } from './layout.ts';
import { loadCa } from './load.ts';
import { parseCertificates } from './pem.ts';
import { proveIssuer } from './prove.ts';
import { bumpGeneration, normalizeFingerprint, readMetadata, readOptional, rootOf, rotationPaths } from './rotation.ts';

/** What {@link retireRoot} did. */
export interface RetireRootResult {
  trustDomain: string;
  /** The root removed from bundle.pem. */
  retired: X509Certificate;
  /** bundle.pem now. */
  bundle: TrustBundle;
  generation: number;
}

/**
 * End a root rotation: remove the root with SHA-256 fingerprint `fingerprint` from bundle.pem.
 * Refused with `ERR_ROOT_UNKNOWN` (not in the bundle), `ERR_ROOT_LAST` (the only root: nothing
 * would verify) or `ERR_ROOT_IN_USE` (the current or the staged issuing CA chains to it: its
 * leaves would stop verifying). Leaves still chaining to the retired root are refused by every
 * node once it runs the new snapshot (`ERR_UNKNOWN_AUTHORITY`), so run it only after
 * `mailmesh status` shows every node renewed under the new root. root-previous.pem/.key are left
 * in place for the operator to destroy.
 *
 * @example await retireRoot({ dir: './ca', fingerprint: 'AB:CD:…' });
 */
export async function retireRoot(opts: { dir: string; fingerprint: string; now?: Date | number }): Promise<RetireRootResult> {
  const fingerprint = normalizeFingerprint(opts.fingerprint);
  const current = await loadCa(opts.dir, { now: opts.now });
  const meta = await readMetadata(opts.dir);
  const retired = current.bundle.roots.find((r) => r.fingerprint256 === fingerprint);
  if (!retired) {
    const list = current.bundle.roots.map((r) => r.fingerprint256).join(', ');
    throw new CaError('ERR_ROOT_UNKNOWN', `no root with fingerprint ${fingerprint} in bundle.pem; its roots are: ${list}`);
  }
  if (current.bundle.roots.length === 1) {
    throw new CaError('ERR_ROOT_LAST', `${fingerprint} is the only root in bundle.pem: removing it would make every certificate fail; add a new root first with mailmesh ca rotate --root`);
  }
  if (rootOf(current.issuer.cert, current.bundle)?.fingerprint256 === fingerprint) {
    throw new CaError('ERR_ROOT_IN_USE', `the current issuing CA chains to root ${fingerprint}: switch to the new root's issuing CA first (mailmesh ca rotate --dir ${opts.dir} --issuer), let every node renew, then retire the old root`);
  }
  const nextPem = await readOptional(rotationPaths(opts.dir).issuerNext);
  if (nextPem !== undefined && rootOf(parseCertificates(nextPem, 'issuer-next.pem')[0], current.bundle)?.fingerprint256 === fingerprint) {
    throw new CaError('ERR_ROOT_IN_USE', `the staged issuing CA (issuer-next.pem) chains to root ${fingerprint}: remove issuer-next.pem and issuer-next.key or retire another root`);
  }
  const bundle = current.bundle.without(fingerprint);
  proveIssuer(current.issuer, bundle, opts.now);
  const { meta: nextMeta, text } = bumpGeneration(meta, opts.now);
  const paths = caPaths(opts.dir);
  await writeFilesAtomic([
    { path: paths.bundle, data: bundle.toPem(), mode: PUBLIC_MODE },
    { path: paths.metadata, data: text, mode: PUBLIC_MODE },
  ]);
  return { trustDomain: current.trustDomain, retired, bundle, generation: nextMeta.generation! };
}
