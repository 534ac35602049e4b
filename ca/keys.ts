import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { CaError } from './errors.ts';

/** Key algorithms the CA issues and accepts. ECDSA P-256 is the default everywhere. */
export type KeyAlgorithm = 'P-256' | 'P-384' | 'Ed25519';

/** The algorithms, in the order the CLI lists them. */
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['P-256', 'P-384', 'Ed25519'];

/** A private key and its public half as node `KeyObject`s. */
export interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

/**
 * Generate a key pair.
 *
 * @example const { privateKey } = generateKeyPair('P-256');
 */
export function generateKeyPair(alg: KeyAlgorithm = 'P-256'): KeyPair {
  switch (alg) {
    case 'P-256':
      return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    case 'P-384':
      return generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    case 'Ed25519':
      return generateKeyPairSync('ed25519');
    default:
      throw new CaError('ERR_BAD_ALGORITHM', `unknown key algorithm "${String(alg)}": use P-256, P-384 or Ed25519`);
  }
}

/** The algorithm of a key, or `ERR_BAD_KEY` for keys the CA does not support (RSA, other curves). */
export function keyAlgorithmOf(key: KeyObject): KeyAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'Ed25519';
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'P-256';
    if (curve === 'secp384r1') return 'P-384';
  }
  throw new CaError('ERR_BAD_KEY', `unsupported key type ${key.asymmetricKeyType ?? '?'}: use an ECDSA P-256/P-384 or Ed25519 key`);
}

/** A private key as PKCS#8 PEM (`BEGIN PRIVATE KEY`), which Postfix, Dovecot and openssl read. */
export function privateKeyToPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Parse a PEM private key; `ERR_BAD_KEY` with a hint when it cannot be read. */
export function privateKeyFromPem(pem: string | Buffer, what = 'private key'): KeyObject {
  try {
    const key = createPrivateKey(pem);
    keyAlgorithmOf(key);
    return key;
  } catch (err) {
    if (err instanceof CaError) throw err;
    throw new CaError('ERR_BAD_KEY', `cannot read ${what}: expected a PEM private key (${(err as Error).message})`, { cause: err });
  }
}
