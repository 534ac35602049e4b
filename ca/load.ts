import { readFile } from 'node:fs/promises';
import { TrustBundle } from './bundle.ts';
import { CaError } from './errors.ts';
import { Issuer } from './issuer.ts';
import { KEY_ALGORITHMS, type KeyAlgorithm } from './keys.ts';
import { caPaths, type CaMetadata } from './layout.ts';
import { proveIssuer } from './prove.ts';
import { assertTrustDomain } from './spiffe.ts';

/** A CA ready to issue: the issuing CA and the trust bundle. The root key is not loaded. */
export interface LoadedCa {
  dir: string;
  trustDomain: string;
  algorithm: KeyAlgorithm;
  issuer: Issuer;
  bundle: TrustBundle;
}

async function readCaFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CaError('ERR_CA_NOT_FOUND', `no ${what} at ${path}: create a CA with mailmesh ca init --dir DIR --trust-domain TD`, { cause: err });
    throw new CaError('ERR_CA_UNREADABLE', `cannot read ${what} at ${path} (${code ?? (err as Error).message}): check the file permissions`, { cause: err });
  }
}

/**
 * Load a CA directory made by `initCa` for issuing: issuer.pem, issuer.key, bundle.pem and
 * ca.json. The root key is never read here (it is only needed to make or rotate an issuing CA).
 * The issuing CA proves itself before it is returned. `ERR_CA_NOT_FOUND` when files are
 * missing, `ERR_CA_UNREADABLE` when they cannot be read or parsed.
 *
 * @example const { issuer, bundle } = await loadCa('/etc/mailmesh/ca');
 */
export async function loadCa(dir: string, opts: { now?: Date | number } = {}): Promise<LoadedCa> {
  const paths = caPaths(dir);
  const metaText = await readCaFile(paths.metadata, 'CA metadata (ca.json)');
  const [certPem, keyPem, bundlePem] = await Promise.all([
    readCaFile(paths.issuerCert, 'issuing certificate (issuer.pem)'),
    readCaFile(paths.issuerKey, 'issuing key (issuer.key)'),
    readCaFile(paths.bundle, 'trust bundle (bundle.pem)'),
  ]);
  let meta: CaMetadata;
  try {
    meta = JSON.parse(metaText) as CaMetadata;
    assertTrustDomain(meta.trustDomain);
    if (!KEY_ALGORITHMS.includes(meta.algorithm)) throw new Error(`unknown algorithm ${String(meta.algorithm)}`);
  } catch (err) {
    throw new CaError('ERR_CA_UNREADABLE', `${paths.metadata} is not valid CA metadata (${(err as Error).message}): restore it or run mailmesh ca init again`, { cause: err });
  }
  let issuer: Issuer, bundle: TrustBundle;
  try {
    issuer = Issuer.fromPem(certPem, keyPem, meta.trustDomain);
    bundle = TrustBundle.fromPem(bundlePem);
  } catch (err) {
    throw new CaError('ERR_CA_UNREADABLE', `CA in ${dir} cannot be loaded: ${(err as Error).message}`, { cause: err });
  }
  proveIssuer(issuer, bundle, opts.now);
  return { dir, trustDomain: meta.trustDomain, algorithm: issuer.algorithm, issuer, bundle };
}
