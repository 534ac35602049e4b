import { existsSync } from 'node:fs';
import { PRIVATE_MODE, PUBLIC_MODE, writeFilesAtomic } from '../common/files.ts';
import { TrustBundle } from './bundle.ts';
import { CaError } from './errors.ts';
import { Issuer } from './issuer.ts';
import { privateKeyToPem, type KeyAlgorithm } from './keys.ts';
import { caPaths, type CaMetadata } from './layout.ts';
import type { LoadedCa } from './load.ts';
import { createIssuingCa, createRootCa } from './mint.ts';
import { proveIssuer } from './prove.ts';
import { assertTrustDomain } from './spiffe.ts';

/** Options of {@link initCa}. */
export interface InitCaOptions {
  dir: string;
  trustDomain: string;
  /** Key algorithm of both CAs (default P-256). */
  algorithm?: KeyAlgorithm;
  /** Replace an existing CA in `dir` (default: refuse with `ERR_CA_EXISTS`). */
  force?: boolean;
  rootTtlMs?: number;
  issuerTtlMs?: number;
  now?: Date | number;
}

/**
 * Create a CA directory: an offline root (root.pem, root.key) and an online issuing CA
 * (issuer.pem, issuer.key), the trust bundle (bundle.pem) and ca.json. Keys are written 0600,
 * certificates 0644, all atomically and only after the issuing CA proved itself.
 *
 * @example const ca = await initCa({ dir: '/etc/mailmesh/ca', trustDomain: 'mail.example' });
 */
export async function initCa(opts: InitCaOptions): Promise<LoadedCa> {
  const trustDomain = assertTrustDomain(opts.trustDomain);
  const algorithm = opts.algorithm ?? 'P-256';
  const paths = caPaths(opts.dir);
  if (!opts.force) {
    const existing = [paths.rootCert, paths.rootKey, paths.issuerCert, paths.issuerKey, paths.bundle, paths.metadata].filter((p) => existsSync(p));
    if (existing.length > 0) throw new CaError('ERR_CA_EXISTS', `a CA already exists in ${opts.dir} (${existing.length} CA files): use --force to replace it, or pick another --dir`);
  }
  const root = createRootCa({ trustDomain, algorithm, ttlMs: opts.rootTtlMs, now: opts.now });
  const inter = createIssuingCa({ root: root.cert, rootKey: root.privateKey, trustDomain, algorithm, ttlMs: opts.issuerTtlMs, now: opts.now });
  const bundle = new TrustBundle([root.cert]);
  const issuer = new Issuer(inter.cert, inter.privateKey, trustDomain);
  proveIssuer(issuer, bundle, opts.now);
  const meta: CaMetadata = { version: 1, trustDomain, algorithm, createdAt: new Date(opts.now ?? Date.now()).toISOString() };
  await writeFilesAtomic([
    { path: paths.rootKey, data: privateKeyToPem(root.privateKey), mode: PRIVATE_MODE },
    { path: paths.issuerKey, data: privateKeyToPem(inter.privateKey), mode: PRIVATE_MODE },
    { path: paths.rootCert, data: root.certPem, mode: PUBLIC_MODE },
    { path: paths.issuerCert, data: inter.certPem, mode: PUBLIC_MODE },
    { path: paths.bundle, data: bundle.toPem(), mode: PUBLIC_MODE },
    { path: paths.metadata, data: JSON.stringify(meta, null, 2) + '\n', mode: PUBLIC_MODE },
  ]);
  return { dir: opts.dir, trustDomain, issuer, bundle, algorithm };
}
