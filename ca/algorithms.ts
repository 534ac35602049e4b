// Signature algorithm identifiers (RFC 5758 §3.2 for ECDSA, RFC 8410 §3 for Ed25519) and the
// object identifiers X.509 needs. Kept in one place so the writer and the reader agree.
import type { KeyObject } from 'node:crypto';
import { oid, seq } from './der.ts';
import { keyAlgorithmOf, type KeyAlgorithm } from './keys.ts';

/** Object identifiers used by the CA. */
export const OID = {
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  ecdsaWithSHA384: '1.2.840.10045.4.3.3',
  ed25519: '1.3.101.112',
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  nameConstraints: '2.5.29.30',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** How a key of a given algorithm signs: the node digest name and the AlgorithmIdentifier DER. */
export interface SignatureScheme {
  /** Digest for `crypto.sign`/`verify`, or null for Ed25519 (pure EdDSA, RFC 8032). */
  hash: 'sha256' | 'sha384' | null;
  /** AlgorithmIdentifier; parameters are absent for ECDSA (RFC 5758 §3.2) and Ed25519 (RFC 8410 §3). */
  algorithmIdentifier: Buffer;
  oid: string;
}

const SCHEMES: Record<KeyAlgorithm, SignatureScheme> = {
  'P-256': { hash: 'sha256', algorithmIdentifier: seq(oid(OID.ecdsaWithSHA256)), oid: OID.ecdsaWithSHA256 },
  'P-384': { hash: 'sha384', algorithmIdentifier: seq(oid(OID.ecdsaWithSHA384)), oid: OID.ecdsaWithSHA384 },
  Ed25519: { hash: null, algorithmIdentifier: seq(oid(OID.ed25519)), oid: OID.ed25519 },
};

/** The signature scheme a key signs with. */
export function schemeFor(key: KeyObject): SignatureScheme {
  return SCHEMES[keyAlgorithmOf(key)];
}

/** The digest name for a signature algorithm OID, or undefined when the CA does not accept it. */
export function hashForSignatureOid(sigOid: string): 'sha256' | 'sha384' | null | undefined {
  if (sigOid === OID.ecdsaWithSHA256) return 'sha256';
  if (sigOid === OID.ecdsaWithSHA384) return 'sha384';
  if (sigOid === OID.ed25519) return null;
  return undefined;
}
