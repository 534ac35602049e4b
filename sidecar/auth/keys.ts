import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { AuthError } from './errors.ts';

/** DKIM signing algorithms we sign with (RFC 8301 rsa-sha256, RFC 8463 ed25519-sha256). */
export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

/** One signing key, in memory. */
export interface SigningKey {
  /** d= */
  domain: string;
  /** s= */
  selector: string;
  algorithm: DkimAlgorithm;
  privateKeyPem: string;
}

/** Where a key lives: a mounted file (a Kubernetes Secret), never the policy repository. */
export interface SigningKeyRef {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  keyFile: string;
}

/** RFC 8301 §3.2: signers MUST use RSA keys of at least 1024 bits (SHOULD 2048). */
const MIN_RSA_BITS = 1024;

/**
 * Parse and check a key against its declared algorithm. Throws `ERR_AUTH_KEY_LOAD` for a key
 * that does not parse and `ERR_AUTH_KEY_MISMATCH` for a wrong type or a short RSA key.
 */
export function checkSigningKey(key: SigningKey): KeyObject {
  let obj: KeyObject;
  try {
    obj = createPrivateKey(key.privateKeyPem);
  } catch (err) {
    throw new AuthError('ERR_AUTH_KEY_LOAD', `DKIM key ${key.selector}._domainkey.${key.domain} is not a PEM private key`, { cause: err });
  }
  const want = key.algorithm === 'rsa-sha256' ? 'rsa' : 'ed25519';
  if (obj.asymmetricKeyType !== want) {
    throw new AuthError('ERR_AUTH_KEY_MISMATCH', `DKIM key ${key.selector}._domainkey.${key.domain} is ${obj.asymmetricKeyType}, but algorithm ${key.algorithm} needs ${want}`);
  }
  const bits = obj.asymmetricKeyDetails?.modulusLength;
  if (want === 'rsa' && (bits ?? 0) < MIN_RSA_BITS) {
    throw new AuthError('ERR_AUTH_KEY_MISMATCH', `DKIM key ${key.selector}._domainkey.${key.domain} has ${bits} bits; RFC 8301 needs at least ${MIN_RSA_BITS} (use 2048)`);
  }
  return obj;
}

/**
 * Read signing keys from files (Kubernetes mounts Secrets as files) and check each one.
 *
 * @example
 * const keys = await loadSigningKeys([{ domain: 'example.org', selector: 'mm2026', algorithm: 'rsa-sha256', keyFile: '/run/secrets/dkim/example.org.rsa' }]);
 */
export async function loadSigningKeys(refs: SigningKeyRef[]): Promise<SigningKey[]> {
  const out: SigningKey[] = [];
  for (const ref of refs) {
    let pem: string;
    try {
      pem = await readFile(ref.keyFile, 'utf8');
    } catch (err) {
      throw new AuthError('ERR_AUTH_KEY_LOAD', `cannot read DKIM key file ${ref.keyFile} for ${ref.domain}: ${(err as Error).message}`, { cause: err });
    }
    const key: SigningKey = { domain: ref.domain.toLowerCase(), selector: ref.selector, algorithm: ref.algorithm, privateKeyPem: pem };
    checkSigningKey(key);
    out.push(key);
  }
  return out;
}
