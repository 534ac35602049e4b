import { sign, verify, type KeyObject } from 'node:crypto';

/** Domain separation: a proof can never be mistaken for a signature over anything else. */
const CONTEXT = Buffer.from('mailmesh expired-renewal v1\0');

/** Ed25519 signs the message itself; ECDSA (and RSA) hash it with SHA-256 first. */
const digestFor = (key: KeyObject) => (key.asymmetricKeyType === 'ed25519' ? null : 'sha256');

/**
 * Sign a rejoin request after expiry: the node's last (expired) key signs the new CSR, proving it
 * still holds the key of the certificate it presents. The new key signs the CSR itself, so the
 * request binds old identity and new key together.
 */
export function signExpiredProof(oldKey: KeyObject, csrDer: Buffer): Buffer {
  return sign(digestFor(oldKey), Buffer.concat([CONTEXT, csrDer]), oldKey);
}

/** Check a proof made by {@link signExpiredProof} with the expired certificate's public key. */
export function verifyExpiredProof(oldPublicKey: KeyObject, csrDer: Buffer, proof: Buffer): boolean {
  try {
    return verify(digestFor(oldPublicKey), Buffer.concat([CONTEXT, csrDer]), oldPublicKey, proof);
  } catch {
    return false;
  }
}
