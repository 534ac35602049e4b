import type { X509Certificate } from 'node:crypto';
import { PRIVATE_MODE, PUBLIC_MODE, writeFilesAtomic } from '../common/files.ts';
import { CaError } from './errors.ts';
import { Issuer } from './issuer.ts';
import { privateKeyToPem, type KeyAlgorithm } from './keys.ts';
import { caPaths } from './layout.ts';
import { loadCa } from './load.ts';
import { createIssuingCa, createRootCa } from './mint.ts';
import { parseCertificates } from './pem.ts';
import { proveIssuer } from './prove.ts';
import { bumpGeneration, readMetadata, readOptional, rotationPaths } from './rotation.ts';
import type { TrustBundle } from './bundle.ts';

/** What {@link rotateRoot} did. */
export interface RotateRootResult {
  trustDomain: string;
  /** The root that was `root.pem` before (now `root-previous.pem`, still in the bundle). */
  previousRoot: X509Certificate;
  /** The new root (`root.pem`). */
  root: X509Certificate;
  /** The staged issuing CA under the new root (`issuer-next.pem`); not used until `ca rotate --issuer`. */
  nextIssuer: X509Certificate;
  /** bundle.pem now: every old root plus the new one. */
  bundle: TrustBundle;
  generation: number;
}

/**
 * Start a root rotation (step 1 of the overlap): make a new root and an issuing CA under it, and
 * add the new root to bundle.pem next to the old one(s). The issuing CA in use does not change:
 * the new one is staged as `issuer-next.pem` / `issuer-next.key` and only becomes current with
 * {@link rotateIssuer} once every node runs a snapshot carrying the two-root bundle (check with
 * `mailmesh status`); a node that does not trust the new root yet would refuse its leaves and
 * the control plane's snapshots. The old root moves to `root-previous.pem` (and its key, if
 * present, to `root-previous.key`, 0600) until `ca retire-root`. The staged issuer proves itself
 * against the new bundle before anything is written; all files are written atomically.
 *
 * @example const r = await rotateRoot({ dir: './ca' }); console.log(r.root.fingerprint256);
 */
export async function rotateRoot(opts: { dir: string; algorithm?: KeyAlgorithm; rootTtlMs?: number; issuerTtlMs?: number; now?: Date | number }): Promise<RotateRootResult> {
  const current = await loadCa(opts.dir, { now: opts.now });
  const meta = await readMetadata(opts.dir);
  const paths = caPaths(opts.dir);
  const rot = rotationPaths(opts.dir);
  if ((await readOptional(rot.issuerNext)) !== undefined || (await readOptional(rot.issuerNextKey)) !== undefined) {
    throw new CaError('ERR_ROTATION_PENDING', `a root rotation is already staged in ${opts.dir} (issuer-next.pem): finish it with mailmesh ca rotate --dir ${opts.dir} --issuer once every node runs the two-root bundle`);
  }
  const oldRootPem = await readOptional(paths.rootCert);
  if (oldRootPem === undefined) throw new CaError('ERR_CA_NOT_FOUND', `no root.pem in ${opts.dir}: a root rotation needs the CA directory made by mailmesh ca init (root.key may stay offline)`);
  const [previousRoot] = parseCertificates(oldRootPem, 'root.pem');
  const oldRootKeyPem = await readOptional(paths.rootKey);
  const algorithm = opts.algorithm ?? current.algorithm;
  const root = createRootCa({ trustDomain: current.trustDomain, algorithm, ttlMs: opts.rootTtlMs, now: opts.now });
  const inter = createIssuingCa({ root: root.cert, rootKey: root.privateKey, trustDomain: current.trustDomain, algorithm, ttlMs: opts.issuerTtlMs, now: opts.now });
  const bundle = current.bundle.with(root.cert);
  const next = new Issuer(inter.cert, inter.privateKey, current.trustDomain);
  proveIssuer(next, bundle, opts.now);
  // The issuer in use must keep verifying with the new bundle (it does unless the bundle is odd).
  proveIssuer(current.issuer, bundle, opts.now);
  const { meta: nextMeta, text } = bumpGeneration({ ...meta, algorithm }, opts.now);
  await writeFilesAtomic([
    { path: rot.issuerNextKey, data: privateKeyToPem(inter.privateKey), mode: PRIVATE_MODE },
    { path: rot.issuerNext, data: inter.certPem, mode: PUBLIC_MODE },
    ...(oldRootKeyPem !== undefined ? [{ path: rot.rootPreviousKey, data: oldRootKeyPem, mode: PRIVATE_MODE }] : []),
    { path: rot.rootPrevious, data: oldRootPem, mode: PUBLIC_MODE },
    { path: paths.rootKey, data: privateKeyToPem(root.privateKey), mode: PRIVATE_MODE },
    { path: paths.rootCert, data: root.certPem, mode: PUBLIC_MODE },
    { path: paths.bundle, data: bundle.toPem(), mode: PUBLIC_MODE },
    { path: paths.metadata, data: text, mode: PUBLIC_MODE },
  ]);
  return { trustDomain: current.trustDomain, previousRoot, root: root.cert, nextIssuer: inter.cert, bundle, generation: nextMeta.generation! };
}
