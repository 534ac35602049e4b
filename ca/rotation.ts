// The files a CA rotation adds to a CA directory, and what a reader (the control plane) needs to
// know about them: which issuing CAs are in force and the rotation generation.
import type { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TrustBundle } from './bundle.ts';
import { CaError } from './errors.ts';
import { caPaths, type CaMetadata } from './layout.ts';
import { parseCertificates } from './pem.ts';

/**
 * Rotation files beside the `ca init` ones:
 * - `issuer-previous.pem`: the issuing CA replaced by the last `ca rotate --issuer` (certificate
 *   only; its leaves stay in use until they expire, so peers must still complete their chains);
 * - `issuer-next.pem` / `issuer-next.key`: an issuing CA under a new root, staged by
 *   `ca rotate --root` and promoted by the next `ca rotate --issuer`;
 * - `root-previous.pem` / `root-previous.key`: the root replaced by `ca rotate --root` (still in
 *   bundle.pem until `ca retire-root`).
 */
export const ROTATION_FILES = {
  issuerPrevious: 'issuer-previous.pem',
  issuerNext: 'issuer-next.pem',
  issuerNextKey: 'issuer-next.key',
  rootPrevious: 'root-previous.pem',
  rootPreviousKey: 'root-previous.key',
} as const;

/** Absolute paths of the rotation files of a CA directory. */
export function rotationPaths(dir: string): Record<keyof typeof ROTATION_FILES, string> {
  return {
    issuerPrevious: join(dir, ROTATION_FILES.issuerPrevious),
    issuerNext: join(dir, ROTATION_FILES.issuerNext),
    issuerNextKey: join(dir, ROTATION_FILES.issuerNextKey),
    rootPrevious: join(dir, ROTATION_FILES.rootPrevious),
    rootPreviousKey: join(dir, ROTATION_FILES.rootPreviousKey),
  };
}

/** A file's text, or undefined when it does not exist (other errors are thrown as `ERR_CA_UNREADABLE`). */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new CaError('ERR_CA_UNREADABLE', `cannot read ${path} (${code ?? (err as Error).message}): check the file permissions`, { cause: err });
  }
}

/** `ca.json` of a CA directory. */
export async function readMetadata(dir: string): Promise<CaMetadata> {
  const path = caPaths(dir).metadata;
  const text = await readOptional(path);
  if (text === undefined) throw new CaError('ERR_CA_NOT_FOUND', `no CA metadata at ${path}: create a CA with mailmesh ca init --dir DIR --trust-domain TD`);
  try {
    return JSON.parse(text) as CaMetadata;
  } catch (err) {
    throw new CaError('ERR_CA_UNREADABLE', `${path} is not valid CA metadata (${(err as Error).message}): restore it`, { cause: err });
  }
}

/** ca.json after one more rotation, as text. */
export function bumpGeneration(meta: CaMetadata, now: Date | number | undefined): { meta: CaMetadata; text: string } {
  const next: CaMetadata = { ...meta, generation: (meta.generation ?? 0) + 1, rotatedAt: new Date(now ?? Date.now()).toISOString() };
  return { meta: next, text: JSON.stringify(next, null, 2) + '\n' };
}

/**
 * A SHA-256 fingerprint as node prints it (`AB:CD:…`) from what an operator may paste:
 * with or without colons, any case, with a `sha256:` or openssl's `sha256 Fingerprint=` prefix.
 */
export function normalizeFingerprint(input: string): string {
  const hex = input.trim().replace(/^sha256( fingerprint)?[:=]\s*/i, '').replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) throw new CaError('ERR_ROOT_UNKNOWN', `"${input}" is not a SHA-256 fingerprint: pass 64 hex digits, e.g. as mailmesh ca rotate --root prints them`);
  return hex.match(/../g)!.join(':');
}

/** The root of `bundle` that `cert` chains to directly, if any. */
export function rootOf(cert: X509Certificate, bundle: TrustBundle): X509Certificate | undefined {
  return bundle.anchorFor(cert)?.cert;
}

/**
 * The issuing CAs whose leaves peers may present right now: the current one, a staged next one
 * and the previous one, each only while it chains to a root of `bundle` and is within its
 * validity. Sidecars complete peer chains with these (a TLS server does not see the client's
 * intermediate), the control plane authenticates renewals with them.
 */
export async function issuersInForce(dir: string, current: X509Certificate, bundle: TrustBundle, now: number): Promise<X509Certificate[]> {
  const paths = rotationPaths(dir);
  const out = [current];
  for (const [path, what] of [[paths.issuerNext, 'issuer-next.pem'], [paths.issuerPrevious, 'issuer-previous.pem']] as const) {
    const pem = await readOptional(path);
    if (pem === undefined) continue;
    const [cert] = parseCertificates(pem, what);
    if (out.some((c) => c.fingerprint256 === cert.fingerprint256)) continue;
    if (!cert.ca || !rootOf(cert, bundle)) continue;
    if (now < cert.validFromDate.getTime() || now > cert.validToDate.getTime()) continue;
    out.push(cert);
  }
  return out;
}
